package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// KindKey names the Kind attribute in logs (default "kind"); log
	// messages name the kind by it too.
	KindKey string
	// Narrate words a progress message (default: a plain English one).
	Narrate func(Note) string
	// Held returns how many calls wait with tenant's key at once, so that
	// their polls together stay within the upstream's rate limit. Nil
	// counts one.
	Held func(ctx context.Context, tenant string) (int, error)
	// Records keeps the submissions and the jobs they claim. Nil: in
	// memory (NewMemoryRecords), for a single process.
	Records Records
}

// Engine keeps the jobs this process started: it submits each exactly
// once, waits for it within each call's deadline, finds it in the job list
// when its start failed halfway, and drains them on shutdown. What is known
// of each submission is in Config.Records; the engine itself holds only
// this process's work in flight.
type Engine struct {
	cfg Config
	rec Records
	log *slog.Logger

	mu        sync.Mutex
	sending   map[string]*sending // handle → this process's start request
	closing   bool                // shutting down: no new jobs
	stop      chan struct{}       // closed by stopWaits: waits answer with what they know (shutdown)
	stopOnce  sync.Once
	lastSweep time.Time
	posts     sync.WaitGroup // start requests in flight
	lookups   sync.WaitGroup // background recovery
}

// DefaultConfig returns the timings that suit an API that holds a start
// request for about two minutes (BetterPrompt's); New gives them to zero
// fields.
func DefaultConfig() Config {
	return Config{
		StartBound:    150 * time.Second, // the ~120 s hold, plus a margin
		CreateTimeout: 180 * time.Second, // the ~120 s hold, plus the client's waits on 429s
		PollMin:       time.Second,
		PollMax:       5 * time.Second,
		ProgressEvery: 3 * time.Second,
	}
}

// New returns an Engine; zero durations in cfg take DefaultConfig's.
func New(cfg Config) *Engine {
	def := DefaultConfig()
	if cfg.StartBound <= 0 {
		cfg.StartBound = def.StartBound
	}
	if cfg.CreateTimeout <= 0 {
		cfg.CreateTimeout = def.CreateTimeout
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = def.PollMin
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = max(def.PollMax, cfg.PollMin)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = def.ProgressEvery
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	if cfg.KindKey == "" {
		cfg.KindKey = "kind"
	}
	if cfg.Narrate == nil {
		cfg.Narrate = narrate
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Records == nil {
		cfg.Records = NewMemoryRecords()
	}
	return &Engine{cfg: cfg, rec: cfg.Records, log: log, stop: make(chan struct{}), sending: make(map[string]*sending)}
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

// submission is the fixed part of a record, as the engine carries it while
// it works for a handle, with its logger.
type submission struct {
	handle    string // local id handed out before the upstream id is known
	tenant    string // the caller's key; handles are private to a key
	kind      string
	submitted time.Time
	log       *slog.Logger
}

// submissionOf returns the fixed part of rec.
func (e *Engine) submissionOf(rec Record) *submission {
	return &submission{handle: rec.Handle, tenant: rec.Tenant, kind: rec.Kind, submitted: rec.Submitted,
		log: e.log.With("handle", rec.Handle, e.cfg.KindKey, rec.Kind)}
}

// rules are the settings that the records' atomic steps apply. A job may
// have been started by this process's previous instance (before a
// restart) until CreateTimeout and the start bound after this one started:
// its requests were in flight until then.
func (e *Engine) rules() Rules {
	return Rules{StartBound: e.cfg.StartBound, Exclusive: e.cfg.Exclusive,
		InheritedUntil: e.cfg.Started.Add(e.cfg.CreateTimeout + e.cfg.StartBound)}
}

// ErrStopping refuses a job while the engine shuts down: nothing was
// started.
var ErrStopping = errors.New("runs: shutting down; nothing was started")

// errOutcomeUnknown marks a start error that leaves it unknown whether a job
// was created.
var errOutcomeUnknown = errors.New("the job may have been created")

// Stopping returns a channel closed when waits must end (shutdown).
func (e *Engine) Stopping() <-chan struct{} { return e.stop }

// Run starts a job for call with start, exactly once, and waits for it
// until deadline. A call replayed with the same Call.Key and tenant gets the
// submission its first delivery made, and starts nothing.
func (e *Engine) Run(ctx context.Context, up Upstream, call Call, start StartFunc, deadline time.Time, progress Progress) (Outcome, error) {
	s, replayed, err := e.submit(ctx, up, call, start)
	if err != nil {
		return Outcome{}, err
	}
	w := &waiter{e: e, up: up, tenant: call.Tenant, deadline: deadline, progress: progress}
	out, err := w.awaitSubmission(ctx, s)
	out.Joined = replayed // also with an error: what the call holds for its start is not needed
	return out, err
}

// Rejoin answers a replay of call (the same Call.Key and tenant as a call
// that already submitted) by waiting for that submission until deadline;
// it starts nothing. joined is false when call is no replay. Run does the
// same for a replay, but a caller that may not start a new job (no wait
// slot is free) needs to tell a replay from a new call first.
func (e *Engine) Rejoin(ctx context.Context, up Upstream, call Call, deadline time.Time, progress Progress) (out Outcome, joined bool, err error) {
	if call.Key == "" {
		return Outcome{}, false, nil
	}
	got, replayed, err := e.rec.Begin(ctx, recordOf(call, time.Now()), true) // closed: records nothing new
	if err != nil || !replayed {
		return Outcome{}, false, err
	}
	s := e.joined(got)
	w := &waiter{e: e, up: up, tenant: call.Tenant, deadline: deadline, progress: progress}
	out, err = w.awaitSubmission(ctx, s)
	return out, true, err
}

// recordOf is the record of a new submission of call at now, its sender's
// lease taken (renewLease keeps it).
func recordOf(call Call, now time.Time) Record {
	return Record{Handle: NewHandle(now, call.Kind), Tenant: call.Tenant, Kind: call.Kind, CallKey: call.Key, Submitted: now,
		AliveUntil: now.Add(SenderLease)}
}

// joined returns the submission that a replayed call joins, on record.
func (e *Engine) joined(rec Record) *submission {
	s := e.submissionOf(rec)
	s.log.Info("a replayed request joined the run its first delivery started; nothing new was started")
	return s
}

// submit starts the start request in the background and returns at once.
func (e *Engine) submit(ctx context.Context, up Upstream, call Call, start StartFunc) (s *submission, replayed bool, err error) {
	now := time.Now()
	rec := recordOf(call, now)
	// mu orders this process's shutdown against its own submissions (no
	// start request after the drain, and the drain waits for every one
	// sent); the record's rules do not depend on it.
	e.mu.Lock()
	got, replayed, err := e.rec.Begin(ctx, rec, e.closing)
	switch {
	case err != nil:
		e.mu.Unlock()
		return nil, false, fmt.Errorf("runs: recording the submission (nothing was started): %w", err)
	case replayed:
		e.mu.Unlock()
		return e.joined(got), true, nil
	case got.Handle == "":
		e.mu.Unlock()
		return nil, false, ErrStopping
	}
	e.sweepSendingLocked(now)
	// Until its start request answers, the record changes elsewhere only
	// through the job list (a job confirmed) or a lapsed lease: waiting
	// goes on with this copy, and a call answering at its deadline reads
	// the store (sending.rec).
	own := got
	e.sending[rec.Handle] = &sending{done: make(chan struct{}), rec: &own}
	e.posts.Add(1) // under mu, so that Drain cannot miss it
	e.mu.Unlock()
	s = e.submissionOf(got)

	// On record before anything is sent: if the process dies while the
	// upstream holds the request, the log still says what was submitted,
	// and when.
	s.log.Info("submitting a run", "submitted_at", now.UTC().Format(time.RFC3339Nano))

	// The start request must outlive the call (a cancelled request loses
	// the job id), so it runs on a context the call's cancellation does
	// not reach.
	detached := context.WithoutCancel(ctx)
	postCtx, cancel := context.WithTimeout(detached, e.cfg.CreateTimeout)
	go func() {
		defer e.posts.Done()
		defer cancel()
		stopRenewing := e.renewLease(detached, s)
		job, f, err := e.post(postCtx, up, s, start)
		stopRenewing()
		if rec, ok := e.finish(detached, s, job, f, err); ok && rec.State == StateUnknown {
			e.recoverInBackground(detached, up, s, rec)
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
	var last error // the previous 429, when this is a resend
	var lastF Failure
	for resends := 0; ; resends++ {
		if err := e.noteSent(ctx, s, resends == 0); err != nil {
			// The job's window would not cover this request: send nothing.
			// A resend not sent leaves the previous 429 as the answer.
			if last != nil {
				s.log.Warn("the start request could not be recorded; not sending it again", "err", err)
				return nil, lastF.final(), last
			}
			return nil, Failure{Kind: Transient}, fmt.Errorf("runs: recording the start request (it was not sent): %w", err)
		}
		job, err := start(ctx)
		if err == nil {
			return job, Failure{}, nil
		}
		f := up.Classify(err)
		if f.Kind != RateLimited {
			return nil, f, err
		}
		if f.JobID != "" {
			// The answer named the job it created: it goes on, and a
			// resend would start a second one.
			return nil, f.final(), err
		}
		last, lastF = err, f
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
		lctx, cancel := lateContext(ctx)
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
			s.log.Info("the API answered 429 and no run with this "+e.cfg.KindKey+" shows in the run list; not sending the POST again", "resends", resends)
			return nil, f.final(), err
		}
		if time.Since(s.submitted) > e.resendSpan() {
			// The look took too long: a request sent now could create its
			// job outside the window that a handle promises (foreignWindow).
			s.log.Info("the API answered 429 and no run with this "+e.cfg.KindKey+" shows in the run list; too late to send the POST again", "resends", resends)
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

// renewLease keeps s's sender lease (Record.AliveUntil, taken with the
// record) alive until the returned stop is called, so that other processes
// sharing the records can tell this one is still waiting for the start
// request's answer. A renewal that fails is tried again at the next tick: a
// lease that lapses only makes other processes look at the job list early.
func (e *Engine) renewLease(ctx context.Context, s *submission) (stop func()) {
	renew := func() {
		rctx, cancel := lateContext(ctx)
		defer cancel()
		if err := e.rec.Renew(rctx, s.handle, time.Now().Add(SenderLease)); err != nil {
			s.log.Debug("renewing the sender's lease failed", "err", err)
		}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(SenderLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				renew()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// noteSent records that a start request of s is being sent now: its job,
// if it creates one, must show in the job list within the start bound from
// now. The first one, sent soon after the record was begun, needs no
// record: the record's sending time is its submission until one is
// recorded (Record.SentAt), and no other process can have orphaned it
// (which Sent would refuse) while the sender's lease runs, as it still
// does by a wide margin.
func (e *Engine) noteSent(ctx context.Context, s *submission, first bool) error {
	if first && time.Since(s.submitted) < SenderLease/3 {
		return nil
	}
	sctx, cancel := lateContext(ctx)
	defer cancel()
	now := time.Now()
	err := e.rec.Sent(sctx, s.handle, now)
	e.mu.Lock()
	if p := e.sending[s.handle]; p != nil && p.rec != nil {
		if err != nil {
			p.rec = nil // the store refused it, or is unreachable: read it
		} else {
			own := *p.rec
			own.LastSent = now
			p.rec = &own
		}
	}
	e.mu.Unlock()
	return err
}

// lateContext bounds work that must happen even when the call, or the
// start request's time, has ended: a write to the records, a last look at
// the job list.
func lateContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), LateWork)
}

// finish records the start request's answer (job, or err classified as f),
// logs it, and returns the record; ok is false when it could not be
// recorded.
func (e *Engine) finish(ctx context.Context, s *submission, job *Job, f Failure, err error) (rec Record, ok bool) {
	a := answerOf(job, f, err)
	e.mu.Lock()
	p := e.sending[s.handle]
	// Before the record says started, so that the first waiter to see it
	// takes the answer.
	p.answer, p.finished = job, a.At
	if job == nil {
		p.err = err // kept for the waiters (until the sweep), with its type
	}
	e.mu.Unlock()

	rec, previous, serr := e.recordFinish(ctx, s, a)

	e.mu.Lock()
	// A started or refused record is settled: what waiters read of it
	// does not change. One whose outcome is unknown is recovery's to
	// change, through the store.
	if serr == nil && (rec.State == StateStarted || rec.State == StateRefused) {
		own := rec
		e.ownRecordLocked(s.handle, &own)
	} else {
		e.ownRecordLocked(s.handle, nil)
	}
	close(p.done)
	if p.answer == nil && p.err == nil {
		delete(e.sending, s.handle)
	}
	e.mu.Unlock()

	switch {
	case serr != nil:
		// The id is on record in the log, whatever the store says.
		s.log.Error("the start request's answer could not be recorded; waiters will not learn it", "run_id", a.JobID, "answer_err", err, "err", serr)
		return rec, false
	case previous != "" && rec.JobID != previous:
		s.log.Warn("the API's answer contradicts the run the run list suggested; following the API", "run_id", rec.JobID, "suggested_run_id", previous)
	case rec.State == StateRefused:
		s.log.Warn("starting a run failed; nothing was started", "err", err)
	case rec.State == StateUnknown:
		s.log.Warn("starting a run failed after the request may have reached the API; looking for the run in the run list", "err", err)
	case rec.Abandoned:
		s.log.Info("run started after its tool call ended; it continues upstream", "run_id", rec.JobID)
	default:
		// Every paid job is on record, whatever happens to the call or the
		// process afterwards.
		s.log.Info("run started", "run_id", rec.JobID)
	}
	return rec, true
}

// answerOf is what the start request's outcome says for the record.
func answerOf(job *Job, f Failure, err error) Answer {
	a := Answer{At: time.Now()}
	switch {
	case err == nil:
		a.JobID = job.ID
	case f.Kind == TimedOut && f.JobID != "":
		a.JobID = f.JobID
	case f.Kind == OutcomeUnknown || f.Kind == TimedOut:
		a.Unknown, a.Err = true, err
	default:
		a.Err = err // nothing was started
	}
	return a
}

// maxFinishBackoff bounds the pause between attempts to record a start
// request's answer.
const maxFinishBackoff = 5 * time.Second

// recordFinish records a, trying again until the store takes it or the
// engine stops: the answer of a paid start is what every waiter, and
// recovery, needs. The first failure is logged with the job id, so that
// the id is on record whatever the store does.
func (e *Engine) recordFinish(ctx context.Context, s *submission, a Answer) (rec Record, previous string, err error) {
	for try := 1; ; try++ {
		sctx, cancel := lateContext(ctx)
		rec, previous, err = e.rec.Finish(sctx, s.handle, a)
		cancel()
		if err == nil && rec.Handle == "" {
			return rec, previous, errForgotten
		}
		if err == nil {
			if try > 1 {
				s.log.Info("the start request's answer is recorded", "run_id", a.JobID, "tries", try)
			}
			return rec, previous, nil
		}
		if try == 1 {
			s.log.Warn("recording the start request's answer failed; trying again until it is recorded", "run_id", a.JobID, "err", err)
		}
		select {
		case <-time.After(min(time.Duration(try)*100*time.Millisecond, maxFinishBackoff)):
		case <-e.stop:
			return rec, previous, err // shutting down: the id is in the log
		}
	}
}

// abandon records that no call waits for s any more and logs what is known,
// so that an id handed to no one is still on record.
func (e *Engine) abandon(ctx context.Context, s *submission, reason error) {
	sctx, cancel := lateContext(ctx)
	rec, err := e.rec.Abandon(sctx, s.handle)
	cancel()
	switch {
	case err != nil:
		s.log.Info("tool call ended; what became of the run could not be read", "reason", reason, "err", err)
	case rec.JobID != "":
		s.log.Info("tool call ended before the run did; the run goes on upstream", "run_id", rec.JobID, "reason", reason)
	case rec.State == StatePending:
		s.log.Info("tool call ended while the API still held the request that starts the run; its id will be logged when it answers", "reason", reason)
	case rec.State == StateUnknown:
		s.log.Info("tool call ended while it was still unknown whether the run started; the run list is still being watched", "reason", reason)
	}
}

// lookup returns the submission behind a local handle, for the same key.
func (e *Engine) lookup(ctx context.Context, handle, tenant string) *submission {
	rec, ok, err := e.rec.Get(ctx, handle, tenant)
	if err != nil {
		e.log.Warn("reading the record of a handle failed; treating it as unknown", "handle", handle, "err", err)
	}
	if !ok || err != nil {
		return nil
	}
	return e.submissionOf(rec)
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
