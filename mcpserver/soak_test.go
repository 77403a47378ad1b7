package mcpserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// TestSessionSoak opens many sessions, abandons them and lets the idle TTL
// end them: the heap must return to its baseline and no session may be
// left, in mcp-go or in the id manager. Made-up session ids sending
// logging/setLevel are refused (404) and leave nothing. 2,000 sessions by
// default; 20,000 with -load. It does not run in parallel with other tests,
// whose allocations would blur the heap figures.
//
// Every session must still be open once the last has opened, so the TTL has
// to outlast the opening, which takes from one second to several on a
// loaded machine with the race detector. Rather than guess, the test times
// opening a tenth of the sessions on a server of its own and sets the TTL to
// three times what opening all of them should take (3 s at least).
func TestSessionSoak(t *testing.T) {
	n := 2000
	if *load {
		n = 20000
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	post := func(url, id, body string) (int, string, error) {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if id != "" {
			req.Header.Set(server.HeaderKeySessionID, id)
			req.Header.Set("MCP-Protocol-Version", legacyVersion)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get(server.HeaderKeySessionID), err
	}
	heapInUse := func() uint64 {
		hc.CloseIdleConnections()
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}

	// open opens count sessions on e, 16 at a time, and returns their ids
	// and how long it took.
	open := func(e *httpEnv, count int) ([]string, time.Duration) {
		ids := make([]string, count)
		var failures atomic.Int64
		var firstFailure sync.Once
		fail := func(format string, args ...any) {
			failures.Add(1)
			firstFailure.Do(func() { t.Errorf(format, args...) })
		}
		start := time.Now()
		var wg sync.WaitGroup
		work := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range work {
					status, id, err := post(e.url, "", initializeBody)
					if err != nil || status != http.StatusOK || id == "" {
						fail("initialize %d: HTTP %d, %v", i, status, err)
						continue
					}
					ids[i] = id
					if status, _, err := post(e.url, id, initializedBody); err != nil || status != http.StatusAccepted {
						fail("notifications/initialized %d: HTTP %d, %v", i, status, err)
					}
					madeUp := fmt.Sprintf("mcp-session-%08d-made-up", i)
					setLevel := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"logging/setLevel","params":{"level":"debug"}}`, i)
					if status, _, err := post(e.url, madeUp, setLevel); err != nil || status != http.StatusNotFound {
						fail("setLevel with a made-up session id: HTTP %d, %v; want 404", status, err)
					}
				}
			})
		}
		for i := range count {
			work <- i
		}
		close(work)
		wg.Wait()
		if failures.Load() > 0 {
			t.Fatalf("%d requests failed", failures.Load())
		}
		return ids, time.Since(start)
	}

	calibration := newHTTPEnv(t, HTTPOptions{MaxSessions: n})
	_, sample := open(calibration, n/10)
	ttl := max(3*time.Second, 30*sample).Round(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := calibration.transport.streamable.Shutdown(ctx); err != nil { // out of the heap figures
		t.Fatal(err)
	}

	e := newHTTPEnv(t, HTTPOptions{MaxSessions: n + 1, SessionIdleTTL: ttl})
	// Warm up (first-use allocations of the server and the client), then
	// measure the baseline.
	e.session(t)
	baseline := heapInUse()
	ids, opened := open(e, n)
	stillOpen := e.transport.sessions.count()
	peak := heapInUse()
	if stillOpen != n+1 {
		t.Errorf("%d sessions open after opening %d (and 1 to warm up); was the TTL (%v) shorter than opening them took (%v)?", stillOpen, n, ttl, opened)
	}

	// A session ends between one TTL and one and a half after its last
	// request (the sweeper runs every TTL/2); the TTL follows the machine's
	// speed, and so does this bound.
	eventuallyWithin(t, 2*ttl+10*time.Second, "every session has expired", func() bool {
		if e.transport.sessions.count() > 0 {
			return false
		}
		for _, id := range ids {
			if e.mcp.SendNotificationToSpecificClient(id, "notifications/message", nil) != server.ErrSessionNotFound {
				return false
			}
		}
		return true
	})
	after := heapInUse()
	const mib = 1 << 20
	t.Logf("%d sessions opened in %v (+%d made-up ids refused; TTL %v); heap in use: baseline %.1f MiB, with the sessions open %.1f MiB (%.1f KiB a session), after they expired %.1f MiB; sessions open: %d, then %d",
		n, opened.Round(time.Millisecond), n, ttl, float64(baseline)/mib, float64(peak)/mib, float64(peak-baseline)/1024/float64(n),
		float64(after)/mib, stillOpen, e.transport.sessions.count())
	// The margin: 2 MiB, or a tenth of what the sessions took, whichever is
	// more (the heap moves by a few hundred KiB between runs).
	margin := max(uint64(2*mib), (peak-baseline)/10)
	if after > baseline+margin {
		t.Errorf("heap in use %.1f MiB after every session expired, more than baseline %.1f MiB + margin %.1f MiB",
			float64(after)/mib, float64(baseline)/mib, float64(margin)/mib)
	}
}
