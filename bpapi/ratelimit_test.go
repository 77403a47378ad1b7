package bpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestPollersStayUnderTheLimit: 20 concurrent pollers sharing one key,
// through clients derived with WithAPIKey, against a server that enforces
// 5 requests per second per key with its own token bucket. No poller may be
// answered 429, and the server must see no more than the limit allows.
func TestPollersStayUnderTheLimit(t *testing.T) {
	t.Parallel()
	const (
		perSecond = 5
		burst     = 5
		pollers   = 20
		window    = 1500 * time.Millisecond
	)
	var (
		mu       sync.Mutex
		buckets  = map[string]*rate.Limiter{}
		accepted atomic.Int32
		limited  atomic.Int32
	)
	// The server's bucket has one token more than the client's burst: a
	// request released by the client limiter reaches the server a little
	// later, by a scheduling delay that varies from one request to the
	// next, and one token absorbs up to 200 ms of that jitter.
	srv, root := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Authorization")
		mu.Lock()
		b, ok := buckets[key]
		if !ok {
			b = rate.NewLimiter(perSecond, burst+1)
			buckets[key] = b
		}
		allowed := b.Allow()
		mu.Unlock()
		if !allowed {
			limited.Add(1)
			w.Header().Set("Retry-After", "1")
			reply(w, 429, failure(CodeTooManyRequests, "Rate limit exceeded", ""))
			return
		}
		accepted.Add(1)
		reply(w, 200, success(`{"runId":"`+runID+`","outputs":[],"runStatus":"running","tokens":0}`))
	}, func(o *Options) { o.RateLimit = 0; o.Burst = 0; o.APIKey = "" }) // the defaults: 5/s, burst 5

	start := time.Now()
	polls := PollConcurrently(t, root, testKey, pollers, runID, window)
	elapsed := time.Since(start)

	if n := limited.Load(); n != 0 {
		t.Errorf("the server answered 429 %d times", n)
	}
	got := int(accepted.Load())
	// A token bucket lets through at most burst + rate·t requests in t.
	max := burst + int(perSecond*elapsed.Seconds()) + 1
	if got > max {
		t.Errorf("server accepted %d requests in %v, more than %d", got, elapsed, max)
	}
	// A working limiter refills: more than one burst gets through.
	if got < burst+2 {
		t.Errorf("server accepted only %d requests in %v: the limiter is too strict", got, elapsed)
	}
	// A poll cut off by the window's end may have been accepted all the same.
	if polls > got {
		t.Errorf("%d successful polls, only %d accepted requests", polls, got)
	}
	if n := srv.count(); n != got {
		t.Errorf("server saw %d requests, accepted %d", n, got)
	}
	t.Logf("%d requests in %v (%.1f/s)", got, elapsed, float64(got)/elapsed.Seconds())
}

func TestLimiterRegistryShared(t *testing.T) {
	t.Parallel()
	root := New(Options{APIKey: "bp_key_a", BaseURL: "http://127.0.0.1:1/v1"})
	a1 := root.WithAPIKey("bp_key_a")
	a2 := a1.WithAPIKey("Bearer bp_key_a")
	b := a2.WithAPIKey("bp_key_b")
	la := root.limiters.get(root.cred.hash)
	for i, c := range []*Client{a1, a2} {
		if c.limiters != root.limiters || c.limiters.get(c.cred.hash) != la {
			t.Errorf("client %d does not share the limiter of its key", i)
		}
	}
	if b.limiters.get(b.cred.hash) == la {
		t.Error("two keys share one limiter")
	}
	if other := New(Options{APIKey: "bp_key_a"}); other.limiters == root.limiters {
		t.Error("two New calls share a registry")
	}
	if b.HasAPIKey() != true || b.BaseURL() != root.BaseURL() || b.httpc != root.httpc {
		t.Error("WithAPIKey did not keep the rest of the client")
	}
	if root.WithAPIKey("").HasAPIKey() {
		t.Error("WithAPIKey(\"\") has a key")
	}
	for h := range root.limiters.byKey {
		if string(h[:]) == "bp_key_a" {
			t.Error("registry keyed by the plain key")
		}
	}
}

func TestLimiterRegistrySweepsIdleKeys(t *testing.T) {
	t.Parallel()
	r := newLimiterRegistry(5, 5)
	for i := range sweepAbove {
		r.get([32]byte{byte(i), byte(i >> 8)})
	}
	kept := [32]byte{0xff, 0xff}
	lim := r.get(kept)
	r.mu.Lock()
	for k, e := range r.byKey {
		if k != kept {
			e.lastUsed = time.Now().Add(-2 * idleAfter)
		}
	}
	r.lastSweep = time.Time{}
	r.mu.Unlock()
	r.get([32]byte{0xfe, 0xff})
	r.mu.Lock()
	n := len(r.byKey)
	r.mu.Unlock()
	if n != 2 {
		t.Errorf("%d limiters after the sweep, want 2", n)
	}
	if r.get(kept) != lim {
		t.Error("a recently used limiter was replaced")
	}
}

// TestLimiterDeadline: a limiter wait that would pass the deadline fails at
// once with DeadlineExceeded, without a request.
func TestLimiterDeadline(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, okRun, func(o *Options) { o.RateLimit = 0.1; o.Burst = 1 }) // one token per 10 s
	if _, err := c.GetRun(context.Background(), runID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetRun(ctx, runID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The limiter refuses at once (its message says so) rather than
	// waiting for the context to expire.
	if !strings.Contains(err.Error(), "rate limiter") {
		t.Errorf("err = %v, want the limiter's refusal", err)
	}
	if srv.count() != 1 {
		t.Errorf("server saw %d requests, want 1", srv.count())
	}
}
