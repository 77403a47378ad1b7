package main

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	bwfake "github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

// episodes gives every episode a sandbox caller names (the X-Bpmcp-Episode
// header over HTTP) an account of its own on both simulated APIs, created
// on its first call: its own credits, runs and generations, and, since the
// server keeps them per key, its own budget, rate limit, wait slots and
// BetterWaifu line. An episode with no call for episodeIdle is forgotten;
// one named again later starts afresh, under new keys (the server's own
// per-key state of the old ones is not carried over).
type episodes struct {
	bp *fakeapi.Server
	bw *bwfake.Server

	mu        sync.Mutex
	live      map[string]*episode // by the caller's episode id
	tags      map[string]bool     // the live episodes' tags
	serial    uint64
	lastSweep time.Time
}

// episode is one live episode.
type episode struct {
	tag  string // in its keys: a serial and the id, new each time the episode starts
	last time.Time
}

// episodeIdle is how long an episode without a call keeps its accounts.
const episodeIdle = 30 * time.Minute

// Each episode's keys: the sandbox key, then the episode's tag.
const (
	bpEpisodePrefix = fakeapi.SandboxKey + ".episode."
	bwEpisodePrefix = bwfake.SandboxKey + ".episode."
)

// sandboxCredits is what the sandbox account, and every episode's, starts
// with on BetterPrompt.
const sandboxCredits = 10000

func newEpisodes() *episodes {
	return &episodes{live: map[string]*episode{}, tags: map[string]bool{}}
}

// isLive reports whether key, less prefix, is a live episode's: only those
// get accounts (not a key a caller makes up, nor one of an episode
// forgotten while a request of it was still on its way).
func (e *episodes) isLive(key, prefix string) bool {
	tag, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tags[tag]
}

// bpAccount is the simulated BetterPrompt's fakeapi.Options.NewAccount.
func (e *episodes) bpAccount(key string) (fakeapi.Key, bool) {
	return fakeapi.Key{Credits: sandboxCredits}, e.isLive(key, bpEpisodePrefix)
}

// bwAccount is the simulated BetterWaifu's fakeapi.Options.NewAccount.
func (e *episodes) bwAccount(key string) (bwfake.Key, bool) {
	active := &bwfake.Subscription{Status: "active", Plan: "pro", EndDate: "2099-01-01T00:00:00.000Z"}
	return bwfake.Key{Username: "episode", Credits: 500, Subscription: active}, e.isLive(key, bwEpisodePrefix)
}

// key is the episode's key for the toolset whose key header is header
// (mcpserver.HTTPOptions.EpisodeKey).
func (e *episodes) key(header, id string) secret.String {
	tag := e.touch(id, time.Now())
	switch header {
	case betterprompt.KeyHeader:
		return secret.String(bpEpisodePrefix + tag)
	case betterwaifu.KeyHeader:
		return secret.String(bwEpisodePrefix + tag)
	}
	return ""
}

// touch notes a call of episode id at now, starting it if need be, and
// returns its tag. It forgets the episodes idle for episodeIdle (looking at
// most once a minute).
func (e *episodes) touch(id string, now time.Time) string {
	e.mu.Lock()
	var gone []string
	if now.Sub(e.lastSweep) >= time.Minute {
		e.lastSweep = now
		for other, ep := range e.live {
			if now.Sub(ep.last) >= episodeIdle {
				delete(e.live, other)
				delete(e.tags, ep.tag)
				gone = append(gone, ep.tag)
			}
		}
	}
	ep := e.live[id]
	if ep == nil {
		e.serial++
		ep = &episode{tag: strconv.FormatUint(e.serial, 10) + "." + id}
		e.live[id] = ep
		e.tags[ep.tag] = true
	}
	ep.last = now
	tag := ep.tag
	e.mu.Unlock()
	for _, t := range gone { // outside the lock: each scans its fake's runs
		e.bp.Forget(bpEpisodePrefix + t)
		e.bw.Forget(bwEpisodePrefix + t)
	}
	return tag
}
