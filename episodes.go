package main

import (
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
// BetterWaifu line. An episode with no call for episodeIdle is forgotten.
type episodes struct {
	bp *fakeapi.Server
	bw *bwfake.Server

	mu        sync.Mutex
	last      map[string]time.Time // episode → its latest call
	lastSweep time.Time
}

// episodeIdle is how long an episode without a call keeps its accounts.
const episodeIdle = 30 * time.Minute

// Each episode's keys: the sandbox key, then the episode.
const (
	bpEpisodePrefix = fakeapi.SandboxKey + ".episode."
	bwEpisodePrefix = bwfake.SandboxKey + ".episode."
)

// sandboxCredits is what the sandbox account, and every episode's, starts
// with on BetterPrompt.
const sandboxCredits = 10000

func newEpisodes() *episodes { return &episodes{last: map[string]time.Time{}} }

// bpAccount is the simulated BetterPrompt's fakeapi.Options.NewAccount.
func (e *episodes) bpAccount(key string) (fakeapi.Key, bool) {
	return fakeapi.Key{Credits: sandboxCredits}, strings.HasPrefix(key, bpEpisodePrefix)
}

// bwAccount is the simulated BetterWaifu's fakeapi.Options.NewAccount.
func (e *episodes) bwAccount(key string) (bwfake.Key, bool) {
	active := &bwfake.Subscription{Status: "active", Plan: "pro", EndDate: "2099-01-01T00:00:00.000Z"}
	return bwfake.Key{Username: "episode", Credits: 500, Subscription: active}, strings.HasPrefix(key, bwEpisodePrefix)
}

// key is the episode's key for the toolset whose key header is header
// (mcpserver.HTTPOptions.EpisodeKey).
func (e *episodes) key(header, episode string) secret.String {
	e.touch(episode, time.Now())
	switch header {
	case betterprompt.KeyHeader:
		return secret.String(bpEpisodePrefix + episode)
	case betterwaifu.KeyHeader:
		return secret.String(bwEpisodePrefix + episode)
	}
	return ""
}

// touch notes a call of episode at now, and forgets the episodes idle for
// episodeIdle (looking at most once a minute).
func (e *episodes) touch(episode string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last[episode] = now
	if now.Sub(e.lastSweep) < time.Minute {
		return
	}
	e.lastSweep = now
	for id, at := range e.last {
		if now.Sub(at) >= episodeIdle {
			delete(e.last, id)
			e.bp.Forget(bpEpisodePrefix + id)
			e.bw.Forget(bwEpisodePrefix + id)
		}
	}
}
