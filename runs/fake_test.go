package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/syncbuf"
)

const (
	researchKind  = "5326247b-9496-4564-8298-35f19a183ef2"
	coldEmailKind = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"
)

// fakeErr is a failure of the fake upstream, classified as f.
type fakeErr struct {
	f   Failure
	msg string
}

func (e *fakeErr) Error() string { return e.msg }

// fakeUpstream is an in-memory upstream: an account's jobs, read by id and
// listed newest first.
type fakeUpstream struct {
	mu      sync.Mutex
	jobs    []*Job // oldest first
	listErr error
	lists   int
	// gate, when not nil, holds every List until it is closed; entered
	// receives a value as each List begins.
	gate    chan struct{}
	entered chan struct{}
}

// add creates a running job of kind at, as another client would.
func (f *fakeUpstream) add(kind string, at time.Time) Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := &Job{ID: fmt.Sprintf("job-%d", len(f.jobs)+1), Kind: kind, Status: Running, CreatedAt: at}
	f.jobs = append(f.jobs, j)
	return *j
}

// start returns a start that creates a job of kind; the upstream answers
// with the job, or, when timedOut, with a failure that names it.
func (f *fakeUpstream) start(kind string, timedOut bool) StartFunc {
	return func(context.Context) (*Job, error) {
		j := f.add(kind, time.Now())
		if timedOut {
			return nil, &fakeErr{f: Failure{Kind: TimedOut, JobID: j.ID}, msg: "504 " + j.ID}
		}
		return &j, nil
	}
}

func (f *fakeUpstream) Get(_ context.Context, id string) (*Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			cp := *j
			return &cp, nil
		}
	}
	return nil, &fakeErr{f: Failure{Kind: NotFound}, msg: "404 " + id}
}

func (f *fakeUpstream) List(ctx context.Context, from, to time.Time) ([]Job, error) {
	f.mu.Lock()
	f.lists++
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []Job
	for i := len(f.jobs) - 1; i >= 0; i-- {
		out = append(out, *f.jobs[i])
	}
	return out, nil
}

func (f *fakeUpstream) Classify(err error) Failure {
	var fe *fakeErr
	if errors.As(err, &fe) {
		return fe.f
	}
	return Failure{Kind: Transient}
}

// hold makes every List wait until the returned release is called, and
// returns a channel that receives as each List begins.
func (f *fakeUpstream) hold() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate, f.entered = make(chan struct{}), make(chan struct{}, 16)
	var once sync.Once
	return f.entered, func() { once.Do(func() { close(f.gate) }) }
}

func (f *fakeUpstream) failLists(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

// testEnv is an engine over a fake upstream in which one job of the
// research kind was already started (by another client, or by a
// submission whose outcome is unknown), with its logs captured.
type testEnv struct {
	e    *Engine
	up   *fakeUpstream
	job  string // the upstream job's id
	logs *syncbuf.Buffer
}

func newTestEnv(t *testing.T, exclusive bool, tweak ...func(*Config)) *testEnv {
	t.Helper()
	up := &fakeUpstream{}
	job := up.add(researchKind, time.Now())
	logs := &syncbuf.Buffer{}
	cfg := Config{
		StartBound: 150 * time.Second, CreateTimeout: 180 * time.Second,
		PollMin: 50 * time.Millisecond, PollMax: 100 * time.Millisecond, ProgressEvery: time.Second,
		Exclusive: exclusive,
		Started:   time.Now().Add(-time.Hour), // no previous instance's request can create a job now
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		KindKey:   "prompt_version_id",
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return &testEnv{e: New(cfg), up: up, job: job.ID, logs: logs}
}

// pending registers a submission in the given state, as if its start
// request were in flight (StatePending) or had ended with err.
func (v *testEnv) pending(state State, err error) *submission {
	now := time.Now()
	rec := Record{Handle: NewHandle(now, researchKind), Kind: researchKind, Submitted: now.Add(-2 * time.Second), State: state, Err: err}
	if state != StatePending {
		rec.Finished = now
	}
	m := v.mem()
	m.mu.Lock()
	m.byHandle[rec.Handle] = &rec
	m.mu.Unlock()
	if state == StatePending {
		v.e.mu.Lock()
		v.e.sending[rec.Handle] = &sending{done: make(chan struct{})}
		v.e.mu.Unlock()
	}
	return v.e.submissionOf(rec)
}

// mem is the engine's records.
func (v *testEnv) mem() *MemoryRecords { return v.e.rec.(*MemoryRecords) }

// edit changes s's record with f, as if it had been made so.
func (v *testEnv) edit(s *submission, f func(r *Record)) {
	m := v.mem()
	m.mu.Lock()
	r := m.byHandle[s.handle]
	f(r)
	rec := *r
	m.mu.Unlock()
	*s = *v.e.submissionOf(rec)
}

// record reads s's record.
func (v *testEnv) record(t *testing.T, s *submission) Record {
	t.Helper()
	rec, ok, err := v.e.rec.Get(context.Background(), s.handle, s.tenant)
	if err != nil || !ok {
		t.Fatalf("no record of %s: %v", s.handle, err)
	}
	return rec
}

var errUnknown = &fakeErr{f: Failure{Kind: OutcomeUnknown}, msg: "connection reset"}

// settleOnce looks in the job list once for s and records what it saw.
func (v *testEnv) settleOnce(t *testing.T, s *submission) {
	t.Helper()
	lk, err := v.e.lookUp(context.Background(), v.up, s)
	if err != nil {
		t.Fatal(err)
	}
	v.e.settle(context.Background(), s, lk)
}

func (v *testEnv) claim(jobID, handle string) {
	m := v.mem()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claimed[jobID] = handle
}

func (v *testEnv) claimedBy(jobID string) string {
	m := v.mem()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.claimed[jobID]
}

// succeed makes job id final.
func (f *fakeUpstream) succeed(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			j.Status = Succeeded
		}
	}
}

// pollOnly is Records without Notifier, as a store shared by processes
// is: waiters can only read again.
type pollOnly struct{ Records }
