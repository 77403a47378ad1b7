package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/state/redisstate"
)

// Tests from the review of the Redis store (each failed before its fix).

type hookFirstExec struct {
	once sync.Once
	f    func()
}

func (h *hookFirstExec) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *hookFirstExec) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *hookFirstExec) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "exec" {
				h.once.Do(h.f)
			}
		}
		return next(ctx, cmds)
	}
}

// A step's results are set before EXEC and not reset when a retry
// finds the record gone (swept meanwhile): Settle then reports a
// confirmation it never wrote (Applied, StateStarted, a job), and nothing
// is claimed.
func TestStepResultsAreResetOnRetry(t *testing.T) {
	_, srv := replicas(t, 1)
	ctx := context.Background()
	c := srv.Client(t)
	other := srv.Client(t)
	r := redisstate.New(c, "").Records()
	begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: t0, LastSent: t0})
	_, _, _ = r.Finish(ctx, "h1", runs.Answer{At: t0.Add(time.Second), Unknown: true, Err: errors.New("reset")})
	// Another replica's sweep forgets h1 while this Settle is in flight.
	c.AddHook(&hookFirstExec{f: func() { other.Del(ctx, "bpmcp:v1:runs:{records}:rec:h1") }})
	job := runs.Job{ID: "job-x", Kind: kindA, CreatedAt: t0}
	st, err := r.Settle(ctx, "h1", runs.Look{At: t0.Add(2 * time.Second), Candidates: []runs.Job{job}}, rules)
	n, _ := other.Exists(ctx, "bpmcp:v1:runs:{records}:claim:job-x").Result()
	claimed := n == 1
	if err == nil && st.Applied && !claimed {
		t.Errorf("Settle reports %v/%q applied, but nothing was written (the record is gone, job-x unclaimed)", st.State, st.JobID)
	}
}

// --rate-limit 0 (to bpapi: "the default, 5/s") or below (to bpapi: no
// limit) reaches the Redis limiter unchanged through main.go's
// buildToolsets: 1/rate is +Inf (or negative), whose conversion to a
// Duration is undefined, and the script fails; the local fallback is
// built with the same rate.
func TestRateLimiterRateAsBpapiReadsIt(t *testing.T) {
	stores, _ := replicas(t, 1)
	for _, rate := range []float64{0, -1} {
		l := stores[0].RateLimiter(rate, 2).WithFallback(state.NewRateLimiter(rate, 2)) // as main.go builds it
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n := 0
		var err error
		for ; n < 10; n++ {
			if err = l.Wait(ctx, "k"); err != nil {
				break
			}
		}
		cancel()
		bare := stores[0].RateLimiter(rate, 2).Wait(context.Background(), "k2")
		t.Logf("rate %g: %d of 10 requests let through in 2 s (%v); without the fallback: %v", rate, n, err, bare)
		if n < 10 {
			t.Errorf("rate %g: the shared limiter does not do what bpapi does with it (default 5/s, or none)", rate)
		}
	}
}

// A replica that died while the API held its request leaves a pending
// record; once its sender's lease lapsed it competes only over the time its
// request can have been in flight, so later unknown outcomes of its kind
// can be confirmed again (before leases, it competed for ever).
func TestDeadReplicasPendingRecordStopsCompeting(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		old := time.Now().Add(-72 * time.Hour)
		begin(t, r, runs.Record{Handle: "dead", Tenant: "x", Kind: kindA, Submitted: old, LastSent: old})
		if err := r.Renew(ctx, "dead", old.Add(runs.SenderLease)); err != nil {
			t.Fatal(err)
		}
		now := time.Now().Add(-time.Minute)
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: now, LastSent: now})
		if _, _, err := r.Finish(ctx, "h1", runs.Answer{At: now.Add(time.Second), Unknown: true, Err: errors.New("reset")}); err != nil {
			t.Fatal(err)
		}
		rl := runs.Rules{StartBound: 150 * time.Second, Exclusive: true, InheritedUntil: now.Add(-time.Hour)}
		job := runs.Job{ID: "job-x", Kind: kindA, Status: runs.Running, CreatedAt: now}
		st, err := r.Settle(ctx, "h1", runs.Look{At: now.Add(2 * time.Second), Candidates: []runs.Job{job}}, rl)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != runs.StateStarted {
			t.Errorf("h1's only candidate was not confirmed: a dead replica's record competes with it (state %v)", st.State)
		}
	})
}

// Every step WATCHes the one hash of all records, so any write to any
// record (a Sent, a Watch, another tenant's Begin) aborts every step in
// flight; after 50 attempts the step fails with ErrUnavailable and the run
// is refused. Modest load: 3 replicas, 48 callers, each only recording
// Sent on its own handle.
func TestRecordsStepsHoldUnderLoad(t *testing.T) {
	stores, _ := replicas(t, 3)
	ctx := context.Background()
	const callers = 96
	for i := range callers {
		begin(t, stores[0].Records(), runs.Record{Handle: fmt.Sprintf("h%d", i), Tenant: "a", Kind: kindA, Submitted: t0})
	}
	var ops, failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(1500 * time.Millisecond)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := stores[i%3].Records()
			for time.Now().Before(stop) {
				err := r.Sent(ctx, fmt.Sprintf("h%d", i), time.Now())
				ops.Add(1)
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d independent Sent steps failed: %v", failed.Load(), ops.Load(), first.Load())
	}
}

// A competitor whose record cannot be read may have started the job: a
// step that needs the competitors refuses (fails closed) rather than
// confirm a job beside it.
func TestUnreadableCompetitorFailsClosed(t *testing.T) {
	_, srv := replicas(t, 1)
	ctx := context.Background()
	c := srv.Client(t)
	r := redisstate.New(c, "").Records()
	now := time.Now().Add(-time.Minute)
	begin(t, r, runs.Record{Handle: "other", Tenant: "x", Kind: kindA, Submitted: now, LastSent: now})
	begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: now, LastSent: now})
	if _, _, err := r.Finish(ctx, "h1", runs.Answer{At: now.Add(time.Second), Unknown: true, Err: errors.New("reset")}); err != nil {
		t.Fatal(err)
	}
	c.HSet(ctx, "bpmcp:v1:runs:{records}:rec:other", "body", "{not json")
	rl := runs.Rules{StartBound: 150 * time.Second, Exclusive: true, InheritedUntil: now.Add(-time.Hour)}
	job := runs.Job{ID: "job-x", Kind: kindA, Status: runs.Running, CreatedAt: now}
	st, err := r.Settle(ctx, "h1", runs.Look{At: now.Add(2 * time.Second), Candidates: []runs.Job{job}}, rl)
	if err == nil && st.State == runs.StateStarted {
		t.Errorf("confirmed beside a competitor that could not be read: %+v", st)
	}
}
