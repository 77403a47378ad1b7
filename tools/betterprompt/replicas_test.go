package betterprompt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state/redisstate"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// Two replicas on one Redis: a run started through one with a short wait
// is followed through the other, which resolves its handle or id and
// returns its outputs; exactly one POST.
func TestRunFollowedThroughAnotherReplica(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := redisstate.New(srv.Client(t), "")
	shared := func(d *betterprompt.Toolset) {
		d.Records, d.Slots = store.Records(), store.Slots()
	}
	a := newEnv(t, withDeps(shared), withSyncWindow(time.Second), withTimeScale(0.05))
	// b is a second replica: another server with the same API and store.
	bd := &betterprompt.Toolset{Client: a.deps.Client, Wait: a.deps.Wait}
	shared(bd)
	bsrv := mcpserver.New("test", []tools.Toolset{bd})
	b := &env{fake: a.fake, deps: bd, srv: bsrv}
	b.client = connect(t, bsrv, bd, nil)
	res := a.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs, "wait_seconds": 0.2})
	mustOK(t, res)
	var v betterprompt.RunView
	structured(t, res, &v)
	if _, isHandle := runs.HandleTime(v.RunID); !isHandle {
		t.Fatalf("the first call did not end with a temporary handle (the API still held the start): %+v", v)
	}
	res = b.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 10})
	mustOK(t, res)
	var w betterprompt.RunView
	structured(t, res, &w)
	if w.Status != "succeeded" || len(w.Outputs) == 0 {
		t.Fatalf("followed through the other replica: %+v\n%s", w, text(res))
	}
	if n := a.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("%d POSTs", n)
	}
	if strings.Contains(text(res), "another instance") {
		t.Errorf("the other replica did not know the handle: %s", text(res))
	}
}
