package runs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// State is what is known of a submission.
type State int

const (
	// StatePending: the start request has not answered.
	StatePending State = iota
	// StateStarted: the job id is known for certain (the upstream's answer,
	// or a job list that leaves no doubt).
	StateStarted
	// StateRefused: the upstream refused, or the request never reached it:
	// nothing was started.
	StateRefused
	// StateUnknown: the start failed after it may have reached the
	// upstream; recovery looks for the job in the job list.
	StateUnknown
	// StateNotStarted: the outcome was unknown, but no job of the kind
	// showed in the job list within the start bound: nothing was started.
	StateNotStarted
)

// Config holds an Engine's settings.
type Config struct {
	// StartBound is how long after the last moment a start request was in
	// flight its job must show in the job list, if it created one. Past
	// it, a submission whose outcome was unknown and that shows no job is
	// known not to have started.
	StartBound time.Duration
	// CreateTimeout bounds the detached start request; it must exceed the
	// time the upstream may hold it, so that the job id is always learned.
	CreateTimeout time.Duration
	// PollMin and PollMax bound the interval between readings of a job.
	PollMin, PollMax time.Duration
	// ProgressEvery is the interval between progress messages.
	ProgressEvery time.Duration
	// Exclusive says that no other client starts jobs with the keys the
	// engine is given, so a job found in the job list can be this
	// process's only.
	Exclusive bool
	// Started is when this process began keeping jobs (zero: when New is
	// called): before it, a previous instance may have sent start requests
	// that this one knows nothing of.
	Started time.Time
	// Logger receives every job id learned, and what became of each
	// submission. Nil discards them.
	Logger *slog.Logger
	// KindKey names the Kind attribute in logs (default "kind"), and
	// KindNoun names a kind in log messages (default "kind").
	KindKey, KindNoun string
	// Narrate words a progress message (default: a plain English one).
	Narrate func(Note) string
	// Held returns how many calls wait with tenant's key at once, so that
	// their polls together stay within the upstream's rate limit. Nil
	// counts one.
	Held func(ctx context.Context, tenant string) (int, error)
}

// Engine keeps the jobs this process started: it submits each exactly
// once, waits for it within each call's deadline, finds it in the job list
// when its start failed halfway, and drains them on shutdown.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	byHandle  map[string]*submission // local handle → submission
	byCall    map[string]*submission // call key → submission, for replays
	claimed   map[string]string      // upstream job id → handle of the submission that certainly owns it
	closing   bool                   // shutting down: no new jobs
	stop      chan struct{}          // closed by stopWaits: waits answer with what they know (shutdown)
	stopOnce  sync.Once
	lastSweep time.Time
	posts     sync.WaitGroup // start requests in flight
	lookups   sync.WaitGroup // background recovery
}

// New returns an Engine; zero durations in cfg take the defaults of an API
// that holds a start request for about two minutes.
func New(cfg Config) *Engine {
	if cfg.StartBound <= 0 {
		cfg.StartBound = 150 * time.Second
	}
	if cfg.CreateTimeout <= 0 {
		cfg.CreateTimeout = 180 * time.Second
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = time.Second
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(5*time.Second, cfg.PollMin)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 3 * time.Second
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	if cfg.KindKey == "" {
		cfg.KindKey = "kind"
	}
	if cfg.KindNoun == "" {
		cfg.KindNoun = "kind"
	}
	if cfg.Narrate == nil {
		cfg.Narrate = narrate
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Engine{
		cfg: cfg, log: log, stop: make(chan struct{}),
		byHandle: make(map[string]*submission), byCall: make(map[string]*submission), claimed: make(map[string]string),
	}
}

// narrate is the default wording of progress messages.
func narrate(n Note) string {
	switch n.Phase {
	case PhaseRecovering:
		return fmt.Sprintf("The request that starts the job failed; looking for the job in the job list (id %s)", n.ID)
	case PhasePolling:
		if n.Status == "" {
			return fmt.Sprintf("Job %s is being read", n.ID)
		}
		return fmt.Sprintf("Job %s is %s", n.ID, n.Status)
	}
	return fmt.Sprintf("Starting the job (id %s to follow if this call is cut off)", n.ID)
}

// Call says who submits a job and what it starts.
type Call struct {
	// Tenant identifies the caller's key: handles are private to it.
	Tenant string
	// Kind is the job's kind (Job.Kind), which recovery matches.
	Kind string
	// Key identifies the call, so that a replay of it (an HTTP-level
	// retry) joins the job its first delivery started; "" for none.
	Key string
}

// StartFunc sends the request that starts a job, once. It runs detached
// from the call, on a context bounded by Config.CreateTimeout.
type StartFunc func(ctx context.Context) (*Job, error)

// submission is one start request and what became of it. The fields after
// log are guarded by Engine.mu.
type submission struct {
	handle    string // local id handed out before the upstream id is known
	tenant    string // the caller's key; handles are private to a key
	kind      string
	callKey   string // the call that made it, if any
	submitted time.Time
	done      chan struct{} // closed when the start request has answered or failed
	log       *slog.Logger

	state     State
	jobID     string // upstream id, certain
	job       *Job   // the start request's answer, until a waiter takes it
	err       error  // the start request's failure
	finished  time.Time
	abandoned bool      // no call waits for it any more
	look      *Look     // recovery's latest look at the job list
	lastSent  time.Time // when the latest start request was sent (a 429 may have it sent again)
	watched   bool      // background recovery watches the job list for it
	changed   chan struct{}
}

// keepSubmissions is how long a handle stays resolvable; maxSubmissions
// bounds the memory it takes, and minKeep protects recent handles from
// eviction whatever the count.
const (
	keepSubmissions = 24 * time.Hour
	maxSubmissions  = 10000
	minKeep         = time.Hour
)

// ErrStopping refuses a job while the engine shuts down: nothing was
// started.
var ErrStopping = errors.New("runs: shutting down; nothing was started")

// errOutcomeUnknown marks a start error that leaves it unknown whether a job
// was created.
var errOutcomeUnknown = errors.New("the job may have been created")

// Stopping returns a channel closed when waits must end (shutdown).
func (e *Engine) Stopping() <-chan struct{} { return e.stop }

// notifyLocked wakes everyone waiting for a change of s.
func (s *submission) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run starts a job for call with start, exactly once, and waits for it
// until deadline. A call replayed with the same Call.Key and tenant gets the
// submission its first delivery made, and starts nothing.
func (e *Engine) Run(ctx context.Context, up Upstream, call Call, start StartFunc, deadline time.Time, progress Progress) (Outcome, error) {
	s, _, err := e.submit(ctx, up, call, start)
	if err != nil {
		return Outcome{}, err
	}
	w := &waiter{e: e, up: up, tenant: call.Tenant, deadline: deadline, progress: progress}
	return w.awaitSubmission(ctx, s)
}

// submit starts the start request in the background and returns at once.
func (e *Engine) submit(ctx context.Context, up Upstream, call Call, start StartFunc) (s *submission, replayed bool, err error) {
	now := time.Now()
	s = &submission{
		handle: NewHandle(now, call.Kind), tenant: call.Tenant, kind: call.Kind,
		callKey: call.Key, submitted: now, done: make(chan struct{}), changed: make(chan struct{}),
	}
	s.log = e.log.With("handle", s.handle, e.cfg.KindKey, s.kind)
	e.mu.Lock()
	if prev := e.byCall[s.callKey]; s.callKey != "" && prev != nil && prev.tenant == call.Tenant {
		e.mu.Unlock()
		prev.log.Info("a replayed request joined the run its first delivery started; nothing new was started")
		return prev, true, nil
	}
	if e.closing {
		e.mu.Unlock()
		return nil, false, ErrStopping
	}
	e.sweepLocked(now)
	e.byHandle[s.handle] = s
	if s.callKey != "" {
		e.byCall[s.callKey] = s
	}
	e.posts.Add(1) // under mu, so that Drain cannot miss it
	e.mu.Unlock()

	// On record before anything is sent: if the process dies while the
	// upstream holds the request, the log still says what was submitted,
	// and when.
	s.log.Info("submitting a run", "submitted_at", now.UTC().Format(time.RFC3339Nano))

	// The start request must outlive the call (a cancelled request loses
	// the job id), so it runs on a context the call's cancellation does
	// not reach.
	postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CreateTimeout)
	go func() {
		defer e.posts.Done()
		defer cancel()
		job, f, err := e.post(postCtx, up, s, start)
		if e.finish(s, job, f, err) == StateUnknown {
			e.recoverInBackground(context.WithoutCancel(ctx), up, s)
		}
	}()
	return s, false, nil
}

// maxResends bounds how often a start request is sent again after 429s.
const maxResends = 3

// post sends the start request. A 429 normally means the upstream refused
// before doing anything, but a proxy in between may answer 429 after the
// upstream created the job, so after every 429 the job list decides: a job
// that may be this one makes the outcome unknown (recovery takes over);
// otherwise the request is sent again, a few times and only early (so the
// job's window stays short), and past that the 429 is the answer: nothing
// was started. f classifies err.
func (e *Engine) post(ctx context.Context, up Upstream, s *submission, start StartFunc) (*Job, Failure, error) {
	for resends := 0; ; resends++ {
		e.noteSent(s)
		job, err := start(ctx)
		if err == nil {
			return job, Failure{}, nil
		}
		f := up.Classify(err)
		if f.Kind != RateLimited {
			return nil, f, err
		}
		wait := f.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		again := resends < maxResends && time.Since(s.submitted)+wait <= e.resendSpan()
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+time.Second {
			again = false // no time left for the wait and a request
		}
		if again && !sleepCtx(ctx, wait) {
			again = false // the request's time is up
		}
		// The request's context may be spent; the look must still happen.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lateWork)
		found, lerr := e.lookUp(lctx, up, s)
		cancel()
		switch {
		case lerr != nil:
			s.log.Warn("the API answered 429 and the run list could not be read to check that nothing was started; not sending the POST again", "err", lerr)
			return nil, f.mayBeJob(), errors.Join(errOutcomeUnknown, err)
		case len(found.Candidates) > 0:
			s.log.Warn("the API answered 429, but a run that may be this one shows in the run list; not sending the POST again")
			return nil, f.mayBeJob(), errors.Join(errOutcomeUnknown, err)
		case !again:
			s.log.Info("the API answered 429 and no run of the "+e.cfg.KindNoun+" shows in the run list; not sending the POST again", "resends", resends)
			return nil, f.final(), err
		}
		if time.Since(s.submitted) > e.resendSpan() {
			// The look took too long: a request sent now could create its
			// job outside the window that a handle promises (foreignWindow).
			s.log.Info("the API answered 429 and no run of the "+e.cfg.KindNoun+" shows in the run list; too late to send the POST again", "resends", resends)
			return nil, f.final(), err
		}
		s.log.Info("the API answered 429 and no run was started; sending the POST again", "retry_after", wait)
	}
}

// final is what a rate-limited start means once it is not sent again
// (Failure.Then): refused, a job the answer named, or an unknown outcome.
func (f Failure) final() Failure {
	return Failure{Kind: f.Then, JobID: f.JobID}
}

// mayBeJob is what a rate-limited start means when a job that may be its
// own shows in the job list: the job the answer named, if it named one;
// otherwise the outcome is unknown and recovery decides.
func (f Failure) mayBeJob() Failure {
	if f.Then == TimedOut && f.JobID != "" {
		return Failure{Kind: TimedOut, JobID: f.JobID}
	}
	return Failure{Kind: OutcomeUnknown}
}

// noteSent records that a start request of s is being sent now: its job,
// if it creates one, must show in the job list within the start bound from
// now.
func (e *Engine) noteSent(s *submission) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.lastSent = time.Now()
}

// finish records the start request's answer (job, or err classified as f),
// logs it, and returns the new state.
func (e *Engine) finish(s *submission, job *Job, f Failure, err error) State {
	e.mu.Lock()
	previous := s.jobID
	switch {
	case err == nil:
		s.state, s.job, s.jobID = StateStarted, job, job.ID
	case f.Kind == TimedOut && f.JobID != "":
		s.state, s.jobID = StateStarted, f.JobID
	case f.Kind == OutcomeUnknown || f.Kind == TimedOut:
		s.err = err
		if s.state != StateStarted { // the job list may have settled it already
			s.state = StateUnknown
		}
	default:
		s.state, s.err, s.jobID = StateRefused, err, "" // nothing was started
	}
	if previous != "" && s.jobID != previous {
		// The job list suggested another job; the upstream's answer is the
		// truth.
		e.unclaimLocked(previous, s)
	}
	if s.jobID != "" {
		e.claimed[s.jobID] = s.handle
	}
	s.finished = time.Now()
	state, jobID, abandoned := s.state, s.jobID, s.abandoned
	s.notifyLocked()
	e.mu.Unlock()
	close(s.done)

	switch {
	case previous != "" && jobID != previous:
		s.log.Warn("the API's answer contradicts the run the run list suggested; following the API", "run_id", jobID, "suggested_run_id", previous)
	case state == StateRefused:
		s.log.Warn("starting a run failed; nothing was started", "err", err)
	case state == StateUnknown:
		s.log.Warn("starting a run failed after the request may have reached the API; looking for the run in the run list", "err", err)
	case abandoned:
		s.log.Info("run started after its tool call ended; it continues upstream", "run_id", jobID)
	default:
		// Every paid job is on record, whatever happens to the call or the
		// process afterwards.
		s.log.Info("run started", "run_id", jobID)
	}
	return state
}

// unclaimLocked releases a job id unless another submission holds it.
func (e *Engine) unclaimLocked(jobID string, except *submission) {
	for _, o := range e.byHandle {
		if o != except && o.jobID == jobID {
			e.claimed[jobID] = o.handle
			return
		}
	}
	delete(e.claimed, jobID)
}

// abandon records that no call waits for s any more and logs what is known,
// so that an id handed to no one is still on record.
func (e *Engine) abandon(s *submission, reason error) {
	e.mu.Lock()
	s.abandoned = true
	jobID, state := s.jobID, s.state
	e.mu.Unlock()
	switch {
	case jobID != "":
		s.log.Info("tool call ended before the run did; the run goes on upstream", "run_id", jobID, "reason", reason)
	case state == StatePending:
		s.log.Info("tool call ended while the API still held the request that starts the run; its id will be logged when it answers", "reason", reason)
	case state == StateUnknown:
		s.log.Info("tool call ended while it was still unknown whether the run started; the run list is still being watched", "reason", reason)
	}
}

// lookup returns the submission behind a local handle, for the same key.
func (e *Engine) lookup(handle, tenant string) *submission {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byHandle[handle]
	if s == nil || s.tenant != tenant {
		return nil
	}
	return s
}

// snapshot is what a waiter reads of a submission at one moment.
type snapshot struct {
	state State
	jobID string
	job   *Job // the start request's answer, handed to one caller only
	err   error
	look  *Look
	// certainAt is when the absence of a job becomes definitive.
	certainAt time.Time
	watched   bool            // background recovery watches the job list
	changed   <-chan struct{} // closed at the next change
}

// read reads what is known of a submission. The start request's answer is
// handed to one caller only; later ones read the job upstream by its id.
func (e *Engine) read(s *submission) snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, certainAt := e.windowLocked(s)
	snap := snapshot{state: s.state, jobID: s.jobID, job: s.job, err: s.err, look: s.look, certainAt: certainAt, watched: s.watched, changed: s.changed}
	s.job = nil
	return snap
}

// peek reads a submission's state without taking the start request's
// answer.
func (e *Engine) peek(s *submission) (State, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return s.state, s.jobID, s.err
}

// sweepLocked forgets old submissions so memory stays bounded: those done
// for a day, and past the count limit the oldest done ones, but never one
// finished within minKeep, whose handle a caller may be about to use.
func (e *Engine) sweepLocked(now time.Time) {
	if len(e.byHandle) < maxSubmissions && now.Sub(e.lastSweep) < time.Minute {
		return
	}
	e.lastSweep = now
	var evictable []*submission
	for _, s := range e.byHandle {
		switch {
		case s.finished.IsZero() || now.Sub(s.finished) < minKeep:
		case now.Sub(s.finished) > keepSubmissions:
			e.forgetLocked(s)
		default:
			evictable = append(evictable, s)
		}
	}
	if excess := len(e.byHandle) - maxSubmissions + 1; excess > 0 {
		slices.SortFunc(evictable, func(a, b *submission) int { return a.finished.Compare(b.finished) })
		for _, s := range evictable[:min(excess, len(evictable))] {
			e.forgetLocked(s)
		}
	}
}

func (e *Engine) forgetLocked(s *submission) {
	delete(e.byHandle, s.handle)
	if e.byCall[s.callKey] == s {
		delete(e.byCall, s.callKey)
	}
	if s.jobID != "" && e.claimed[s.jobID] == s.handle {
		e.unclaimLocked(s.jobID, s)
	}
}

// BeginShutdown refuses new jobs at once and, after answerWithin, makes
// every wait answer with what it knows (a job id or a handle), so that each
// call is answered before the transport closes.
func (e *Engine) BeginShutdown(answerWithin time.Duration) {
	e.mu.Lock()
	already := e.closing
	e.closing = true
	e.mu.Unlock()
	switch {
	case already:
	case answerWithin <= 0:
		e.stopWaits()
	default:
		time.AfterFunc(answerWithin, e.stopWaits)
	}
}

// stopWaits makes every wait answer now.
func (e *Engine) stopWaits() {
	e.stopOnce.Do(func() { close(e.stop) })
}

// Drain stops new jobs, makes every wait answer now, and blocks until
// every detached start request has answered (so each job id is known and
// logged) or ctx ends; background searches of the job list stop, logging
// what they know.
func (e *Engine) Drain(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.stopWaits()
	done := make(chan struct{})
	go func() { e.posts.Wait(); e.lookups.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("runs: draining: %w", ctx.Err())
	}
}

// sleepCtx waits for d; it reports false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
