package runs

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// The atomic steps of MemoryRecords, as a shared store must also take them.

var (
	t0    = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rules = Rules{StartBound: 150 * time.Second, Exclusive: true, InheritedUntil: t0.Add(-time.Hour)}
)

// put records recs as they are, bypassing Begin.
func put(m *MemoryRecords, recs ...Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		m.byHandle[r.Handle] = &r
		if r.JobID != "" {
			m.claimed[r.JobID] = r.Handle
		}
	}
}

// unknown is a record of kind whose start failed at submitted+1s with its
// outcome unknown.
func unknown(handle, tenant, kind string, submitted time.Time) Record {
	return Record{Handle: handle, Tenant: tenant, Kind: kind, Submitted: submitted, LastSent: submitted,
		Finished: submitted.Add(time.Second), State: StateUnknown, Watched: true}
}

func job(id string) Job { return Job{ID: id, Kind: researchKind, Status: Running, CreatedAt: t0} }

func TestMemoryRecordsBegin(t *testing.T) {
	ctx := context.Background()
	first := Record{Handle: "h1", Tenant: "a", Kind: researchKind, CallKey: "call-1", Submitted: t0}
	for _, tc := range []struct {
		name       string
		rec        Record
		closed     bool
		wantHandle string // "" : nothing recorded
		wantReplay bool
	}{
		{name: "a replay joins the first delivery", rec: Record{Handle: "h2", Tenant: "a", CallKey: "call-1"}, wantHandle: "h1", wantReplay: true},
		{name: "a replay joins even while closing", rec: Record{Handle: "h2", Tenant: "a", CallKey: "call-1"}, closed: true, wantHandle: "h1", wantReplay: true},
		{name: "the same call key of another tenant is another call", rec: Record{Handle: "h2", Tenant: "b", CallKey: "call-1"}, wantHandle: "h2"},
		{name: "no call key never replays", rec: Record{Handle: "h2", Tenant: "a"}, wantHandle: "h2"},
		{name: "closing records nothing new", rec: Record{Handle: "h2", Tenant: "a", CallKey: "call-2"}, closed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemoryRecords()
			if _, replay, err := m.Begin(ctx, first, false); err != nil || replay {
				t.Fatalf("first Begin: replay %v, %v", replay, err)
			}
			tc.rec.Submitted = t0.Add(time.Second)
			got, replay, err := m.Begin(ctx, tc.rec, tc.closed)
			if err != nil || got.Handle != tc.wantHandle || replay != tc.wantReplay {
				t.Errorf("Begin = %q, replay %v, %v; want %q, replay %v", got.Handle, replay, err, tc.wantHandle, tc.wantReplay)
			}
			if got.Handle != "" && got.State != StatePending {
				t.Errorf("state %d, want pending", got.State)
			}
			_, held, _ := m.Get(ctx, "h2", tc.rec.Tenant)
			if want := tc.wantHandle == "h2"; held != want {
				t.Errorf("h2 recorded = %v, want %v", held, want)
			}
		})
	}
}

// A handle is private to its tenant.
func TestMemoryRecordsGetIsPerTenant(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryRecords()
	put(m, unknown("h1", "a", researchKind, t0))
	if _, ok, _ := m.Get(ctx, "h1", "b"); ok {
		t.Error("another tenant read the record")
	}
	if r, ok, _ := m.Get(ctx, "h1", "a"); !ok || r.Handle != "h1" {
		t.Errorf("Get = %+v, %v", r, ok)
	}
	if _, ok, _ := m.Get(ctx, "nope", "a"); ok {
		t.Error("an unknown handle read")
	}
}

func TestMemoryRecordsSettle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		others     []Record
		rules      func(*Rules)
		lk         Look
		state      State // after the step
		jobID      string
		candidates int // in the recorded look
	}{
		{name: "the only candidate, nothing else could have started it", lk: Look{Candidates: []Job{job("j1")}},
			state: StateStarted, jobID: "j1", candidates: 1},
		{name: "other clients may use the key", rules: func(r *Rules) { r.Exclusive = false }, lk: Look{Candidates: []Job{job("j1")}},
			state: StateUnknown, candidates: 1},
		{name: "two candidates", lk: Look{Candidates: []Job{job("j1"), job("j2")}}, state: StateUnknown, candidates: 2},
		{name: "a job claimed by another handle is never confirmed",
			others: []Record{{Handle: "o", Tenant: "a", Kind: researchKind, Submitted: t0, Finished: t0, State: StateStarted, JobID: "j1"}},
			lk:     Look{Candidates: []Job{job("j1")}}, state: StateUnknown},
		{name: "a final look whose only job is another handle's: not started",
			others: []Record{{Handle: "o", Tenant: "a", Kind: researchKind, Submitted: t0, Finished: t0, State: StateStarted, JobID: "j1"}},
			lk:     Look{Candidates: []Job{job("j1")}, Final: true}, state: StateNotStarted},
		{name: "a competitor of another tenant, in flight", others: []Record{{Handle: "o", Tenant: "b", Kind: researchKind, Submitted: t0.Add(30 * time.Second)}},
			lk: Look{Candidates: []Job{job("j1")}}, state: StateUnknown, candidates: 1},
		{name: "a competitor of another tenant, outcome unknown", others: []Record{unknown("o", "b", researchKind, t0.Add(-time.Minute))},
			lk: Look{Candidates: []Job{job("j1")}}, state: StateUnknown, candidates: 1},
		{name: "a submission of another kind is no competitor", others: []Record{unknown("o", "b", coldEmailKind, t0)},
			lk: Look{Candidates: []Job{job("j1")}}, state: StateStarted, jobID: "j1", candidates: 1},
		{name: "a submission whose window does not overlap is no competitor", others: []Record{unknown("o", "a", researchKind, t0.Add(-time.Hour))},
			lk: Look{Candidates: []Job{job("j1")}}, state: StateStarted, jobID: "j1", candidates: 1},
		{name: "a refused submission is no competitor",
			others: []Record{{Handle: "o", Tenant: "a", Kind: researchKind, Submitted: t0, Finished: t0, State: StateRefused}},
			lk:     Look{Candidates: []Job{job("j1")}}, state: StateStarted, jobID: "j1", candidates: 1},
		{name: "the previous instance may have started it", rules: func(r *Rules) { r.InheritedUntil = t0.Add(time.Minute) },
			lk: Look{Candidates: []Job{job("j1")}}, state: StateUnknown, candidates: 1},
		{name: "not started only when final and empty", lk: Look{Final: true}, state: StateNotStarted},
		{name: "empty but not final", lk: Look{}, state: StateUnknown},
		{name: "final with a candidate that cannot be told apart", rules: func(r *Rules) { r.Exclusive = false },
			lk: Look{Candidates: []Job{job("j1")}, Final: true}, state: StateUnknown, candidates: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemoryRecords()
			put(m, unknown("s", "a", researchKind, t0))
			put(m, tc.others...)
			r := rules
			if tc.rules != nil {
				tc.rules(&r)
			}
			tc.lk.At = t0.Add(10 * time.Second)
			st, err := m.Settle(ctx, "s", tc.lk, r)
			if err != nil || !st.Applied {
				t.Fatalf("Settle: applied %v, %v", st.Applied, err)
			}
			if st.State != tc.state || st.JobID != tc.jobID || len(st.Look.Candidates) != tc.candidates {
				t.Errorf("state %d, job %q, %d candidates; want %d, %q, %d", st.State, st.JobID, len(st.Look.Candidates), tc.state, tc.jobID, tc.candidates)
			}
			for _, j := range tc.lk.Candidates {
				owner := m.claimed[j.ID]
				if j.ID == tc.jobID && owner != "s" || j.ID != tc.jobID && owner == "s" {
					t.Errorf("job %s claimed by %q", j.ID, owner)
				}
			}
		})
	}
}

// Settle changes nothing once the outcome is known, and hands back the
// look it replaced.
func TestMemoryRecordsSettleKeepsAKnownOutcome(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryRecords()
	put(m, unknown("s", "a", researchKind, t0))
	first := Look{At: t0, Candidates: []Job{job("j1")}}
	nonExclusive := Rules{StartBound: rules.StartBound}
	if _, err := m.Settle(ctx, "s", first, nonExclusive); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Settle(ctx, "s", Look{At: t0.Add(time.Second), Candidates: []Job{job("j1"), job("j2")}}, nonExclusive)
	if st.Previous == nil || len(st.Previous.Candidates) != 1 || st.Previous.Candidates[0].ID != "j1" {
		t.Errorf("previous look %+v; want the first", st.Previous)
	}
	if _, _, err := m.Finish(ctx, "s", Answer{At: t0.Add(time.Minute), JobID: "j9"}); err != nil {
		t.Fatal(err)
	}
	st, _ = m.Settle(ctx, "s", Look{At: t0.Add(2 * time.Minute), Final: true}, rules)
	if st.Applied || st.State != StateStarted || st.JobID != "j9" {
		t.Errorf("Settle after the upstream answered: applied %v, state %d, job %q", st.Applied, st.State, st.JobID)
	}
}

func TestMemoryRecordsFinish(t *testing.T) {
	ctx := context.Background()
	failed := errors.New("connection reset")
	pending := Record{Handle: "s", Tenant: "a", Kind: researchKind, Submitted: t0, LastSent: t0}
	suggested := pending
	suggested.State, suggested.JobID = StateStarted, "j1" // confirmed through the list while pending
	for _, tc := range []struct {
		name     string
		recs     []Record
		a        Answer
		state    State
		jobID    string
		previous string
		watched  bool
		claims   map[string]string // job id → owner ("" : unclaimed)
	}{
		{name: "started", recs: []Record{pending}, a: Answer{JobID: "j1"}, state: StateStarted, jobID: "j1", claims: map[string]string{"j1": "s"}},
		{name: "outcome unknown: watched at once", recs: []Record{pending}, a: Answer{Unknown: true, Err: failed}, state: StateUnknown, watched: true},
		{name: "refused", recs: []Record{pending}, a: Answer{Err: failed}, state: StateRefused},
		{name: "unknown keeps the job the list confirmed", recs: []Record{suggested}, a: Answer{Unknown: true, Err: failed},
			state: StateStarted, jobID: "j1", previous: "j1", claims: map[string]string{"j1": "s"}},
		{name: "another id releases the suggested one", recs: []Record{suggested}, a: Answer{JobID: "j2"},
			state: StateStarted, jobID: "j2", previous: "j1", claims: map[string]string{"j1": "", "j2": "s"}},
		{name: "a refusal releases the suggested one", recs: []Record{suggested}, a: Answer{Err: failed},
			state: StateRefused, previous: "j1", claims: map[string]string{"j1": ""}},
		{name: "a released id another record holds goes to it",
			recs: []Record{{Handle: "o", Tenant: "b", Kind: researchKind, Submitted: t0, Finished: t0, State: StateStarted, JobID: "j1"}, suggested},
			a:    Answer{JobID: "j2"}, state: StateStarted, jobID: "j2", previous: "j1", claims: map[string]string{"j1": "o", "j2": "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemoryRecords()
			put(m, tc.recs...)
			tc.a.At = t0.Add(time.Minute)
			r, previous, err := m.Finish(ctx, "s", tc.a)
			if err != nil || r.State != tc.state || r.JobID != tc.jobID || previous != tc.previous || r.Watched != tc.watched || !r.Finished.Equal(tc.a.At) {
				t.Errorf("Finish = state %d job %q previous %q watched %v finished %v, %v; want %d %q %q %v",
					r.State, r.JobID, previous, r.Watched, r.Finished, err, tc.state, tc.jobID, tc.previous, tc.watched)
			}
			if tc.a.JobID == "" && !errors.Is(r.Err, failed) && tc.state != StateStarted {
				t.Errorf("the failure was not kept: %v", r.Err)
			}
			for id, owner := range tc.claims {
				if got := m.claimed[id]; got != owner {
					t.Errorf("job %s claimed by %q, want %q", id, got, owner)
				}
			}
		})
	}
}

func TestMemoryRecordsConfirmPending(t *testing.T) {
	ctx := context.Background()
	pending := Record{Handle: "s", Tenant: "a", Kind: researchKind, Submitted: t0, LastSent: t0}
	other := Record{Handle: "o", Tenant: "b", Kind: researchKind, Submitted: t0.Add(-time.Hour), Finished: t0.Add(-time.Hour), State: StateStarted, JobID: "j1"}
	refused := pending
	refused.State, refused.Finished = StateRefused, t0
	for _, tc := range []struct {
		name string
		recs []Record
		want string // the job confirmed, "" for none
	}{
		{name: "the only candidate", recs: []Record{pending}, want: "j1"},
		{name: "claimed by another handle", recs: []Record{pending, other}},
		{name: "no longer pending", recs: []Record{refused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemoryRecords()
			put(m, tc.recs...)
			r, j, err := m.ConfirmPending(ctx, "s", Look{At: t0, Candidates: []Job{job("j1")}}, rules)
			got := ""
			if j != nil {
				got = j.ID
			}
			if err != nil || got != tc.want || (got != "" && (r.State != StateStarted || r.JobID != got || m.claimed[got] != "s")) {
				t.Errorf("ConfirmPending = %q (state %d, job %q, claimed by %q), %v; want %q", got, r.State, r.JobID, m.claimed["j1"], err, tc.want)
			}
		})
	}
}

func TestMemoryRecordsUnclaimed(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryRecords()
	put(m, Record{Handle: "s", Tenant: "a", Kind: researchKind, Submitted: t0, State: StateStarted, JobID: "j1"})
	rows := []Job{job("j1"), job("j2")}
	for _, tc := range []struct {
		handle string
		want   int
	}{{"", 1}, {"s", 2}, {"o", 1}} {
		if got, _ := m.Unclaimed(ctx, rows, tc.handle); len(got) != tc.want {
			t.Errorf("Unclaimed for %q: %d rows, want %d", tc.handle, len(got), tc.want)
		}
	}
	if len(rows) != 2 || rows[0].ID != "j1" {
		t.Error("Unclaimed changed its argument")
	}
}

// A change wakes the record's waiters at once.
func TestMemoryRecordsChanged(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryRecords()
	put(m, Record{Handle: "s", Tenant: "a", Kind: researchKind, Submitted: t0})
	if m.Changed("nope") != nil {
		t.Error("a channel for a handle without a record")
	}
	changed := m.Changed("s")
	select {
	case <-changed:
		t.Fatal("closed before any change")
	default:
	}
	if _, err := m.Abandon(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("not closed by a change")
	}
	if r, _, _ := m.Get(ctx, "s", "a"); !r.Abandoned {
		t.Error("Abandon was not recorded")
	}
}

// A record and its claim are kept for KeepRecords after it finished, and
// a record whose start request has not answered is never forgotten.
func TestMemoryRecordsExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := NewMemoryRecords()
		begin := func(h string) {
			if _, _, err := m.Begin(ctx, Record{Handle: h, Tenant: "a", Kind: researchKind, Submitted: time.Now()}, false); err != nil {
				t.Fatal(err)
			}
		}
		begin("done")
		begin("held")
		if _, _, err := m.Finish(ctx, "done", Answer{At: time.Now(), JobID: "j1"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(KeepRecords)
		begin("later")
		if _, ok, _ := m.Get(ctx, "done", "a"); !ok {
			t.Fatal("forgotten before KeepRecords had passed")
		}
		time.Sleep(time.Minute)
		begin("last")
		if _, ok, _ := m.Get(ctx, "done", "a"); ok || m.claimed["j1"] != "" {
			t.Error("kept past KeepRecords, or its claim")
		}
		if _, ok, _ := m.Get(ctx, "held", "a"); !ok {
			t.Error("a record still pending was forgotten")
		}
	})
}

// A submission whose start request is still in flight may create its job
// at any moment, however long ago it was sent: it stays a competitor of
// every later submission of the kind.
func TestALongPendingRequestStaysACompetitor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := NewMemoryRecords()
		rules := Rules{StartBound: time.Second, Exclusive: true}
		old := Record{Handle: NewHandle(time.Now(), "k"), Tenant: "a", Kind: "k", Submitted: time.Now(), State: StatePending}
		if _, _, err := m.Begin(ctx, old, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // the old request is still held
		now := time.Now()
		r := Record{Handle: NewHandle(now, "k"), Tenant: "b", Kind: "k", Submitted: now, State: StatePending}
		if _, _, err := m.Begin(ctx, r, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Finish(ctx, r.Handle, Answer{At: now, Unknown: true, Err: errors.New("reset")}); err != nil {
			t.Fatal(err)
		}
		job := Job{ID: "j1", Kind: "k", Status: Running, CreatedAt: now}
		st, err := m.Settle(ctx, r.Handle, Look{At: now, Candidates: []Job{job}}, rules)
		if err != nil || st.State == StateStarted {
			t.Errorf("Settle = %+v, %v; the job may be the long-pending request's and must not be confirmed", st.Record, err)
		}
	})
}
