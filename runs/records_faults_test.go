package runs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The engine over records that answer late, fail, or outlive the process
// that wrote them, as a store shared by processes may.

// slowFinish is a store whose answer to Finish comes back a moment after
// the write took effect (a network round trip): a waiter may read the new
// record before the sender hears back.
type slowFinish struct {
	*MemoryRecords
	delay time.Duration
}

func (s slowFinish) Finish(ctx context.Context, handle string, a Answer) (Record, string, error) {
	rec, prev, err := s.MemoryRecords.Finish(ctx, handle, a)
	time.Sleep(s.delay)
	return rec, prev, err
}

// countingUpstream counts the reads of a job, and ends a runaway loop by
// making the job final after many of them.
type countingUpstream struct {
	*fakeUpstream
	gets atomic.Int64
}

func (c *countingUpstream) Get(ctx context.Context, id string) (*Job, error) {
	if c.gets.Add(1) == 500 {
		c.succeed(id)
	}
	return c.fakeUpstream.Get(ctx, id)
}

// A waiter that reads the record as answered before this process's start
// request has closed its channel keeps that closed channel as its wake-up,
// and then reads the job upstream without pausing: a busy loop against the
// upstream's rate limit until the deadline.
func TestWaiterDoesNotSpinOnceTheStartAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestEnv(t, false, func(c *Config) {
			c.Records = slowFinish{NewMemoryRecords(), 20 * time.Millisecond}
		})
		up := &countingUpstream{fakeUpstream: v.up}
		ctx := context.Background()
		// The upstream stops holding the request and names the job (504),
		// which runs on.
		out, err := v.e.Run(ctx, up, Call{Tenant: "t", Kind: researchKind}, up.start(researchKind, true), time.Now().Add(2*time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = out
		// Over a 2 s wait at PollMin 50 ms (stretched to 250 ms per key),
		// about 10 reads are due.
		if n := up.gets.Load(); n > 50 {
			t.Errorf("the job was read %d times within a 2 s wait: the waiter spins", n)
		}
		_ = v.e.Drain(ctx)
	})
}

// sentFails is a store whose Sent fails from the nth call on.
type sentFails struct {
	*MemoryRecords
	n     int
	calls atomic.Int64
}

func (s *sentFails) Sent(ctx context.Context, handle string, at time.Time) error {
	if int(s.calls.Add(1)) >= s.n {
		return errors.New("store unavailable")
	}
	return s.MemoryRecords.Sent(ctx, handle, at)
}

// A 429 that may have created a job (a 429 code in a 5xx answer), after
// which the store fails to record the resend, means what that 429 means
// once it is not sent again: the outcome is unknown. Recording it as
// refused tells the agent that nothing was started, and nobody watches the
// job list for the job the first request may have created.
func TestStoreFailureBeforeAResendKeepsTheFirstRequestsMeaning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &sentFails{MemoryRecords: NewMemoryRecords(), n: 1} // the first Sent is the resend's: the first sending is the record's submission
		v := newTestEnv(t, false, func(c *Config) { c.Records = store })
		var starts atomic.Int64
		start := func(context.Context) (*Job, error) {
			starts.Add(1)
			return nil, &fakeErr{f: Failure{Kind: RateLimited, RetryAfter: 100 * time.Millisecond, Then: OutcomeUnknown}, msg: "502 TOO_MANY_REQUESTS_ERROR"}
		}
		ctx := context.Background()
		// coldEmailKind: the job list shows nothing of the kind at the
		// first 429, so the engine means to send again.
		out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: coldEmailKind}, start, time.Now().Add(time.Second), nil)
		var refused *RefusedError
		if errors.As(err, &refused) {
			t.Errorf("Run = %v: a start whose 429 may have created a job is reported as refused (nothing started)", err)
		} else if err != nil || out.State != StateUnknown {
			t.Errorf("Run = %+v, %v; want an unknown outcome", out, err)
		}
		if n := starts.Load(); n != 1 {
			t.Fatalf("%d start requests; want 1", n)
		}
		_ = v.e.Drain(ctx)
	})
}

// A 429 whose answer names the job it created (Then TimedOut) is never
// sent again: the job exists. The job list may not show it in the
// submission's window (the upstream's clock a few seconds behind, a list
// that lags), and the second request is a second paid job.
func TestA429ThatNamesItsJobIsNeverSentAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestEnv(t, false)
		var starts atomic.Int64
		start := func(context.Context) (*Job, error) {
			if starts.Add(1) > 1 {
				j := v.up.add(coldEmailKind, time.Now())
				return &j, nil
			}
			// The upstream's clock is 10 s behind this one's.
			j := v.up.add(coldEmailKind, time.Now().Add(-10*time.Second))
			return nil, &fakeErr{f: Failure{Kind: RateLimited, RetryAfter: 100 * time.Millisecond, Then: TimedOut, JobID: j.ID}, msg: "504 TOO_MANY_REQUESTS_ERROR " + j.ID}
		}
		ctx := context.Background()
		if _, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: coldEmailKind}, start, time.Now().Add(time.Second), nil); err != nil {
			t.Log(err)
		}
		_ = v.e.Drain(ctx)
		if n := starts.Load(); n != 1 {
			t.Errorf("%d start requests after a 429 that named its job; want 1 (each is a paid job)", n)
		}
	})
}

// finishFails is a store whose Finish fails while down is set.
type finishFails struct {
	*MemoryRecords
	mu   sync.Mutex
	down bool
}

func (f *finishFails) Finish(ctx context.Context, handle string, a Answer) (Record, string, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return Record{}, "", errors.New("store unavailable")
	}
	return f.MemoryRecords.Finish(ctx, handle, a)
}

func (f *finishFails) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// When the start request's answer cannot be recorded for a couple of
// seconds (a store failing over), the submission must still end: the
// answer is recorded once the store is back, so the handle resolves to the
// job id this process holds, and an unknown outcome is still recovered
// through the job list. As merged, the engine gives up after about a
// second: the record stays pending for ever, the handle never yields the
// paid job, and an unknown outcome is never looked for.
func TestStartAnswerIsRecordedOnceTheStoreIsBack(t *testing.T) {
	t.Run("the upstream named the job", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := &finishFails{MemoryRecords: NewMemoryRecords(), down: true}
			v := newTestEnv(t, false, func(c *Config) { c.Records = store })
			ctx := context.Background()
			out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: researchKind}, v.up.start(researchKind, false), time.Now().Add(500*time.Millisecond), nil)
			if err != nil {
				t.Fatal(err)
			}
			handle := out.Handle
			if out.Job != nil {
				handle = ""
			}
			time.Sleep(5 * time.Second) // the store is down for 5 s
			store.setDown(false)
			if handle != "" {
				out, err = v.e.Follow(ctx, v.up, "t", handle, time.Now().Add(30*time.Second), nil)
				if err != nil || out.Job == nil {
					t.Errorf("Follow(%s) once the store is back = state %d job %v, %v; want the job the upstream named", handle, out.State, out.Job, err)
				}
			}
			_ = v.e.Drain(ctx)
		})
	})
	t.Run("the outcome is unknown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := &finishFails{MemoryRecords: NewMemoryRecords(), down: true}
			v := newTestEnv(t, false, func(c *Config) { c.Records = store; c.StartBound = 10 * time.Second })
			ctx := context.Background()
			start := func(context.Context) (*Job, error) {
				v.up.add(coldEmailKind, time.Now()) // the request created a job, then the connection broke
				return nil, errUnknown
			}
			out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: coldEmailKind}, start, time.Now().Add(500*time.Millisecond), nil)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Second)
			store.setDown(false)
			time.Sleep(time.Minute) // well past the start bound
			out, err = v.e.Follow(ctx, v.up, "t", out.Handle, time.Now().Add(10*time.Second), nil)
			if err != nil || out.State != StateUnknown || out.Look == nil || len(out.Look.Candidates) != 1 {
				t.Errorf("Follow once the store is back = state %d look %+v, %v; want the unknown outcome and its candidate", out.State, out.Look, err)
			}
			if !strings.Contains(v.logs.String(), "a run that may be this submission's shows in the run list") {
				t.Errorf("the job the request may have created was never looked for nor logged:\n%s", v.logs.String())
			}
			_ = v.e.Drain(ctx)
		})
	})
}

// On a store that processes share, a record outlives the process that made
// it. A process that dies while the upstream holds its start request, or
// while it watches the job list, leaves a record that says "pending" or
// "watched" for ever: every other process then waits on it and never
// decides, where a handle nobody knew would be resolved from the job list
// (foreignHandle). Past the time the request can have been in flight
// (CreateTimeout), and past the start bound, the answer must be
// definitive.
func TestOrphanedRecordsOnASharedStoreResolve(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  func(submitted time.Time) Record
	}{
		{name: "pending, its sender died", rec: func(at time.Time) Record {
			return Record{Kind: coldEmailKind, Submitted: at, LastSent: at, State: StatePending}
		}},
		{name: "unknown, its watcher died", rec: func(at time.Time) Record {
			return Record{Kind: coldEmailKind, Submitted: at, LastSent: at, Finished: at.Add(time.Minute), State: StateUnknown, Watched: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shared := NewMemoryRecords()
				v := newTestEnv(t, false, func(c *Config) { c.Records = pollOnly{shared} })
				at := time.Now().Add(-time.Hour) // the other process died an hour ago
				rec := tc.rec(at)
				rec.Handle, rec.Tenant = NewHandle(at, coldEmailKind), "t"
				put(shared, rec)
				out, err := v.e.Follow(context.Background(), v.up, "t", rec.Handle, time.Now().Add(5*time.Second), nil)
				if err != nil || out.State != StateNotStarted {
					t.Errorf("Follow = state %d (look %+v), %v; want not started: no job of the kind in the window, which closed long ago",
						out.State, out.Look, err)
				}
			})
		})
	}
}

// A replica that dies while the upstream holds its start request leaves a
// pending record whose sender's lease (AliveUntil) lapses long before the
// request's own time (CreateTimeout) would: a process that follows the
// handle then looks at the job list at once instead of saying "still
// starting" for minutes.
func TestPendingRecordWhoseSenderLeaseLapsedIsLookedUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := NewMemoryRecords()
		v := newTestEnv(t, false, func(c *Config) { c.Records = pollOnly{shared} })
		at := time.Now().Add(-20 * time.Second) // well within CreateTimeout
		rec := Record{Kind: coldEmailKind, Submitted: at, LastSent: at, State: StatePending, AliveUntil: at.Add(SenderLease)}
		rec.Handle, rec.Tenant = NewHandle(at, coldEmailKind), "t"
		put(shared, rec)
		out, err := v.e.Follow(context.Background(), v.up, "t", rec.Handle, time.Now().Add(5*time.Second), nil)
		if err != nil || out.State != StateUnknown || out.Look == nil {
			t.Errorf("Follow = state %d, look %+v, %v; want unknown after a look at the job list", out.State, out.Look, err)
		}
		if got, _, _ := shared.Get(context.Background(), rec.Handle, "t"); got.State != StateUnknown || !errors.Is(got.Err, ErrOrphaned) {
			t.Errorf("the record stays %+v", got)
		}
	})
}

// Once another process has declared a record's sender gone, the sender
// (a replica that stalled past its lease) must not send its start request:
// Sent refuses, and nothing reaches the upstream.
func TestSentRefusesARecordNoLongerPending(t *testing.T) {
	m := NewMemoryRecords()
	ctx := context.Background()
	at := time.Now().Add(-time.Minute)
	rec := Record{Handle: NewHandle(at, coldEmailKind), Tenant: "t", Kind: coldEmailKind, Submitted: at, LastSent: at,
		AliveUntil: at.Add(SenderLease)}
	if _, _, err := m.Begin(ctx, rec, false); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Orphan(ctx, rec.Handle, time.Hour); err != nil || got.State != StateUnknown {
		t.Fatalf("orphan after the lease lapsed: %+v %v", got, err)
	}
	if err := m.Sent(ctx, rec.Handle, time.Now()); !errors.Is(err, ErrOrphaned) {
		t.Errorf("Sent after the record was orphaned = %v, want ErrOrphaned", err)
	}
}

// With a store shared by processes (no Notifier), a call whose own start
// request answers at once is answered at once: its process knows, and
// does not wait for the next reading of the records (PollMin).
func TestSharedStoreWaiterWakesOnItsOwnAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestEnv(t, false, func(c *Config) {
			c.Records = pollOnly{NewMemoryRecords()}
			c.PollMin, c.PollMax = 5*time.Second, 10*time.Second
		})
		ctx := context.Background()
		began := time.Now()
		start := func(context.Context) (*Job, error) { // the run ends within its start request
			j := v.up.add(researchKind, time.Now())
			j.Status = Succeeded
			return &j, nil
		}
		out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: researchKind}, start, time.Now().Add(time.Minute), nil)
		if err != nil || out.Job == nil || out.Job.Status != Succeeded {
			t.Fatalf("Run = %+v, %v", out, err)
		}
		if took := time.Since(began); took >= time.Second {
			t.Errorf("the call was answered %v after its start request answered; the records are read every 5 s", took)
		}
		_ = v.e.Drain(ctx)
	})
}

// countingGets counts the records' reads.
type countingGets struct {
	pollOnly
	gets atomic.Int32
}

func (c *countingGets) Get(ctx context.Context, handle, tenant string) (Record, bool, error) {
	c.gets.Add(1)
	return c.pollOnly.Get(ctx, handle, tenant)
}

// On a store shared by processes each reading is a round trip; the process
// that sends a start request knows its record until the answer is
// recorded, and the answer's record when it is final, so its own call
// reads nothing. A record another process must settle (an unknown
// outcome) is read from the store.
func TestSenderReadsNoRecordItKnows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := &countingGets{pollOnly: pollOnly{NewMemoryRecords()}}
		v := newTestEnv(t, false, func(c *Config) { c.Records = recs })
		ctx := context.Background()
		answer := make(chan struct{})
		start := func(ctx context.Context) (*Job, error) { // answers when told, with a finished run
			<-answer
			j := v.up.add(researchKind, time.Now())
			j.Status = Succeeded
			return &j, nil
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: researchKind}, start, time.Now().Add(time.Minute), nil)
			if err != nil || out.Job == nil || out.Job.Status != Succeeded {
				t.Errorf("Run = %+v, %v", out, err)
			}
		}()
		time.Sleep(3 * v.e.cfg.PollMin) // the waiter looks several times while the POST is held
		close(answer)
		<-done
		if n := recs.gets.Load(); n != 0 {
			t.Errorf("the sender's own call read its record %d times", n)
		}

		// An unknown outcome: recovery changes the record, in the store.
		unknown := func(context.Context) (*Job, error) {
			return nil, &fakeErr{msg: "connection reset", f: Failure{Kind: OutcomeUnknown}}
		}
		_, _ = v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: researchKind}, unknown, time.Now().Add(5*time.Second), nil)
		if recs.gets.Load() == 0 {
			t.Error("a record whose outcome is unknown was never read from the store")
		}
		_ = v.e.Drain(ctx)
	})
}

// The first start request, sent as the record is begun, is recorded by the
// record itself (its submission time, and the sender's fresh lease): no
// Sent. A resend after a 429 is recorded, so that its job's window counts
// from it.
func TestOnlyResendsAreRecordedAsSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &sentFails{MemoryRecords: NewMemoryRecords(), n: 1 << 30}
		v := newTestEnv(t, false, func(c *Config) { c.Records = store })
		ctx := context.Background()
		var starts atomic.Int64
		start := func(context.Context) (*Job, error) {
			if starts.Add(1) == 1 {
				return nil, &fakeErr{f: Failure{Kind: RateLimited, RetryAfter: 100 * time.Millisecond}, msg: "429"}
			}
			j := v.up.add(coldEmailKind, time.Now())
			j.Status = Succeeded
			return &j, nil
		}
		out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: coldEmailKind}, start, time.Now().Add(time.Minute), nil)
		if err != nil || out.Job == nil {
			t.Fatalf("Run = %+v, %v", out, err)
		}
		if s, n := starts.Load(), store.calls.Load(); s != 2 || n != 1 {
			t.Errorf("%d start requests, %d recorded as sent; want 2 and 1 (the resend)", s, n)
		}
		_ = v.e.Drain(ctx)
	})
}

// While the upstream holds the start request, the record can change
// elsewhere: another replica (or another call here) confirms its job
// through the job list (ConfirmPending). The sender's call, answering at
// its deadline, must answer with that job, as it did when it read the
// store, not with "still starting" from the record as it last wrote it.
func TestSenderAnswersWithAJobConfirmedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := pollOnly{NewMemoryRecords()}
		a := newTestEnv(t, true, func(c *Config) { c.Records = shared })
		b := New(a.e.cfg) // another replica on the same records
		ctx := context.Background()
		answer := make(chan struct{})
		start := func(context.Context) (*Job, error) { // the job exists at once; the request is held
			j := a.up.add(coldEmailKind, time.Now())
			<-answer
			return &j, nil
		}
		type result struct {
			out Outcome
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := a.e.Run(ctx, a.up, Call{Tenant: "t", Kind: coldEmailKind}, start, time.Now().Add(10*time.Second), nil)
			done <- result{out, err}
		}()
		time.Sleep(time.Second)
		m := shared.Records.(*MemoryRecords)
		var handle string
		m.mu.Lock()
		for h := range m.byHandle {
			handle = h
		}
		m.mu.Unlock()
		out, err := b.Follow(ctx, a.up, "t", handle, time.Now().Add(time.Second), nil)
		if err != nil || out.Job == nil {
			t.Fatalf("setup: Follow on the other replica = %+v, %v; want the job confirmed through the job list", out, err)
		}
		confirmed := out.Job.ID
		r := <-done
		if r.err != nil || r.out.Job == nil || r.out.Job.ID != confirmed {
			t.Errorf("the sender's call at its deadline = job %v, state %d, handle %q, %v; want job %s, confirmed on record",
				r.out.Job, r.out.State, r.out.Handle, r.err, confirmed)
		}
		close(answer)
		_ = a.e.Drain(ctx)
		_ = b.Drain(ctx)
	})
}

// A call that reaches its deadline while the start request is held looks
// in the job list (Exclusive); if the start request answers meanwhile,
// the call answers with that job, not with a pending handle whose state
// says started (which a toolset reads as "no job known": an unconfirmed
// start).
func TestStartAnsweringDuringTheDeadlineLookIsTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestEnv(t, true)
		ctx := context.Background()
		entered, release := v.up.hold()
		answer := make(chan struct{})
		start := func(context.Context) (*Job, error) {
			<-answer
			j := v.up.add(coldEmailKind, time.Now())
			return &j, nil
		}
		go func() {
			<-entered       // the deadline's look at the job list has begun
			close(answer)   // the start request answers meanwhile
			synctest.Wait() // and its answer is recorded
			release()
		}()
		out, err := v.e.Run(ctx, v.up, Call{Tenant: "t", Kind: coldEmailKind}, start, time.Now(), nil)
		if err != nil || out.Job == nil {
			t.Errorf("Run = %+v, %v; want the job the start request answered with", out, err)
		}
		_ = v.e.Drain(ctx)
	})
}
