package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	bwfake "github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

// An episode idle for episodeIdle is forgotten by both simulated APIs at
// the next call of any episode; a live one is kept; one named again starts
// afresh under new keys; only live episodes' keys get accounts.
func TestIdleEpisodesAreForgotten(t *testing.T) {
	eps := newEpisodes()
	eps.bp = fakeapi.New(fakeapi.Options{NewAccount: eps.bpAccount})
	eps.bw = bwfake.New(bwfake.Options{NewAccount: eps.bwAccount})
	t.Cleanup(eps.bp.Close)
	keys := map[string]string{}
	for _, id := range []string{"old", "live"} {
		bp := eps.key(betterprompt.KeyHeader, id).Reveal()
		if !strings.HasPrefix(bp, bpEpisodePrefix) || !strings.HasSuffix(bp, "."+id) {
			t.Fatalf("BetterPrompt key of %s: %q", id, bp)
		}
		if bw := eps.key(betterwaifu.KeyHeader, id).Reveal(); !strings.HasPrefix(bw, bwEpisodePrefix) {
			t.Fatalf("BetterWaifu key of %s: %q", id, bw)
		}
		if _, ok := eps.bpAccount(bp); !ok {
			t.Fatalf("a live episode's key %q gets no account", bp)
		}
		eps.bp.SetCredits(bp, 7)
		keys[id] = bp
	}
	now := time.Now()
	eps.live["old"].last = now.Add(-episodeIdle - time.Minute)
	eps.lastSweep = time.Time{}
	eps.touch("live", now)
	if got := eps.bp.Credits(keys["old"]); got != 0 {
		t.Errorf("the idle episode's account still has %d credits", got)
	}
	if _, ok := eps.bpAccount(keys["old"]); ok {
		t.Error("a forgotten episode's key would get an account again")
	}
	if got := eps.bp.Credits(keys["live"]); got != 7 {
		t.Errorf("the live episode's account has %d credits, want 7", got)
	}
	if again := eps.key(betterprompt.KeyHeader, "old").Reveal(); again == keys["old"] {
		t.Errorf("the episode named again kept its old key %q", again)
	}
	if _, ok := eps.bpAccount(bpEpisodePrefix + "99.made-up"); ok {
		t.Error("a key no episode was given gets an account")
	}
}
