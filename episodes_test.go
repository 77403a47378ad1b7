package main

import (
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	bwfake "github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

// An episode idle for episodeIdle is forgotten by both simulated APIs at
// the next call of any episode; a live one is kept.
func TestIdleEpisodesAreForgotten(t *testing.T) {
	eps := newEpisodes()
	eps.bp = fakeapi.New(fakeapi.Options{NewAccount: eps.bpAccount})
	eps.bw = bwfake.New(bwfake.Options{NewAccount: eps.bwAccount})
	t.Cleanup(eps.bp.Close)
	for _, id := range []string{"old", "live"} {
		if k := eps.key(betterprompt.KeyHeader, id).Reveal(); k != bpEpisodePrefix+id {
			t.Fatalf("BetterPrompt key of %s: %q", id, k)
		}
		if k := eps.key(betterwaifu.KeyHeader, id).Reveal(); k != bwEpisodePrefix+id {
			t.Fatalf("BetterWaifu key of %s: %q", id, k)
		}
		eps.bp.SetCredits(bpEpisodePrefix+id, 7)
	}
	now := time.Now()
	eps.touch("old", now.Add(-episodeIdle-time.Minute))
	eps.lastSweep = time.Time{}
	eps.touch("live", now)
	if got := eps.bp.Credits(bpEpisodePrefix + "old"); got != 0 {
		t.Errorf("the idle episode's account still has %d credits", got)
	}
	if got := eps.bp.Credits(bpEpisodePrefix + "live"); got != 7 {
		t.Errorf("the live episode's account has %d credits, want 7", got)
	}
	if _, ok := eps.last["old"]; ok {
		t.Error("the idle episode is still tracked")
	}
	if _, ok := eps.bpAccount("bp_other"); ok {
		t.Error("a key that is not an episode's gets an account")
	}
}
