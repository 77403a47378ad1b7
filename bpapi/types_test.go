package bpapi

import (
	"encoding/json"
	"testing"
)

func TestRunStatusLenient(t *testing.T) {
	cases := map[string]RunStatus{
		`"succeeded"`: RunSucceeded, `"SUCCEEDED"`: RunSucceeded, `"Completed"`: RunSucceeded,
		`"failed"`: RunFailed, `"canceled"`: RunFailed, `"ERROR"`: RunFailed,
		`"queued"`: RunQueued, `"pending"`: RunQueued,
		`"running"`: RunRunning, `"in-progress"`: RunRunning, `"mystery"`: RunRunning, `3`: RunRunning,
	}
	for in, want := range cases {
		var r struct {
			S RunStatus `json:"runStatus"`
		}
		if err := json.Unmarshal([]byte(`{"runStatus":`+in+`}`), &r); err != nil || r.S != want {
			t.Errorf("%s → %q, %v; want %q", in, r.S, err, want)
		}
	}
}
