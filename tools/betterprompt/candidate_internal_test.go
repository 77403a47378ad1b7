package betterprompt

import (
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/runs"
)

// A candidate read back from the Redis records has no Data (encode drops
// it); rendered through runOf it loses its created_at, which is what the
// user needs to tell which run is theirs.
func TestCandidateWithoutDataKeepsCreatedAt(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r := runOf(&runs.Job{ID: "run-1", Kind: "pv", Status: runs.Running, CreatedAt: at})
	if r.CreatedAt == "" {
		t.Errorf("a candidate without Data renders no created_at: %+v", r)
	}
}
