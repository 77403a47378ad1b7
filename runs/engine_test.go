package runs

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The rules of recovery through the job list: a job found there is a
// submission's for certain only when no other client and no other
// submission of this process could have started it.
func TestRecoveryRules(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exclusive bool
		setup     func(v *testEnv)
		confirmed bool // the job is claimed for the submission
		candidate bool // the job is listed as a candidate
	}{
		{name: "one job, key used only by this server", exclusive: true, confirmed: true},
		{name: "one job, other clients may use the key", candidate: true},
		{name: "another submission of the kind in flight", exclusive: true, candidate: true,
			setup: func(v *testEnv) { v.pending(StatePending, nil) }},
		{name: "another submission with an unknown outcome", exclusive: true, candidate: true,
			setup: func(v *testEnv) { v.pending(StateUnknown, errUnknown) }},
		{name: "another submission refused", exclusive: true, confirmed: true,
			setup: func(v *testEnv) { v.pending(StateRefused, errors.New("422")) }},
		{name: "the job is another submission's", exclusive: true,
			setup: func(v *testEnv) {
				o := v.pending(StateStarted, nil)
				v.edit(o, func(r *Record) { r.JobID = v.job })
				v.claim(v.job, o.handle)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestEnv(t, tc.exclusive)
			if tc.setup != nil {
				tc.setup(v)
			}
			s := v.pending(StateUnknown, errUnknown)
			v.settleOnce(t, s)
			rec := v.record(t, s)
			if got := rec.State == StateStarted && rec.JobID == v.job && v.claimedBy(v.job) == s.handle; got != tc.confirmed {
				t.Errorf("confirmed = %v (state %d, job %q), want %v", got, rec.State, rec.JobID, tc.confirmed)
			}
			listed := rec.Look != nil && len(rec.Look.Candidates) == 1 && rec.Look.Candidates[0].ID == v.job
			if listed != (tc.candidate || tc.confirmed) {
				t.Errorf("listed as a candidate = %v, want %v", listed, tc.candidate || tc.confirmed)
			}
			if tc.candidate && !strings.Contains(v.logs.String(), "run_id="+v.job) {
				t.Errorf("the candidate job was not logged:\n%s", v.logs.String())
			}
		})
	}
	t.Run("a refused start is never settled from the list", func(t *testing.T) {
		v := newTestEnv(t, true)
		s := v.pending(StateRefused, &fakeErr{f: Failure{Kind: Denied}, msg: "402"})
		v.settleOnce(t, s)
		if rec := v.record(t, s); rec.State != StateRefused || rec.JobID != "" {
			t.Errorf("state %d job %q for a job the upstream refused", rec.State, rec.JobID)
		}
	})
}

// Once the start bound has passed, a submission without any job in the job
// list is known not to have started.
func TestNotStartedAfterTheBound(t *testing.T) {
	v := newTestEnv(t, false, func(c *Config) { c.StartBound = time.Second })
	s := v.pending(StateUnknown, errUnknown)
	v.edit(s, func(r *Record) {
		r.Kind = coldEmailKind // no job of this kind exists
		r.Submitted = time.Now()
	})
	v.settleOnce(t, s)
	if rec := v.record(t, s); rec.State != StateUnknown {
		t.Fatalf("state %d before the bound; want still unknown", rec.State)
	}
	v.edit(s, func(r *Record) {
		r.Submitted = time.Now().Add(-2 * time.Second) // the bound has passed
		r.Finished = r.Submitted                       // since the start failed
	})
	v.settleOnce(t, s)
	if rec := v.record(t, s); rec.State != StateNotStarted {
		t.Errorf("state %d after the bound; want not started", rec.State)
	}
}

// After the drain starts, no new paid job is started.
func TestSubmitAfterDrainIsRefused(t *testing.T) {
	v := newTestEnv(t, false)
	if err := v.e.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	var started atomic.Bool
	start := func(context.Context) (*Job, error) { started.Store(true); return nil, errors.New("sent") }
	_, _, err := v.e.submit(context.Background(), v.up, Call{Kind: researchKind}, start)
	if !errors.Is(err, ErrStopping) {
		t.Fatalf("submit after the drain: %v", err)
	}
	_ = v.e.Drain(context.Background()) // waits for any start request in flight
	if started.Load() {
		t.Error("a start request was sent after the drain")
	}
}

// An abandoned submission's job id is logged, whether it was known when the
// call ended or arrives later.
func TestAbandonLogsTheRunID(t *testing.T) {
	v := newTestEnv(t, false)
	known := v.pending(StateStarted, nil)
	const knownID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e02"
	v.edit(known, func(r *Record) { r.JobID = knownID })
	v.e.abandon(context.Background(), known, context.Canceled)
	if !strings.Contains(v.logs.String(), "run_id="+knownID) {
		t.Errorf("the known job id was not logged:\n%s", v.logs.String())
	}
	later := v.pending(StatePending, nil)
	v.e.abandon(context.Background(), later, context.Canceled)
	err := &fakeErr{f: Failure{Kind: TimedOut, JobID: v.job}, msg: "504"}
	v.e.finish(context.Background(), later, nil, v.up.Classify(err), err)
	if !strings.Contains(v.logs.String(), "level=INFO msg=\"run started after its tool call ended; it continues upstream\"") ||
		!strings.Contains(v.logs.String(), "run_id="+v.job) {
		t.Errorf("the late job id was not logged at info level:\n%s", v.logs.String())
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func TestHandles(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 4, 5, 678e6, time.UTC)
	h := NewHandle(at, researchKind)
	if !uuidPattern.MatchString(h) || h[14] != '8' || !strings.ContainsAny(h[19:20], "89ab") {
		t.Fatalf("handle %s is not a version-8 UUID", h)
	}
	if got, ok := HandleTime(h); !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("HandleTime(%s) = %v, %v; want %v", h, got, ok, at)
	}
	if h2 := NewHandle(at, researchKind); h2 == h {
		t.Error("two handles made at the same moment are equal")
	}
	if _, ok := HandleTime("6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"); ok {
		t.Error("a version-4 UUID read as a handle")
	}
	matches := HandleKindMatcher(h)
	if !matches(researchKind) || matches(coldEmailKind) {
		t.Error("the handle's kind tag does not single out its kind")
	}
	// A handle without the tag (made before it existed) matches every kind.
	untagged := h[:21] + "00" + h[23:]
	if m := HandleKindMatcher(untagged); !m(researchKind) || !m(coldEmailKind) {
		t.Error("an untagged handle filters kinds")
	}
}

func TestHandleTimeRejectsForeignUUIDs(t *testing.T) {
	for i := range 10000 {
		at := time.UnixMilli(time.Now().UnixMilli() - int64(i)*7919)
		if got, ok := HandleTime(NewHandle(at, researchKind)); !ok || !got.Equal(at) {
			t.Fatalf("handle of %v reads as %v, %v", at, got, ok)
		}
	}
	for _, id := range []string{"ffffffff-ffff-8fff-bfff-ffffffffffff", "00000000-0000-8000-8000-000000000000",
		"0123abcd-ef01-8123-0000-000000000000", "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"} {
		if at, ok := HandleTime(id); ok {
			t.Errorf("HandleTime(%s) = %v; want not a handle", id, at)
		}
	}
}

// A handle this process does not know (another replica, a restart) is
// answered with the jobs of its kind started around its time, never as
// this call's for certain, and, past the start bound without any, as not
// started.
func TestForeignHandle(t *testing.T) {
	v := newTestEnv(t, true)
	ctx := context.Background()
	notFound := errors.New("404")
	o, err := v.e.foreignHandle(ctx, v.up, NewHandle(time.Now().Add(-time.Second), researchKind), notFound)
	if err != nil || o.Job != nil || !o.Foreign || o.State != StateUnknown || o.Look == nil || len(o.Look.Candidates) != 1 || o.Look.Candidates[0].ID != v.job {
		t.Errorf("outcome %+v, %v; want the job %s as an unconfirmed candidate", o, err, v.job)
	}
	o, _ = v.e.foreignHandle(ctx, v.up, NewHandle(time.Now().Add(-time.Second), coldEmailKind), notFound)
	if o.Look == nil || len(o.Look.Candidates) != 0 || o.State != StateUnknown {
		t.Errorf("a handle of another kind lists %+v", o.Look)
	}
	o, _ = v.e.foreignHandle(ctx, v.up, NewHandle(time.Now().Add(-48*time.Hour), researchKind), notFound)
	if o.State != StateNotStarted {
		t.Errorf("a handle past its bound without jobs: state %d", o.State)
	}
	_, err = v.e.foreignHandle(ctx, v.up, "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11", notFound)
	var re *ReadError
	if !errors.As(err, &re) || re.Kind != NotFound || re.ListErr != nil || !errors.Is(err, notFound) {
		t.Errorf("an unknown upstream id: %v; want a NotFound ReadError", err)
	}
	v.up.failLists(errors.New("500"))
	_, err = v.e.foreignHandle(ctx, v.up, NewHandle(time.Now().Add(-time.Second), researchKind), notFound)
	if !errors.As(err, &re) || re.Kind != NotFound || re.ListErr == nil {
		t.Errorf("a handle whose jobs cannot be listed: %v; want a NotFound ReadError with ListErr", err)
	}
}

// A waiter that followed the job list's guess switches to the job the
// upstream names when the start request answers.
func TestAwaitRunFollowsTheAPIsRunID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestEnv(t, true) // v.job: a job of the same kind by another client
		ctx := context.Background()
		s := v.pending(StatePending, nil)
		lk, err := v.e.lookUp(ctx, v.up, s)
		if err != nil {
			t.Fatal(err)
		}
		suggested, ok := v.e.confirmPending(ctx, s, lk)
		if !ok || suggested.ID != v.job {
			t.Fatalf("setup: confirmPending = %v, %v", suggested, ok)
		}
		ours := v.up.add(researchKind, time.Now()).ID
		w := &waiter{e: v.e, up: v.up, deadline: time.Now().Add(800 * time.Millisecond)}
		type res struct {
			out Outcome
			err error
		}
		done := make(chan res, 1)
		go func() {
			o, err := w.awaitRun(ctx, suggested.ID, researchKind, s)
			done <- res{o, err}
		}()
		synctest.Wait() // the waiter polls the suggested job
		timedOut := &fakeErr{f: Failure{Kind: TimedOut, JobID: ours}, msg: "504"}
		v.e.finish(ctx, s, nil, v.up.Classify(timedOut), timedOut)
		r := <-done
		if r.err != nil || r.out.Job == nil || r.out.Job.ID != ours {
			t.Errorf("waiter returned %+v, %v; want our job %s, not %s", r.out.Job, r.err, ours, suggested.ID)
		}
		if v.claimedBy(suggested.ID) == s.handle {
			t.Errorf("the suggested job %s is still claimed", suggested.ID)
		}
	})
}

// A submission made while the job list is being read is seen by the
// ambiguity check, so its job is not claimed for another submission.
func TestSubmissionsMadeWhileListingCount(t *testing.T) {
	v := newTestEnv(t, true)
	s := v.pending(StateUnknown, errUnknown)
	v.edit(s, func(r *Record) { r.Submitted = time.Now() })
	entered, release := v.up.hold()
	defer release()
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		lk, err := v.e.lookUp(context.Background(), v.up, s)
		if err == nil {
			v.e.settle(context.Background(), s, lk)
		}
	}()
	<-entered // the list is being read
	o, _, err := v.e.submit(context.Background(), v.up, Call{Kind: researchKind}, v.up.start(researchKind, true))
	if err != nil {
		t.Fatal(err)
	}
	v.e.posts.Wait() // o's start request has answered
	release()
	<-settled
	claimed := v.record(t, s).JobID
	if oid := v.record(t, o).JobID; claimed != "" && claimed == oid {
		t.Errorf("s claimed o's job %s", claimed)
	}
	_ = v.e.Drain(context.Background())
}

// A start request that the upstream refuses while the job list is being
// read claims nothing.
func TestRefusalWhileListingClaimsNothing(t *testing.T) {
	v := newTestEnv(t, true)
	s := v.pending(StatePending, nil)
	v.edit(s, func(r *Record) { r.Submitted = time.Now() })
	entered, release := v.up.hold()
	defer release()
	got := make(chan bool, 1)
	go func() {
		lk, err := v.e.lookUp(context.Background(), v.up, s)
		if err != nil {
			got <- false
			return
		}
		_, ok := v.e.confirmPending(context.Background(), s, lk)
		got <- ok
	}()
	<-entered
	refusal := &fakeErr{f: Failure{Kind: Denied}, msg: "402"}
	v.e.finish(context.Background(), s, nil, v.up.Classify(refusal), refusal)
	release()
	if <-got {
		t.Errorf("claimed a job for a start the upstream refused (402)")
	}
}

// A submission whose outcome is unknown and that no recovery watches any
// more (it gave up while the list was unreadable) is looked up by the call
// that asks, which says when the list still cannot be read.
func TestUnwatchedUnknownSubmissionIsLookedUpByTheCall(t *testing.T) {
	v := newTestEnv(t, false)
	s := v.pending(StateUnknown, errUnknown)
	v.up.failLists(errors.New("500"))
	ctx := context.Background()
	w := &waiter{e: v.e, up: v.up, deadline: time.Now().Add(time.Second)}
	out, err := w.awaitSubmission(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if out.LookErr == nil || out.State != StateUnknown || out.Handle != s.handle {
		t.Errorf("outcome %+v; want the unreadable list said", out)
	}
	v.up.failLists(nil)
	out, err = w.awaitSubmission(ctx, s)
	if err != nil || out.LookErr != nil || out.Look == nil || len(out.Look.Candidates) != 1 || out.Look.Candidates[0].ID != v.job {
		t.Errorf("outcome %+v, %v; want the job list read and %s listed", out, err, v.job)
	}
}

// Waiters read the records again every PollMin, so they need no wake-up
// from the store: a second engine on the same records (another replica)
// follows a handle the first one is still submitting, and learns its job
// soon after the start request answers.
func TestWaitersPollSharedRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := pollOnly{NewMemoryRecords()}
		a := newTestEnv(t, false, func(c *Config) { c.Records = shared })
		b := New(a.e.cfg) // another process on the same records
		ctx := context.Background()
		const hold = 3 * time.Second
		start := func(context.Context) (*Job, error) {
			time.Sleep(hold)
			j := a.up.add(researchKind, time.Now())
			a.up.succeed(j.ID)
			j.Status = Succeeded
			return &j, nil
		}
		began := time.Now()
		out, err := a.e.Run(ctx, a.up, Call{Tenant: "t", Kind: researchKind}, start, began.Add(time.Second), nil)
		if err != nil || out.Job != nil || out.State != StatePending || out.Handle == "" {
			t.Fatalf("Run = %+v, %v; want the handle of a pending start", out, err)
		}
		handle := out.Handle
		out, err = b.Follow(ctx, a.up, "t", handle, began.Add(time.Minute), nil)
		if err != nil || out.Job == nil || out.Job.Status != Succeeded {
			t.Fatalf("Follow on the other engine = %+v, %v; want the succeeded job", out, err)
		}
		if waited := time.Since(began); waited > hold+2*a.e.cfg.PollMin {
			t.Errorf("the other engine learnt the job after %v; the start answered after %v", waited, hold)
		}
		// Another tenant's Follow never reaches the record: it reads the
		// upstream, which does not know a handle.
		if other, err := b.Follow(ctx, a.up, "other tenant", handle, time.Now().Add(time.Second), nil); other.Job != nil || (err == nil && !other.Foreign) {
			t.Errorf("another tenant followed the handle: %+v, %v", other, err)
		}
		_ = a.e.Drain(ctx)
	})
}

// An upstream with no job list (ErrNoJobList): a start whose outcome is
// unknown stays unknown, never "not started", even long past the start
// bound, and recovery stops watching at once instead of polling nothing.
func TestNoJobListKeepsTheOutcomeUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newTestEnv(t, true, func(c *Config) { c.StartBound = time.Second })
		v.up.failLists(ErrNoJobList)
		ctx := context.Background()
		start := func(context.Context) (*Job, error) { return nil, errUnknown }
		out, err := v.e.Run(ctx, v.up, Call{Kind: researchKind}, start, time.Now().Add(10*time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		if out.Job != nil || out.State != StateUnknown || !errors.Is(out.LookErr, ErrNoJobList) {
			t.Fatalf("outcome %+v; want unknown, with the list's absence as LookErr", out)
		}
		time.Sleep(time.Minute) // far past the bound
		out, err = v.e.Follow(ctx, v.up, "", out.Handle, time.Now().Add(time.Second), nil)
		if err != nil || out.State != StateUnknown {
			t.Fatalf("a minute later: %+v, %v; want still unknown", out, err)
		}
		v.up.mu.Lock()
		lists := v.up.lists
		v.up.mu.Unlock()
		if lists > 4 {
			t.Errorf("%d List calls for an upstream without a list", lists)
		}
		if !strings.Contains(v.logs.String(), "cannot list its jobs") {
			t.Errorf("logs do not say the outcome is unknowable:\n%s", v.logs.String())
		}
		_ = v.e.Drain(ctx)
	})
}
