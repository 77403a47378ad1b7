package redisstate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/state/redisstate"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// The Redis state fits the interfaces the in-memory state does.
var (
	_ bpapi.Limiter          = (*redisstate.RateLimiter)(nil)
	_ betterprompt.WaitSlots = (*redisstate.Slots)(nil)
	_ spending.Budgets       = (*redisstate.Budgets)(nil)
)

// replicas returns n Stores on one redis-server, as n replicas would have.
func replicas(t *testing.T, n int) ([]*redisstate.Store, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	out := make([]*redisstate.Store, n)
	for i := range out {
		out[i] = redisstate.New(srv.Client(t), "")
	}
	return out, srv
}

func TestRateLimiterIsShared(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 3)
	limiters := []*redisstate.RateLimiter{stores[0].RateLimiter(2, 2), stores[1].RateLimiter(2, 2), stores[2].RateLimiter(2, 2)}
	ctx := context.Background()
	for _, l := range limiters { // connections dialled and the script loaded, so that only the rate is timed
		if err := l.Wait(ctx, "warm-up"); err != nil {
			t.Fatal(err)
		}
	}
	// The burst of 2 goes at once, whichever replica sends it.
	for i := range 2 {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if err := limiters[i].Wait(short, "k"); err != nil {
			t.Fatalf("request %d of the burst: %v", i, err)
		}
		cancel()
	}
	// The third, on another replica, must wait its interval (500 ms): a
	// call that cannot wait that long is refused and reserves nothing.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := limiters[2].Wait(short, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third request within 20 ms: %v, want DeadlineExceeded", err)
	}
	if err := limiters[2].Wait(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	// Another key has a rate of its own.
	short2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := limiters[0].Wait(short2, "other"); err != nil {
		t.Errorf("another key waited for k's rate: %v", err)
	}
}

// Under concurrency, 3 replicas hand out request slots no faster than the
// rate: 12 requests at 20/s with a burst of 2 need at least 0.5 s, which
// their last slot shows (Redis's clock, not this process's).
func TestRateLimiterUnderConcurrency(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	start := time.Now()
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stores[i%3].RateLimiter(20, 2).Wait(ctx, "k"); err != nil {
				t.Error(err)
			}
			mu.Lock()
			if now := time.Now(); now.After(last) {
				last = now
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if d := last.Sub(start); d < 450*time.Millisecond {
		t.Errorf("12 requests at 20/s (burst 2) were all let through within %v", d)
	}
}

func TestSlotsAreLeases(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 2)
	a, b := stores[0].Slots(), stores[1].Slots()
	ctx := context.Background()
	rel, ok, err := a.Acquire(ctx, "k", 2, time.Minute)
	if err != nil || !ok {
		t.Fatalf("first slot: %v %v", ok, err)
	}
	if _, ok, _ := b.Acquire(ctx, "k", 2, 150*time.Millisecond); !ok {
		t.Fatal("second slot on another replica refused")
	}
	if _, ok, _ := a.Acquire(ctx, "k", 2, time.Minute); ok {
		t.Fatal("a third slot of 2 was granted")
	}
	if n, _ := b.Held(ctx, "k"); n != 2 {
		t.Fatalf("held %d, want 2", n)
	}
	rel()
	rel()                              // twice is harmless
	time.Sleep(200 * time.Millisecond) // the short lease expires
	if n, _ := a.Held(ctx, "k"); n != 0 {
		t.Fatalf("held %d after a release and an expiry, want 0", n)
	}
}

func TestBudgetsReserveSettleAndRoll(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 2)
	a, b := stores[0].Budgets(), stores[1].Budgets()
	ctx := context.Background()
	const limit, window = 100, 400 * time.Millisecond
	if s, ok, err := a.Reserve(ctx, "k", "r1", 40, limit, window); err != nil || !ok || s != (state.Spend{Limit: 100, Reserved: 40, Left: 60}) {
		t.Fatalf("reserve r1: %+v %v %v", s, ok, err)
	}
	if s, ok, _ := b.Reserve(ctx, "k", "r2", 70, limit, window); ok || s.Left != 60 {
		t.Fatalf("r2 past the budget, on another replica: %+v %v", s, ok)
	}
	_ = b.Settle(ctx, "k", "r1", 30)
	if s, _ := a.Report(ctx, "k", limit, window); s != (state.Spend{Limit: 100, Spent: 30, Left: 70}) {
		t.Fatalf("after settling: %+v", s)
	}
	if _, ok, _ := a.Reserve(ctx, "k", "r3", 70, limit, window); !ok {
		t.Fatal("r3 within what is left was refused")
	}
	if _, ok, _ := a.Reserve(ctx, "k", "r4", 0, limit, window); ok {
		t.Fatal("a free run was let through a budget all used")
	}
	_ = b.Release(ctx, "k", "r3")
	if s, _ := b.Report(ctx, "k", limit, window); s.Spent != 30 || s.Reserved != 0 {
		t.Fatalf("after releasing: %+v", s)
	}
	_ = a.Settle(ctx, "k", "gone", 10) // unknown: nothing happens
	time.Sleep(window + 50*time.Millisecond)
	if s, _ := a.Report(ctx, "k", limit, window); s.Spent != 0 || s.Left != 100 {
		t.Fatalf("after the window: %+v", s)
	}
}

// Many replicas reserving at once never take a key past its budget.
func TestBudgetsUnderConcurrency(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := stores[i%3].Budgets().Reserve(ctx, "k", string(rune('a'+i%26))+string(rune('0'+i/26)), 40, 200, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted != 5 {
		t.Errorf("%d reservations of 40 against 200, want 5", granted)
	}
}

// When Redis is gone, every guard fails closed, with ErrUnavailable.
func TestUnavailableFailsClosed(t *testing.T) {
	t.Parallel()
	stores, srv := replicas(t, 1)
	s := stores[0]
	srv.Stop()
	ctx := context.Background()
	if _, _, err := s.Budgets().Reserve(ctx, "k", "r", 1, 10, time.Hour); !errors.Is(err, redisstate.ErrUnavailable) {
		t.Errorf("budget: %v", err)
	}
	if _, _, err := s.Slots().Acquire(ctx, "k", 1, time.Minute); !errors.Is(err, redisstate.ErrUnavailable) {
		t.Errorf("slots: %v", err)
	}
	if err := s.RateLimiter(5, 1).Wait(ctx, "k"); !errors.Is(err, redisstate.ErrUnavailable) {
		t.Errorf("rate limit: %v", err)
	}
}

// Every command is observed by name, without its keys; a missing key is
// not an error, a server that is gone is.
func TestObserve(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	var mu sync.Mutex
	seen, errs := map[string]int{}, map[string]int{}
	redisstate.Observe(c, func(op string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen[op]++
		if err != nil {
			errs[op]++
		}
	})
	ctx := context.Background()
	_ = c.Get(ctx, "bpmcp:secret-looking-key").Err()
	_, _ = c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "k", "v", 0); return nil })
	mu.Lock()
	if seen["get"] != 1 || seen["transaction"] != 1 || errs["get"]+errs["transaction"] != 0 {
		t.Errorf("observed %v with errors %v", seen, errs)
	}
	for op := range seen {
		if strings.Contains(op, "secret") {
			t.Errorf("a key reached an operation name: %q", op)
		}
	}
	mu.Unlock()
	srv.Stop()
	_ = c.Get(ctx, "k").Err()
	mu.Lock()
	defer mu.Unlock()
	if errs["get"] == 0 {
		t.Errorf("a failed command was not observed as an error: %v", errs)
	}
}

// An accepted confirmation is used once across replicas; with Redis gone,
// its use fails (closed) rather than let it through.
func TestNoncesAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := redisstate.New(srv.Client(t), "").Nonces(), redisstate.New(srv.Client(t), "").Nonces()
	var _ spending.Nonces = a
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if ok, err := a.Use(ctx, "n1", until); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := b.Use(ctx, "n1", until); ok || err != nil {
		t.Errorf("second use on another replica: %v %v", ok, err)
	}
	srv.Stop()
	if ok, err := b.Use(ctx, "n2", until); ok || !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("with Redis gone: %v %v", ok, err)
	}
}
