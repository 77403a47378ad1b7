package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// overhead is part 2: get_credits through the server over stdio against a
// direct GET /v1/me/credits on the same fake, both sequential, rate limits
// off on both sides.
type overhead struct {
	Calls         int
	MCP, Direct   sample
	ServerCPU     time.Duration // user+system CPU of the server process over the MCP calls
	UpstreamConns int64         // TCP connections the fake accepted during the measured calls
}

const overheadBlock = 250

func measureOverhead(bin string, up *upstream, calls int) (*overhead, error) {
	s, err := startStdio(bin, nil, serverEnv(
		"BETTERPROMPT_API_KEY="+benchKey, "BETTERPROMPT_BASE_URL="+up.baseURL, "BPMCP_RATE_LIMIT=-1"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.stop() }()
	if _, _, err := s.call("initialize", initializeParams); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if err := s.notify("notifications/initialized"); err != nil {
		return nil, err
	}
	direct := newDirectClient(up.baseURL)

	mcpCall := func() (time.Duration, error) {
		t0 := time.Now()
		err := s.callTool("get_credits", "{}")
		return time.Since(t0), err
	}
	// Warm both paths: connections, caches, the fake's maps.
	for range 200 {
		if _, err := mcpCall(); err != nil {
			return nil, err
		}
		if _, err := direct.get(); err != nil {
			return nil, err
		}
	}
	o := &overhead{Calls: calls}
	conns0 := up.conns.Load()
	var cpu time.Duration
	// Alternate blocks so that drift (other load, frequency changes) hits
	// both sides alike.
	for len(o.MCP) < calls {
		n := min(overheadBlock, calls-len(o.MCP))
		c0, err := cpuTime(s.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		for range n {
			d, err := mcpCall()
			if err != nil {
				return nil, err
			}
			o.MCP = append(o.MCP, d)
		}
		c1, err := cpuTime(s.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		cpu += c1 - c0
		for range n {
			d, err := direct.get()
			if err != nil {
				return nil, err
			}
			o.Direct = append(o.Direct, d)
		}
	}
	o.ServerCPU = cpu
	o.UpstreamConns = up.conns.Load() - conns0
	return o, nil
}

// directClient is the bench process's own client for /v1/me/credits: a
// plain net/http GET with a keep-alive connection, the body read and its
// envelope decoded, as bpapi does.
type directClient struct {
	c   *http.Client
	url string
}

func newDirectClient(base string) *directClient {
	return &directClient{
		c:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		url: base + "/me/credits",
	}
}

func (d *directClient) get() (time.Duration, error) {
	t0 := time.Now()
	req, err := http.NewRequest(http.MethodGet, d.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+benchKey)
	req.Header.Set("Accept", "application/json")
	resp, err := d.c.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	var env struct {
		Status string `json:"status"`
		Data   struct {
			Credits json.Number `json:"credits"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "SUCCESS" {
		return 0, fmt.Errorf("direct GET: HTTP %d %s", resp.StatusCode, tail(string(body), 200))
	}
	return time.Since(t0), nil
}
