package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// storeResult is part 6: what the shared store (--state-url, Redis on
// loopback) adds to a call through the server, and three replicas on one
// store against one replica.
type storeResult struct {
	Redis   string // redis-server --version
	Calls   int
	Rows    []storeRow
	Clients int
	One     httpLoad // run_prompt load on one replica
	Three   httpLoad // the same clients spread over three replicas
}

// storeRow is one tool called in sequence by one client, against a server
// with the in-memory state and against one with the Redis state.
type storeRow struct {
	Tool          string
	Memory, Redis sample
}

// storeTools are a read and a paid run (with a budget, so that every guard
// is paid for): a run of the fast fake ends within its POST.
var storeTools = []httpTool{
	{"search_prompts", `{"query":"email"}`},
	{"run_prompt", `{"prompt_id":"cold-email-opener","wait_seconds":10,"inputs":{"textInputs":{"company_name":"Acme","recipient_role":"CTO","value_proposition":"We halve your cloud bill."}}}`},
}

// newFastFake is newFake whose runs take a ten-thousandth of their time.
func newFastFake(cat []fakeapi.Prompt) *fakeapi.Server {
	return fakeapi.New(fakeapi.Options{
		Catalogue: cat,
		Keys:      map[string]fakeapi.Key{benchKey: {Credits: 1 << 40}},
		RateLimit: -1,
		TimeScale: 1e-4,
	})
}

func measureStore(bin string, up *upstream, reset func(), calls, clients int, d time.Duration) (*storeResult, error) {
	rds, err := startRedis()
	if err != nil {
		return nil, err
	}
	defer rds.stop()
	budget := []string{"--budget-credits", strconv.Itoa(1 << 40)}
	withStore := append([]string{"--state-url", "redis://" + rds.addr}, budget...)
	r := &storeResult{Redis: rds.version, Calls: calls, Clients: clients}
	for _, tool := range storeTools {
		row := storeRow{Tool: tool.name}
		for _, side := range []struct {
			args []string
			into *sample
		}{{budget, &row.Memory}, {withStore, &row.Redis}} {
			reset()
			lat, err := sequentialCalls(bin, up, side.args, tool, calls)
			if err != nil {
				return nil, err
			}
			*side.into = lat
		}
		r.Rows = append(r.Rows, row)
	}
	run := storeTools[1]
	for _, n := range []int{1, 3} {
		reset()
		load, err := replicaLoad(bin, up, withStore, n, clients, run, d)
		if err != nil {
			return nil, err
		}
		if n == 1 {
			r.One = load
		} else {
			r.Three = load
		}
	}
	return r, nil
}

// sequentialCalls starts a stateless server with args and times calls of
// tool, one at a time, after a warm-up.
func sequentialCalls(bin string, up *upstream, args []string, tool httpTool, calls int) (sample, error) {
	srv, err := startHTTP(bin, up, true, args...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	m := &mcpHTTPClient{c: &http.Client{}, url: srv.url}
	if err := m.initialize(); err != nil {
		return nil, err
	}
	params := `{"name":"` + tool.name + `","arguments":` + tool.args + `}`
	var lat sample
	for i := range calls + calls/10 {
		t0 := time.Now()
		res, err := m.call("tools/call", params)
		if err == nil {
			err = checkToolResult(res)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (server log: %s)", tool.name, err, tail(srv.stderr.String(), 300))
		}
		if i >= calls/10 { // the first tenth warms up
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, nil
}

// replicaLoad runs tool in a closed loop from clients spread round-robin
// over n stateless replicas that share the store, for d.
func replicaLoad(bin string, up *upstream, args []string, n, clients int, tool httpTool, d time.Duration) (httpLoad, error) {
	var urls []string
	for range n {
		srv, err := startHTTP(bin, up, true, args...)
		if err != nil {
			return httpLoad{}, err
		}
		defer srv.stop()
		urls = append(urls, srv.url)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	cs := make([]*mcpHTTPClient, clients)
	for i := range cs {
		cs[i] = &mcpHTTPClient{c: hc, url: urls[i%n]}
		if err := cs[i].initialize(); err != nil {
			return httpLoad{}, err
		}
	}
	_ = runLoad(cs, tool, d/5) // warm-up, discarded
	load := runLoad(cs, tool, d)
	load.Mode, load.Concurrency = fmt.Sprintf("%d replica(s)", n), clients
	return load, nil
}

// redisServer is a redis-server on a free loopback port, without
// persistence.
type redisServer struct {
	cmd     *exec.Cmd
	addr    string
	version string
}

func startRedis() (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("part store needs redis-server (apt-get install redis-server): %w", err)
	}
	out, _ := exec.Command(bin, "--version").Output()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), version: string(out)}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server did not answer on %s", s.addr)
		}
	}
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// storeTarget is the target for the store's added latency (p50).
const storeTarget = 500 * time.Microsecond

func (r *results) writeStore(p printer) {
	s := r.store
	if s == nil {
		return
	}
	p("### Part 6: the shared store (Redis)\n\n")
	p("Each tool called %d times in sequence by one client of a `--stateless` server with a budget set, against the "+
		"in-memory state and against `--state-url` (%s on loopback); the fake API answers at once (runs take 1/10,000 "+
		"of their time). Added = Redis − memory.\n\n", s.Calls, trimVersion(s.Redis))
	p("| Tool | memory p50 | memory p99 | Redis p50 | Redis p99 | added p50 | added p99 |\n|---|---|---|---|---|---|---|\n")
	for _, row := range s.Rows {
		p("| %s | %s | %s | %s | %s | %s | %s |\n", row.Tool, ms(row.Memory.median()), ms(row.Memory.quantile(0.99)),
			ms(row.Redis.median()), ms(row.Redis.quantile(0.99)), ms(row.Redis.median()-row.Memory.median()),
			ms(row.Redis.quantile(0.99)-row.Memory.quantile(0.99)))
	}
	p("\n`run_prompt` in a closed loop from %d clients for %.0f s, on one store: one replica, then the same clients spread "+
		"over three replicas (one machine: the replicas share its 2 cores).\n\n", s.Clients, s.One.Duration.Seconds())
	p("| Replicas | calls/s | p50 | p99 | errors |\n|---|---|---|---|---|\n")
	for _, l := range []httpLoad{s.One, s.Three} {
		p("| %s | %.0f | %s | %s | %d |\n", l.Mode, l.perSecond(), ms(l.Latency.median()), ms(l.Latency.quantile(0.99)), l.Errors)
	}
	p("\n")
}

func trimVersion(v string) string {
	if len(v) > 40 {
		return v[:40]
	}
	return v
}
