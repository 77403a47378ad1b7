package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/internal/cassette"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

// replay is --replay: the APIs answered from a cassette on loopback ports,
// with placeholder keys (a replay needs none). Each episode gets keys of
// its own, so that it goes through the recordings on its own.
type replay struct {
	baseURL, bwBaseURL string
	bpKey              bpapi.APIKey
	bwKey              bwapi.APIKey
	close              func()
}

const (
	replayBPKey = "bp_replay"
	replayBWKey = "bw_replay"
)

func startReplay(cfg config) (*replay, error) {
	p, err := cassette.Load(cfg.ReplayDir, cfg.ReplaySpeed)
	if err != nil {
		return nil, err
	}
	var closers []func()
	serve := func(api, base string) (string, error) {
		u, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("listen: %w", err)
		}
		hs := &http.Server{Handler: p.Handler(api), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		closers = append(closers, func() { _ = hs.Close() })
		return "http://" + ln.Addr().String() + u.Path, nil // the recorded paths start with the base URL's
	}
	r := &replay{bpKey: replayBPKey, close: func() {
		for _, c := range closers {
			c()
		}
	}}
	if r.baseURL, err = serve("betterprompt", cfg.BaseURL); err != nil {
		r.close()
		return nil, err
	}
	// Served even with nothing to replay: a caller's own key
	// (--per-request-keys) still offers its tools, and they must not reach
	// the API.
	if r.bwBaseURL, err = serve("betterwaifu", cfg.BetterWaifuBaseURL); err != nil {
		r.close()
		return nil, err
	}
	if p.Has("betterwaifu") { // its tools, with no caller key, only when there is something to replay
		r.bwKey = replayBWKey
	}
	return r, nil
}

// episodeKey is each episode's key for a toolset's key header
// (mcpserver.HTTPOptions.EpisodeKey): its own place in every recorded
// sequence.
func (r *replay) episodeKey(header, episode string) secret.String {
	switch header {
	case betterprompt.KeyHeader:
		return secret.String(replayBPKey + ".episode." + episode)
	case betterwaifu.KeyHeader:
		if r.bwKey != "" {
			return secret.String(replayBWKey + ".episode." + episode)
		}
	}
	return ""
}
