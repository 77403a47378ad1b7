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

// recordingLimiter records the key ids it is asked to wait for.
type recordingLimiter struct {
	mu   sync.Mutex
	keys []string
}

func (r *recordingLimiter) Wait(_ context.Context, keyID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, keyID)
	return nil
}

// Every client derived from one New call waits on the limiter it was given,
// under the identity of the key it sends: the forms of one key share it,
// two keys do not, and the key itself is never the identity.
func TestLimiterIsSharedByKey(t *testing.T) {
	t.Parallel()
	lim := &recordingLimiter{}
	_, root := newServer(t, answer(200, success(`{"username":null,"displayName":null,"userFlags":0}`)),
		func(o *Options) { o.APIKey, o.Limiter = "bp_key_a", lim })
	clients := []*Client{root, root.WithAPIKey("bp_key_a"), root.WithAPIKey("Bearer bp_key_a"), root.WithAPIKey("bp_key_b")}
	for _, c := range clients {
		if _, err := c.Me(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(lim.keys) != len(clients) {
		t.Fatalf("the limiter was asked %d times for %d requests", len(lim.keys), len(clients))
	}
	a := lim.keys[0]
	if lim.keys[1] != a || lim.keys[2] != a || lim.keys[3] == a {
		t.Errorf("key ids %v: want the first three equal and the fourth different", lim.keys)
	}
	for _, k := range lim.keys {
		if strings.Contains(k, "bp_key") {
			t.Errorf("the limiter's key id %q holds the key", k)
		}
	}
	b := clients[3]
	if b.BaseURL() != root.BaseURL() || b.httpc != root.httpc || b.limiter != root.limiter {
		t.Error("WithAPIKey did not keep the rest of the client")
	}
	if root.WithAPIKey("").HasAPIKey() {
		t.Error("WithAPIKey(\"\") has a key")
	}
	if New(Options{}).limiter == New(Options{}).limiter {
		t.Error("two New calls share a limiter")
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
