package betterprompt

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/tools"
)

// The run lifecycle. The API holds POST /v1/runs until the run ends or about
// two minutes pass (then 504 with the run id), and the run id exists only in
// that answer. Hosts cancel tool calls after about 60 s. So a run is started
// by a POST that runs detached from the tool call (it cannot be retried: a
// second POST would be a second paid run), and the call waits for it only as
// long as the agent asked. If the wait ends first, the agent gets an id that
// get_run resolves: the upstream run id when it is known for certain, or a
// local handle that this process maps to the run id once the API answers.
//
// When the POST fails in a way that leaves it unknown whether a run was
// created, the account's run list is the only witness, and it cannot say
// whose run a row is: rows carry no inputs, and the API has no idempotency
// key. A run found there is this call's only when nothing else could have
// started it (see recovery.go); otherwise the agent is told which runs may
// be its own, and decides. Every submission ends in a definitive state, and
// every run id the server learns is logged.

// subState is what is known of a submission.
type subState int

const (
	// statePending: the POST has not answered.
	statePending subState = iota
	// stateStarted: the run id is known for certain (the API's answer, or a
	// run list that leaves no doubt).
	stateStarted
	// stateRefused: the API refused, or the request never reached it:
	// nothing was started.
	stateRefused
	// stateUnknown: the POST failed after it may have reached the API;
	// recovery looks for the run in the run list.
	stateUnknown
	// stateNotStarted: the outcome was unknown, but no run of the prompt
	// showed in the run list within the start bound: nothing was started.
	stateNotStarted
)

// runTracker keeps the runs this process started.
type runTracker struct {
	// exclusive says that no other client starts runs with the keys this
	// server uses, so a run found in the run list can be this process's
	// only (Toolset.ExclusiveKey).
	exclusive bool
	// startBound and createTimeout are WaitConfig's.
	startBound, createTimeout time.Duration
	// started is when this process began keeping runs: before it, a
	// previous instance may have sent POSTs that this one knows nothing of.
	started time.Time

	mu        sync.Mutex
	byHandle  map[string]*submission // local handle → submission
	byCall    map[string]*submission // session and JSON-RPC id → submission, for replays
	claimed   map[string]string      // upstream run id → handle of the submission that certainly owns it
	closing   bool                   // shutting down: no new runs
	stop      chan struct{}          // closed by stopWaits: waits answer with what they know (shutdown)
	stopOnce  sync.Once
	lastSweep time.Time
	posts     sync.WaitGroup // POSTs in flight
	lookups   sync.WaitGroup // background recovery
}

// submission is one POST /v1/runs and what became of it. The fields after
// log are guarded by runTracker.mu.
type submission struct {
	handle    string // local id handed out before the upstream id is known
	tenant    string // KeyID of the API key; handles are private to a key
	versionID string
	callKey   string // the session and JSON-RPC id of the call that made it, if any
	submitted time.Time
	done      chan struct{} // closed when the POST has answered or failed
	log       *slog.Logger

	state     subState
	runID     string     // upstream id, certain
	run       *bpapi.Run // the POST's 200 answer, until a waiter takes it
	err       error      // the POST's failure
	finished  time.Time
	abandoned bool      // no tool call waits for it any more
	look      *look     // recovery's latest look at the run list
	lastSent  time.Time // when the latest POST was sent (a 429 may have it sent again)
	watched   bool      // background recovery watches the run list for it
	changed   chan struct{}
}

// keepSubmissions is how long a handle stays resolvable (output URLs expire
// after 24 h anyway); maxSubmissions bounds the memory it takes, and
// minKeep protects recent handles from eviction whatever the count.
const (
	keepSubmissions = 24 * time.Hour
	maxSubmissions  = 10000
	minKeep         = time.Hour
)

// errShuttingDown refuses a run while the server stops.
var errShuttingDown = &tools.Error{Msg: "The server is shutting down; nothing was run and no credits were spent. Try again once it is back."}

func (t *runTracker) initLocked() {
	if t.byHandle == nil {
		t.byHandle, t.byCall, t.claimed = make(map[string]*submission), make(map[string]*submission), make(map[string]string)
	}
	if t.stop == nil {
		t.stop = make(chan struct{})
	}
}

// stopping returns a channel closed when waits must end (shutdown).
func (t *runTracker) stopping() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	return t.stop
}

// notifyLocked wakes everyone waiting for a change of s.
func (s *submission) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// submit starts the POST in the background and returns at once. A call
// replayed with the same session and JSON-RPC id (an HTTP-level retry) gets
// the submission its first delivery made, and starts nothing.
func (t *runTracker) submit(ctx context.Context, d *Toolset, c *bpapi.Client, tenant string, req bpapi.CreateRunRequest) (s *submission, replayed bool, err error) {
	now := time.Now()
	s = &submission{
		handle: newHandle(now, req.PromptVersionID), tenant: tenant, versionID: req.PromptVersionID,
		callKey: tools.CallKey(ctx), submitted: now, done: make(chan struct{}), changed: make(chan struct{}),
	}
	s.log = d.logger().With("handle", s.handle, "prompt_version_id", s.versionID)
	t.mu.Lock()
	t.initLocked()
	if prev := t.byCall[s.callKey]; s.callKey != "" && prev != nil && prev.tenant == tenant {
		t.mu.Unlock()
		prev.log.Info("a replayed request joined the run its first delivery started; nothing new was started")
		return prev, true, nil
	}
	if t.closing {
		t.mu.Unlock()
		return nil, false, errShuttingDown
	}
	t.sweepLocked(now)
	t.byHandle[s.handle] = s
	if s.callKey != "" {
		t.byCall[s.callKey] = s
	}
	t.posts.Add(1) // under mu, so that wait cannot miss it
	t.mu.Unlock()

	// On record before anything is sent: if the process dies while the API
	// holds the request, the log still says what was submitted, and when.
	s.log.Info("submitting a run", "submitted_at", now.UTC().Format(time.RFC3339Nano))

	// The POST must outlive the call (a cancelled POST loses the run id), so
	// it runs on a context that the call's cancellation does not reach.
	postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.Wait.CreateTimeout)
	go func() {
		defer t.posts.Done()
		defer cancel()
		run, err := t.post(postCtx, d, c, s, req)
		if t.finish(s, run, err) == stateUnknown {
			t.recoverInBackground(context.WithoutCancel(ctx), d, c, s)
		}
	}()
	return s, false, nil
}

// post sends the POST. A 429 normally means the API refused before doing
// anything, but a proxy in between may answer 429 after the API created the
// run, so after every 429 the run list decides: a run that may be this one
// makes the outcome unknown (recovery takes over); otherwise the POST is
// sent again, a few times and only early (so the run's window stays short),
// and past that the 429 is the answer: nothing was started.
func (t *runTracker) post(ctx context.Context, d *Toolset, c *bpapi.Client, s *submission, req bpapi.CreateRunRequest) (*bpapi.Run, error) {
	const maxResends = 3
	for resends := 0; ; resends++ {
		t.noteSent(s)
		run, err := c.CreateRun(ctx, req)
		if !bpapi.IsRateLimited(err) {
			return run, err
		}
		wait := time.Second
		var ae *bpapi.APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		again := resends < maxResends && time.Since(s.submitted)+wait <= t.resendSpan()
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+time.Second {
			again = false // no time left for the wait and a POST
		}
		if again && !sleepCtx(ctx, wait) {
			again = false // the POST's time is up
		}
		// The POST's context may be spent; the look must still happen.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lateWork)
		found, lerr := t.lookUp(lctx, d, c, s)
		cancel()
		switch {
		case lerr != nil:
			s.log.Warn("the API answered 429 and the run list could not be read to check that nothing was started; not sending the POST again", "err", lerr)
			return nil, outcomeUnknown(err)
		case len(found.candidates) > 0:
			s.log.Warn("the API answered 429, but a run that may be this one shows in the run list; not sending the POST again")
			return nil, outcomeUnknown(err)
		case !again:
			s.log.Info("the API answered 429 and no run of the prompt shows in the run list; not sending the POST again", "resends", resends)
			return nil, err
		}
		if time.Since(s.submitted) > t.resendSpan() {
			// The look took too long: a POST sent now could create its run
			// outside the window that a handle promises (foreignWindow).
			s.log.Info("the API answered 429 and no run of the prompt shows in the run list; too late to send the POST again", "resends", resends)
			return nil, err
		}
		s.log.Info("the API answered 429 and no run was started; sending the POST again", "retry_after", wait)
	}
}

// noteSent records that a POST of s is being sent now: its run, if it
// creates one, must show in the run list within the start bound from now.
func (t *runTracker) noteSent(s *submission) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.lastSent = time.Now()
}

// outcomeUnknown marks err as leaving it unknown whether a run was created.
func outcomeUnknown(err error) error { return errors.Join(bpapi.ErrOutcomeUnknown, err) }

// finish records the POST's answer, logs it, and returns the new state.
func (t *runTracker) finish(s *submission, run *bpapi.Run, err error) subState {
	t.mu.Lock()
	previous := s.runID
	switch id, timedOut := bpapi.TimedOutRunID(err); {
	case err == nil:
		s.state, s.run, s.runID = stateStarted, run, run.RunID
	case timedOut:
		s.state, s.runID = stateStarted, id
	case errors.Is(err, bpapi.ErrOutcomeUnknown):
		s.err = err
		if s.state != stateStarted { // the run list may have settled it already
			s.state = stateUnknown
		}
	default:
		s.state, s.err, s.runID = stateRefused, err, "" // nothing was started
	}
	if previous != "" && s.runID != previous {
		// The run list suggested another run; the API's answer is the truth.
		t.unclaimLocked(previous, s)
	}
	if s.runID != "" {
		t.claimed[s.runID] = s.handle
	}
	s.finished = time.Now()
	state, runID, abandoned := s.state, s.runID, s.abandoned
	s.notifyLocked()
	t.mu.Unlock()
	close(s.done)

	switch {
	case previous != "" && runID != previous:
		s.log.Warn("the API's answer contradicts the run the run list suggested; following the API", "run_id", runID, "suggested_run_id", previous)
	case state == stateRefused:
		s.log.Warn("starting a run failed; nothing was started", "err", err)
	case state == stateUnknown:
		s.log.Warn("starting a run failed after the request may have reached the API; looking for the run in the run list", "err", err)
	case abandoned:
		s.log.Info("run started after its tool call ended; it continues upstream", "run_id", runID)
	default:
		// Every paid run is on record, whatever happens to the call or the
		// process afterwards.
		s.log.Info("run started", "run_id", runID)
	}
	return state
}

// unclaimLocked releases a run id unless another submission holds it.
func (t *runTracker) unclaimLocked(runID string, except *submission) {
	for _, o := range t.byHandle {
		if o != except && o.runID == runID {
			t.claimed[runID] = o.handle
			return
		}
	}
	delete(t.claimed, runID)
}

// abandon records that no call waits for s any more and logs what is known,
// so that an id handed to no one is still on record.
func (t *runTracker) abandon(s *submission, reason error) {
	t.mu.Lock()
	s.abandoned = true
	runID, state := s.runID, s.state
	t.mu.Unlock()
	switch {
	case runID != "":
		s.log.Info("tool call ended before the run did; the run goes on upstream", "run_id", runID, "reason", reason)
	case state == statePending:
		s.log.Info("tool call ended while the API still held the request that starts the run; its id will be logged when it answers", "reason", reason)
	case state == stateUnknown:
		s.log.Info("tool call ended while it was still unknown whether the run started; the run list is still being watched", "reason", reason)
	}
}

// lookup returns the submission behind a local handle, for the same key.
func (t *runTracker) lookup(handle, tenant string) *submission {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byHandle[handle]
	if s == nil || s.tenant != tenant {
		return nil
	}
	return s
}

// snapshot is what a waiter reads of a submission at one moment.
type snapshot struct {
	state subState
	runID string
	run   *bpapi.Run // the POST's 200 answer, handed to one caller only
	err   error
	look  *look
	// certainAt is when the absence of a run becomes definitive.
	certainAt time.Time
	watched   bool            // background recovery watches the run list
	changed   <-chan struct{} // closed at the next change
}

// read reads what is known of a submission. The POST's 200 answer is handed
// to one caller only; later ones read the run upstream by its id.
func (t *runTracker) read(s *submission) snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, certainAt := t.windowLocked(s)
	snap := snapshot{state: s.state, runID: s.runID, run: s.run, err: s.err, look: s.look, certainAt: certainAt, watched: s.watched, changed: s.changed}
	s.run = nil
	return snap
}

// sweepLocked forgets old submissions so memory stays bounded: those done
// for a day, and past the count limit the oldest done ones, but never one
// finished within minKeep, whose handle an agent may be about to use.
func (t *runTracker) sweepLocked(now time.Time) {
	if len(t.byHandle) < maxSubmissions && now.Sub(t.lastSweep) < time.Minute {
		return
	}
	t.lastSweep = now
	var evictable []*submission
	for _, s := range t.byHandle {
		switch {
		case s.finished.IsZero() || now.Sub(s.finished) < minKeep:
		case now.Sub(s.finished) > keepSubmissions:
			t.forgetLocked(s)
		default:
			evictable = append(evictable, s)
		}
	}
	if excess := len(t.byHandle) - maxSubmissions + 1; excess > 0 {
		slices.SortFunc(evictable, func(a, b *submission) int { return a.finished.Compare(b.finished) })
		for _, s := range evictable[:min(excess, len(evictable))] {
			t.forgetLocked(s)
		}
	}
}

func (t *runTracker) forgetLocked(s *submission) {
	delete(t.byHandle, s.handle)
	if t.byCall[s.callKey] == s {
		delete(t.byCall, s.callKey)
	}
	if s.runID != "" && t.claimed[s.runID] == s.handle {
		t.unclaimLocked(s.runID, s)
	}
}

// beginShutdown refuses new runs at once and, after answerWithin, makes
// every wait answer with what it knows (a handle or a run id), so that each
// call is answered before the transport closes.
func (t *runTracker) beginShutdown(answerWithin time.Duration) {
	t.mu.Lock()
	t.initLocked()
	already := t.closing
	t.closing = true
	t.mu.Unlock()
	switch {
	case already:
	case answerWithin <= 0:
		t.stopWaits()
	default:
		time.AfterFunc(answerWithin, t.stopWaits)
	}
}

// stopWaits makes every wait answer now.
func (t *runTracker) stopWaits() {
	t.mu.Lock()
	t.initLocked()
	stop := t.stop
	t.mu.Unlock()
	t.stopOnce.Do(func() { close(stop) })
}

// wait stops new runs, makes every wait answer now, and blocks until every
// background POST has answered (so each run id is known and logged) or ctx
// ends; background look-ups in the run list stop, logging what they know.
// The server calls it on shutdown.
func (t *runTracker) wait(ctx context.Context) error {
	t.mu.Lock()
	t.initLocked()
	t.closing = true
	t.mu.Unlock()
	t.stopWaits()
	done := make(chan struct{})
	go func() { t.posts.Wait(); t.lookups.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
