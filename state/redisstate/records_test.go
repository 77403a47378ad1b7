package redisstate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state/redisstate"
)

// The run records' steps, checked against the in-memory store and the
// Redis one alike: a shared store must take each step as the memory store
// does.
func eachStore(t *testing.T, f func(t *testing.T, newRecords func() runs.Records)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func() runs.Records { return runs.NewMemoryRecords() })
	})
	t.Run("redis", func(t *testing.T) {
		_, srv := replicas(t, 1)
		c := srv.Client(t)
		n := 0
		f(t, func() runs.Records {
			n++ // a fresh set of records each time: another key prefix
			return redisstate.New(c, "test"+string(rune('a'+n))+":").Records()
		})
	})
}

const kindA = "kind-a"

var (
	t0    = time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	rules = runs.Rules{StartBound: 150 * time.Second, Exclusive: true, InheritedUntil: t0.Add(-time.Hour)}
)

func begin(t *testing.T, r runs.Records, rec runs.Record) runs.Record {
	t.Helper()
	got, replay, err := r.Begin(context.Background(), rec, false)
	if err != nil || replay {
		t.Fatalf("Begin %s: replay %v, %v", rec.Handle, replay, err)
	}
	return got
}

func TestRecordsBeginGetReplay(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, CallKey: "call-1", Submitted: t0})
		got, replay, err := r.Begin(ctx, runs.Record{Handle: "h2", Tenant: "a", Kind: kindA, CallKey: "call-1", Submitted: t0}, false)
		if err != nil || !replay || got.Handle != "h1" {
			t.Errorf("a replay: %+v %v %v", got, replay, err)
		}
		if got, replay, _ := r.Begin(ctx, runs.Record{Handle: "h3", Tenant: "b", Kind: kindA, CallKey: "call-1", Submitted: t0}, false); replay || got.Handle != "h3" {
			t.Errorf("the same call key of another tenant: %+v %v", got, replay)
		}
		if got, replay, _ := r.Begin(ctx, runs.Record{Handle: "h4", Tenant: "a", Kind: kindA, CallKey: "call-9", Submitted: t0}, true); replay || got.Handle != "" {
			t.Errorf("closing recorded something new: %+v", got)
		}
		if rec, ok, _ := r.Get(ctx, "h1", "a"); !ok || rec.State != runs.StatePending || !rec.Submitted.Equal(t0) {
			t.Errorf("Get h1: %+v %v", rec, ok)
		}
		if _, ok, _ := r.Get(ctx, "h1", "b"); ok {
			t.Error("another tenant read h1")
		}
	})
}

func TestRecordsFinishAndClaims(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: t0})
		begin(t, r, runs.Record{Handle: "h2", Tenant: "a", Kind: kindA, Submitted: t0})
		begin(t, r, runs.Record{Handle: "h3", Tenant: "a", Kind: kindA, Submitted: t0})
		rec, prev, err := r.Finish(ctx, "h1", runs.Answer{At: t0.Add(time.Second), JobID: "job-1"})
		if err != nil || prev != "" || rec.State != runs.StateStarted || rec.JobID != "job-1" {
			t.Fatalf("started: %+v %q %v", rec, prev, err)
		}
		cause := errors.New("connection reset")
		if rec, _, _ := r.Finish(ctx, "h2", runs.Answer{At: t0.Add(time.Second), Unknown: true, Err: cause}); rec.State != runs.StateUnknown ||
			!rec.Watched || rec.Err == nil || rec.Err.Error() != "connection reset" {
			t.Errorf("unknown: %+v", rec)
		}
		if rec, _, _ := r.Finish(ctx, "h3", runs.Answer{At: t0.Add(time.Second), Err: errors.New("422")}); rec.State != runs.StateRefused {
			t.Errorf("refused: %+v", rec)
		}
		rows := []runs.Job{{ID: "job-1", Kind: kindA}, {ID: "job-2", Kind: kindA}}
		if kept, _ := r.Unclaimed(ctx, rows, ""); len(kept) != 1 || kept[0].ID != "job-2" {
			t.Errorf("unclaimed for anyone: %+v", kept)
		}
		if kept, _ := r.Unclaimed(ctx, rows, "h1"); len(kept) != 2 {
			t.Errorf("unclaimed for h1, which holds job-1: %+v", kept)
		}
		if rec, _, _ := r.Finish(ctx, "nope", runs.Answer{JobID: "x"}); rec.Handle != "" {
			t.Errorf("an unknown handle: %+v", rec)
		}
	})
}

// Settle: a candidate nothing else could have started is confirmed and
// claimed; a competitor keeps the outcome unknown; a final empty look
// means not started; a job claimed by another record is no candidate.
func TestRecordsSettle(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		unknown := func(r runs.Records, h string) {
			begin(t, r, runs.Record{Handle: h, Tenant: "a", Kind: kindA, Submitted: t0, LastSent: t0})
			if _, _, err := r.Finish(ctx, h, runs.Answer{At: t0.Add(time.Second), Unknown: true, Err: errors.New("reset")}); err != nil {
				t.Fatal(err)
			}
		}
		job := runs.Job{ID: "job-x", Kind: kindA, Status: runs.Running, CreatedAt: t0}

		r := newRecords()
		unknown(r, "h1")
		st, err := r.Settle(ctx, "h1", runs.Look{At: t0.Add(2 * time.Second), Candidates: []runs.Job{job}}, rules)
		if err != nil || !st.Applied || st.State != runs.StateStarted || st.JobID != "job-x" {
			t.Fatalf("confirmable: %+v %v", st, err)
		}
		if kept, _ := r.Unclaimed(ctx, []runs.Job{job}, ""); len(kept) != 0 {
			t.Error("the confirmed job is not claimed")
		}
		if st, _ := r.Settle(ctx, "h1", runs.Look{Final: true}, rules); st.Applied || st.State != runs.StateStarted {
			t.Errorf("a settled record changed again: %+v", st)
		}

		r = newRecords()
		unknown(r, "h1")
		begin(t, r, runs.Record{Handle: "h2", Tenant: "b", Kind: kindA, Submitted: t0.Add(time.Second)}) // pending, overlapping
		if st, _ := r.Settle(ctx, "h1", runs.Look{At: t0.Add(2 * time.Second), Candidates: []runs.Job{job}}, rules); st.State != runs.StateUnknown || st.Look == nil {
			t.Errorf("with a competitor: %+v", st)
		}
		if _, job2, _ := r.ConfirmPending(ctx, "h2", runs.Look{Candidates: []runs.Job{job}}, rules); job2 != nil {
			t.Errorf("h2 confirmed a job while h1's outcome is unknown: %+v", job2)
		}

		r = newRecords()
		unknown(r, "h1")
		if st, _ := r.Settle(ctx, "h1", runs.Look{At: t0.Add(time.Hour), Final: true}, rules); st.State != runs.StateNotStarted {
			t.Errorf("final and empty: %+v", st)
		}

		r = newRecords()
		begin(t, r, runs.Record{Handle: "owner", Tenant: "a", Kind: kindA, Submitted: t0})
		_, _, _ = r.Finish(ctx, "owner", runs.Answer{At: t0, JobID: "job-x"})
		unknown(r, "h1")
		if st, _ := r.Settle(ctx, "h1", runs.Look{At: t0.Add(2 * time.Second), Candidates: []runs.Job{job}}, rules); st.State != runs.StateUnknown || len(st.Look.Candidates) != 0 {
			t.Errorf("another record's job was a candidate: %+v", st)
		}
	})
}

// A record pending alone is confirmed through the list; a job the list
// suggested goes back when the upstream names another.
func TestRecordsConfirmPendingThenTheAPISaysOtherwise(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: t0})
		suggested := runs.Job{ID: "job-s", Kind: kindA, CreatedAt: t0}
		rec, job, err := r.ConfirmPending(ctx, "h1", runs.Look{Candidates: []runs.Job{suggested}}, rules)
		if err != nil || job == nil || rec.JobID != "job-s" {
			t.Fatalf("confirm pending: %+v %v %v", rec, job, err)
		}
		rec, prev, _ := r.Finish(ctx, "h1", runs.Answer{At: t0.Add(time.Second), JobID: "job-real"})
		if prev != "job-s" || rec.JobID != "job-real" {
			t.Errorf("finish: %+v prev %q", rec, prev)
		}
		if kept, _ := r.Unclaimed(ctx, []runs.Job{suggested}, ""); len(kept) != 1 {
			t.Error("the suggested job stays claimed")
		}
	})
}

func TestRecordsWatchAbandonOrphan(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: t0, LastSent: t0})
		if rec, _ := r.Watch(ctx, "h1", true); !rec.Watched {
			t.Error("watch")
		}
		if rec, _ := r.Abandon(ctx, "h1"); !rec.Abandoned {
			t.Error("abandon")
		}
		if err := r.Sent(ctx, "h1", t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if rec, _, _ := r.Get(ctx, "h1", "a"); !rec.LastSent.Equal(t0.Add(time.Second)) {
			t.Errorf("sent: %+v", rec.LastSent)
		}
		if rec, _ := r.Orphan(ctx, "h1", time.Since(t0)+time.Hour); rec.State != runs.StatePending {
			t.Errorf("orphaned within the create timeout: %+v", rec)
		}
		if rec, _ := r.Orphan(ctx, "h1", time.Second); rec.State != runs.StateUnknown || !errors.Is(rec.Err, runs.ErrOrphaned) && rec.Err.Error() != runs.ErrOrphaned.Error() {
			t.Errorf("orphan: %+v", rec)
		}
	})
}

// Two replicas see one set of records: a handle minted on one resolves on
// the other, and a replay landing on the other joins it.
func TestRecordsAcrossReplicas(t *testing.T) {
	stores, _ := replicas(t, 2)
	a, b := stores[0].Records(), stores[1].Records()
	ctx := context.Background()
	begin(t, a, runs.Record{Handle: "h1", Tenant: "t", Kind: kindA, CallKey: "c", Submitted: t0})
	if got, replay, _ := b.Begin(ctx, runs.Record{Handle: "h2", Tenant: "t", Kind: kindA, CallKey: "c", Submitted: t0}, false); !replay || got.Handle != "h1" {
		t.Errorf("a replay on the other replica: %+v %v", got, replay)
	}
	_, _, _ = b.Finish(ctx, "h1", runs.Answer{At: t0, JobID: "job-1"})
	if rec, ok, _ := a.Get(ctx, "h1", "t"); !ok || rec.JobID != "job-1" {
		t.Errorf("the answer recorded on b, read on a: %+v", rec)
	}
}

// Replicas settling one record at once: one applies, the others see it
// settled; the job is claimed once.
func TestRecordsSettleConcurrently(t *testing.T) {
	stores, _ := replicas(t, 3)
	ctx := context.Background()
	r0 := stores[0].Records()
	begin(t, r0, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: t0, LastSent: t0})
	_, _, _ = r0.Finish(ctx, "h1", runs.Answer{At: t0.Add(time.Second), Unknown: true, Err: errors.New("reset")})
	job := runs.Job{ID: "job-x", Kind: kindA, CreatedAt: t0}
	applied := make(chan bool, 12)
	for i := range 12 {
		go func() {
			st, err := stores[i%3].Records().Settle(ctx, "h1", runs.Look{At: t0.Add(2 * time.Second), Candidates: []runs.Job{job}}, rules)
			if err != nil {
				t.Error(err)
			}
			applied <- st.Applied && st.State == runs.StateStarted
		}()
	}
	n := 0
	for range 12 {
		if <-applied {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d replicas applied the settlement, want 1", n)
	}
}

// A sender renews its lease while its request is in flight; once the
// lease lapses the record is an orphan long before the create timeout, and
// the sender, if it was only stalled, may no longer send.
func TestRecordsSenderLease(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		now := time.Now()
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: now, LastSent: now})
		if err := r.Renew(ctx, "h1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if rec, _ := r.Orphan(ctx, "h1", 2*time.Hour); rec.State != runs.StatePending {
			t.Errorf("orphaned with a live lease: %+v", rec)
		}
		if err := r.Renew(ctx, "h1", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		rec, _ := r.Orphan(ctx, "h1", 2*time.Hour)
		if rec.State != runs.StateUnknown || !rec.Finished.Equal(now.Add(-time.Second)) {
			t.Errorf("a lapsed lease: %+v", rec)
		}
		if err := r.Sent(ctx, "h1", time.Now()); !errors.Is(err, runs.ErrOrphaned) {
			t.Errorf("Sent on an orphan = %v, want ErrOrphaned", err)
		}
		if err := r.Renew(ctx, "h1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if rec, _, _ := r.Get(ctx, "h1", "a"); rec.State != runs.StateUnknown || !rec.AliveUntil.Equal(now.Add(-time.Second)) {
			t.Errorf("a renewal revived an orphan: %+v", rec)
		}
	})
}

// Finish hands a job the list had suggested back to another record that
// holds it (the heir); a record whose start answered more than
// runs.KeepRecords ago is forgotten, with its claim. (From the review of
// the store, which found neither tested.)
func TestRecordsFinishHeirAndExpiry(t *testing.T) {
	eachStore(t, func(t *testing.T, newRecords func() runs.Records) {
		ctx := context.Background()
		r := newRecords()
		now := time.Now()
		begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: now.Add(-2 * time.Minute)})
		if _, job, _ := r.ConfirmPending(ctx, "h1", runs.Look{Candidates: []runs.Job{{ID: "job-s", Kind: kindA, CreatedAt: t0}}}, rules); job == nil {
			t.Fatal("not confirmed")
		}
		begin(t, r, runs.Record{Handle: "h2", Tenant: "b", Kind: kindA, Submitted: now.Add(-2 * time.Minute)})
		_, _, _ = r.Finish(ctx, "h2", runs.Answer{At: now, JobID: "job-s"}) // the upstream says job-s is h2's
		_, _, _ = r.Finish(ctx, "h1", runs.Answer{At: now, JobID: "job-real"})
		if kept, _ := r.Unclaimed(ctx, []runs.Job{{ID: "job-s"}}, "h2"); len(kept) != 1 {
			t.Error("job-s is not h2's")
		}
		if kept, _ := r.Unclaimed(ctx, []runs.Job{{ID: "job-s"}}, ""); len(kept) != 0 {
			t.Error("job-s, h2's, was released")
		}
		begin(t, r, runs.Record{Handle: "old", Tenant: "a", Kind: kindA, CallKey: "c", Submitted: now.Add(-26 * time.Hour)})
		_, _, _ = r.Finish(ctx, "old", runs.Answer{At: now.Add(-25 * time.Hour), JobID: "job-old"})
		begin(t, r, runs.Record{Handle: "new", Tenant: "a", Kind: kindA, Submitted: now.Add(2 * time.Minute)})
		if _, ok, _ := r.Get(ctx, "old", "a"); ok {
			t.Error("a record answered 25 h ago is still kept")
		}
		if kept, _ := r.Unclaimed(ctx, []runs.Job{{ID: "job-old"}}, ""); len(kept) != 1 {
			t.Error("its claim is kept")
		}
	})
}
