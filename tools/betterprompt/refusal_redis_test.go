package betterprompt_test

import (
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/state/redisstate"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// TestRunPromptCreateFaults's 402 and 422 cases, with the run records on
// Redis: the record keeps only the refusal's text, but the process that
// sent the request words the refusal from the error as returned (a 402 must
// not read "the API could not be reached; check the network").
func TestRefusalWordingWithRedisRecords(t *testing.T) {
	srv := redistest.Start(t)
	store := redisstate.New(srv.Client(t), "")
	for _, tc := range []struct {
		name  string
		fault fakeapi.Fault
		want  []string
	}{
		{"422 from the API", fakeapi.Fault{Status: 422}, []string{"422", "get_prompt", "Nothing was run"}},
		{"402 from the API", fakeapi.Fault{Status: 402}, []string{"402", "get_credits", "Nothing was run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withStartBound(300*time.Millisecond), withDeps(func(d *betterprompt.Toolset) { d.Records = store.Records() }))
			e.fake.InjectFault(routeCreate, tc.fault)
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
			t.Log(text(res))
			mustError(t, res, tc.want...)
		})
	}
}
