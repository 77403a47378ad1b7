package fakeapi

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// Inside a bubble the pipe server's holds and latencies pass on the fake
// clock, to the nanosecond, and its cleanup ends a request still held when
// the test returns (synctest.Test fails on a goroutine left blocked).
func TestPipeServerInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, base, client := NewPipeServer(t, Options{Catalogue: catalogue, RateLimit: -1, TimeScale: 1, SyncWindow: 20 * time.Second})
		h := &harness{t: t, s: s, base: base, client: client}

		s.InjectFault("GET /v1/me/credits", Fault{Latency: time.Hour})
		begin := time.Now()
		expect(t, h.call("GET", "/me/credits", nil), 200, "SUCCESS", "")
		if took := time.Since(begin); took != time.Hour {
			t.Errorf("an hour's latency took %v", took)
		}

		begin = time.Now()
		expect(t, h.call("POST", "/runs", researchBody), 504, "GATEWAY_TIMEOUT_ERROR", "")
		if took := time.Since(begin); took != 20*time.Second {
			t.Errorf("a 20 s hold took %v", took)
		}

		// Held when the test returns: the cleanup's Close answers it.
		go func() {
			_, _ = h.trySend("POST", "/runs", researchBody, http.Header{"Authorization": {"Bearer " + TestKey}})
		}()
		synctest.Wait()
		if n := len(s.Runs(TestKey)); n != 2 {
			t.Errorf("%d runs, want 2", n)
		}
	})
}
