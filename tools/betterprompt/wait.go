package betterprompt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/tools"
)

// waitOutcome is what a wait learned about a run.
type waitOutcome struct {
	run     *bpapi.Run // latest state; nil when no run is known for certain
	handle  string     // the id to give the agent when run is nil
	version string

	// When run is nil: what is known instead.
	state subState // statePending, stateUnknown or stateNotStarted
	look  *look    // the latest look at the run list (stateUnknown); nil before the first
	// certainAt is when the absence of a run becomes definitive.
	certainAt time.Time
	cause     error // why the outcome is unknown: the POST's failure
	lookErr   error // why the run list could not be read, when a look was due
	stopping  bool  // the server is shutting down
	foreign   bool  // a handle this process does not know (a restart, another replica)
}

// waiter waits for one run within a deadline, sending progress.
type waiter struct {
	d        *Toolset
	c        *bpapi.Client
	tenant   string
	deadline time.Time
	progress *tools.Progress
}

// lateWork bounds what a call still does after its deadline (looking the run
// up once), so that it answers before the host gives up.
const lateWork = 5 * time.Second

// staleLook is how old a final look at the run list may be before a call
// reads the list again, so that the candidates' statuses are current.
const staleLook = 10 * time.Second

// bounded returns ctx limited to the call's deadline plus lateWork: no
// upstream call made while waiting may keep the agent past it.
func (w *waiter) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, w.deadline.Add(lateWork))
}

// awaitSubmission waits for a run started by this process.
func (w *waiter) awaitSubmission(ctx context.Context, s *submission) (waitOutcome, error) {
	t := &w.d.runs
	timer := time.NewTimer(time.Until(w.deadline))
	defer timer.Stop()
	tick := time.NewTicker(w.d.Wait.ProgressEvery)
	defer tick.Stop()
	stop := t.stopping()
	for first := true; ; first = false {
		snap := t.read(s)
		switch snap.state {
		case stateStarted:
			if snap.run != nil && snap.run.Status.Final() {
				return waitOutcome{run: snap.run}, nil
			}
			return w.awaitRun(ctx, snap.runID, s.versionID, s)
		case stateRefused:
			return waitOutcome{}, refusedError(snap.err)
		case stateNotStarted:
			return w.noRun(s, snap, false), nil
		case stateUnknown:
			if snap.look != nil && snap.look.final {
				return w.finalLook(ctx, s, snap), nil
			}
			if !snap.watched {
				// Recovery gave up (the list stayed unreadable): look now.
				return w.lookNow(ctx, s), nil
			}
		}
		if first {
			// At once, so that the host sees the call is alive, and with the
			// id to follow: a call cut off by its host keeps it.
			w.progress.Send(ctx, startingMessage(s, snap.state))
		}
		select {
		case <-snap.changed:
		case <-tick.C:
			w.progress.Send(ctx, startingMessage(s, snap.state))
		case <-timer.C:
			return w.atDeadline(ctx, s, false)
		case <-stop:
			return w.atDeadline(ctx, s, true)
		case <-ctx.Done():
			t.abandon(s, context.Cause(ctx))
			return waitOutcome{}, w.cancelledAfterStart(s)
		}
	}
}

func startingMessage(s *submission, state subState) string {
	if state == stateUnknown {
		return fmt.Sprintf("The request that starts the run failed; looking for the run in the account's run list (run_id=%s for get_run)", s.handle)
	}
	return fmt.Sprintf("Starting the run (run_id=%s for get_run if this call is cut off)", s.handle)
}

// atDeadline answers when the wait ends, or when the server shuts down,
// before the run is known to be final.
func (w *waiter) atDeadline(ctx context.Context, s *submission, stopping bool) (waitOutcome, error) {
	t := &w.d.runs
	snap := t.read(s)
	switch snap.state {
	case stateStarted:
		if snap.run != nil {
			return waitOutcome{run: snap.run, stopping: stopping}, nil
		}
		// The id arrived at the deadline: one look at the run.
		lctx, cancel := context.WithTimeout(ctx, lateWork)
		out, err := w.snapshot(lctx, snap.runID, s.versionID)
		cancel()
		if ctx.Err() != nil {
			t.abandon(s, context.Cause(ctx))
			return waitOutcome{}, w.cancelledAfterStart(s)
		}
		if err != nil { // known but unreadable just now: the id is what matters
			out = waitOutcome{run: &bpapi.Run{RunID: snap.runID, PromptVersionID: s.versionID, Status: bpapi.RunRunning}}
		}
		out.stopping = stopping
		return out, nil
	case stateRefused:
		return waitOutcome{}, refusedError(snap.err)
	case statePending:
		// The API still holds the POST. If the run shows in the run list
		// for certain, hand out its id (it survives a restart of this
		// process); otherwise the local handle, which get_run resolves.
		if t.exclusive && !stopping {
			lctx, cancel := context.WithTimeout(ctx, lateWork)
			lk, err := t.lookUp(lctx, w.d, w.c, s)
			cancel()
			if err == nil {
				if run, ok := t.confirmPending(w.d, s, lk); ok {
					if run.PromptVersionID == "" {
						run.PromptVersionID = s.versionID
					}
					return waitOutcome{run: run}, nil
				}
			}
			if ctx.Err() != nil {
				t.abandon(s, context.Cause(ctx))
				return waitOutcome{}, w.cancelledAfterStart(s)
			}
		}
	}
	return w.noRun(s, t.read(s), stopping), nil
}

// noRun is the outcome of a submission without a run known for certain.
func (w *waiter) noRun(s *submission, snap snapshot, stopping bool) waitOutcome {
	return waitOutcome{handle: s.handle, version: s.versionID, state: snap.state, look: snap.look, certainAt: snap.certainAt, cause: snap.err, stopping: stopping}
}

// finalLook answers for a submission whose candidates are final, reading
// the run list again when the last reading is old, so that the candidates'
// statuses are current.
func (w *waiter) finalLook(ctx context.Context, s *submission, snap snapshot) waitOutcome {
	t := &w.d.runs
	if time.Since(snap.look.at) > staleLook {
		lctx, cancel := w.bounded(ctx)
		lk, err := t.lookUp(lctx, w.d, w.c, s)
		cancel()
		if err == nil {
			t.settle(w.d, s, lk)
			snap = t.read(s)
		}
	}
	return w.noRun(s, snap, false)
}

// lookNow reads the run list for a submission whose outcome is unknown and
// that no background recovery watches any more, and answers with what it
// shows, or with why it could not be read.
func (w *waiter) lookNow(ctx context.Context, s *submission) waitOutcome {
	t := &w.d.runs
	lctx, cancel := w.bounded(ctx)
	lk, err := t.lookUp(lctx, w.d, w.c, s)
	cancel()
	if err == nil {
		t.settle(w.d, s, lk)
	}
	out := w.noRun(s, t.read(s), false)
	out.lookErr = err
	return out
}

// refusedError is the error of a POST the API refused, or that never
// reached it: nothing was started.
func refusedError(err error) error {
	if bpapi.IsRateLimited(err) {
		return tools.Failf(err, "BetterPrompt's rate limit refused to start the run (429); nothing was started "+
			"and no credits were spent. Wait a few seconds, then call run_prompt again.")
	}
	return tools.Failf(err, "%s Nothing was run and no credits were spent.", describeError(err))
}

// cancelledAfterStart is the error of a call cancelled after its POST was
// sent: the agent must not start the run again.
func (w *waiter) cancelledAfterStart(s *submission) error {
	state, runID, err := w.d.runs.peek(s)
	switch state {
	case stateRefused:
		return tools.Failf(errors.Join(context.Canceled, err), "The call was cancelled; BetterPrompt had refused to start the run, so nothing was spent.")
	case stateNotStarted:
		return tools.Failf(context.Canceled, "The call was cancelled; no run was started and nothing was spent.")
	}
	id := runID
	if id == "" {
		id = s.handle
	}
	return tools.Failf(context.Canceled, "The call was cancelled, but the run had already been submitted; it goes on upstream "+
		"(runs cannot be cancelled) and is charged. Do not call run_prompt again for it: call get_run with run_id=%s.", id)
}

// peek reads a submission's state without taking the POST's answer.
func (t *runTracker) peek(s *submission) (subState, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.state, s.runID, s.err
}

// snapshot reads a run once, without waiting.
func (w *waiter) snapshot(ctx context.Context, runID, version string) (waitOutcome, error) {
	run, err := w.c.GetRun(ctx, runID)
	if err != nil {
		return waitOutcome{}, err
	}
	if run.PromptVersionID == "" {
		run.PromptVersionID = version
	}
	return waitOutcome{run: run}, nil
}

// awaitRun polls a run with backoff until it is final or the deadline
// passes. s, when not nil, is the submission the run belongs to: the run is
// known to exist, so a failure to read it never reads as "no such run", and
// the POST's answer, when it comes, is used (it may also correct the id).
func (w *waiter) awaitRun(ctx context.Context, runID, version string, s *submission) (waitOutcome, error) {
	p := &poll{runID: runID, version: version, s: s, interval: w.d.Wait.PollMin}
	if s != nil {
		p.posted = s.done
	}
	stop := w.d.runs.stopping()
	for {
		if final := p.takePOSTAnswer(&w.d.runs); final != nil {
			return waitOutcome{run: final}, nil
		}
		if out, done, err := w.readOnce(ctx, p); done {
			return out, err
		}
		remaining := time.Until(w.deadline)
		if remaining <= 0 || p.stopping {
			return p.lastKnown()
		}
		w.progress.Send(ctx, fmt.Sprintf("Run %s is %s", p.runID, p.status()))
		switch w.sleep(ctx, min(w.pollInterval(ctx, p.interval), remaining), p.posted, stop) {
		case wokeCancelled:
			return waitOutcome{}, w.ended(ctx, p.runID, s)
		case wokeStopping:
			if p.last != nil {
				return waitOutcome{run: p.last, stopping: true}, nil
			}
			p.stopping = true // one last look, then answer
		}
		p.interval = min(p.interval*3/2, w.d.Wait.PollMax)
	}
}

// poll is the state of one awaitRun.
type poll struct {
	runID, version string
	s              *submission
	posted         <-chan struct{} // the POST's answer, while this process still waits for it
	interval       time.Duration
	last           *bpapi.Run // the latest reading
	lastErr        error      // the latest failure to read it
	stopping       bool       // the server shuts down: one last look
}

// takePOSTAnswer uses the POST's answer once it has come: the final run
// it carries, or the run id the API named (not the run list's guess).
func (p *poll) takePOSTAnswer(t *runTracker) *bpapi.Run {
	if p.posted == nil {
		return nil
	}
	select {
	case <-p.posted:
	default:
		return nil
	}
	p.posted = nil
	snap := t.read(p.s)
	if snap.run != nil && snap.run.Status.Final() {
		return snap.run
	}
	if snap.runID != "" && snap.runID != p.runID {
		p.runID, p.last = snap.runID, nil
	}
	return nil
}

// readOnce reads the run; done says the wait ends here with out and err.
func (w *waiter) readOnce(ctx context.Context, p *poll) (out waitOutcome, done bool, err error) {
	pctx, cancel := w.bounded(ctx)
	run, err := w.c.GetRun(pctx, p.runID)
	cancel()
	switch {
	case err == nil:
		if run.PromptVersionID == "" {
			run.PromptVersionID = p.version
		}
		if p.last == nil && runAge(run) > 30*time.Second {
			p.interval = w.d.Wait.PollMax // an old run: no use polling fast
		}
		p.last, p.lastErr = run, nil
		return waitOutcome{run: run}, run.Status.Final(), nil
	case ctx.Err() != nil:
		return waitOutcome{}, true, w.ended(ctx, p.runID, p.s)
	case bpapi.IsUnauthorized(err), bpapi.IsPaymentRequired(err):
		return waitOutcome{}, true, tools.Failf(err, "%s The run id is %s: call get_run with it once that is fixed.", describeError(err), p.runID)
	case p.s == nil && (bpapi.IsNotFound(err) || errors.Is(err, bpapi.ErrInvalidID)):
		return waitOutcome{}, true, err // an id the agent gave that the API does not know
	case p.s == nil && isClientError(err):
		return waitOutcome{}, true, tools.Failf(err, "Reading run %s failed (%s).", p.runID, briefError(err))
	}
	// Transient, or a run of ours the API does not show yet: keep the id
	// and try again until the deadline.
	p.lastErr = err
	w.d.logger().Warn("reading a run failed; will try again", "run_id", p.runID, "err", err)
	return waitOutcome{}, false, nil
}

// lastKnown answers at the deadline with the latest reading of the run.
func (p *poll) lastKnown() (waitOutcome, error) {
	if p.last == nil {
		return waitOutcome{}, tools.Failf(p.lastErr, "Run %s could not be read just now (%s). It was started and goes on: do not "+
			"call run_prompt again for it; call get_run with run_id=%s in a moment.", p.runID, briefError(p.lastErr), p.runID)
	}
	return waitOutcome{run: p.last, stopping: p.stopping}, nil
}

func (p *poll) status() string {
	if p.last == nil {
		return "being read"
	}
	return string(p.last.Status)
}

// isClientError reports whether err is a 4xx answer other than 429.
func isClientError(err error) bool {
	var ae *bpapi.APIError
	return errors.As(err, &ae) && ae.HTTPStatus >= 400 && ae.HTTPStatus < 500 && ae.HTTPStatus != 429
}

// pollInterval stretches the interval when many calls wait with one key, so
// that their polls together stay within about 4 of the API's 5 requests per
// second and leave room for other calls.
func (w *waiter) pollInterval(ctx context.Context, base time.Duration) time.Duration {
	held, err := w.d.Slots.Held(ctx, w.tenant)
	if err != nil {
		held = 1
	}
	return max(base, time.Duration(held)*time.Second/4)
}

// ended is the error of a call that ends while polling: the run goes on.
func (w *waiter) ended(ctx context.Context, runID string, s *submission) error {
	if s != nil {
		w.d.runs.abandon(s, context.Cause(ctx))
		return w.cancelledAfterStart(s)
	}
	w.d.logger().Info("tool call ended while waiting; the run goes on upstream", "run_id", runID, "reason", context.Cause(ctx))
	return ctx.Err()
}

// runAge is how long ago a run was created, or 0 when unknown.
func runAge(run *bpapi.Run) time.Duration {
	created, err := time.Parse(time.RFC3339Nano, run.CreatedAt)
	if err != nil {
		return 0
	}
	return time.Since(created)
}

// woke says why a sleep ended.
type woke int

const (
	wokeTimer woke = iota
	wokeCancelled
	wokeStopping
)

// sleep waits for d, sending progress at least every ProgressEvery; it ends
// early when wake is closed, the call ends, or the server shuts down.
func (w *waiter) sleep(ctx context.Context, d time.Duration, wake, stop <-chan struct{}) woke {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(w.d.Wait.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return wokeTimer
		case <-tick.C:
			w.progress.Send(ctx, w.progress.LastMessage())
		case <-wake:
			return wokeTimer
		case <-stop:
			return wokeStopping
		case <-ctx.Done():
			return wokeCancelled
		}
	}
}

// briefError describes an upstream failure in a few words, without advice
// (the caller's message gives the advice).
func briefError(err error) string {
	var ae *bpapi.APIError
	if errors.As(err, &ae) {
		s := fmt.Sprintf("HTTP %d", ae.HTTPStatus)
		if ae.Code != "" {
			s += " " + ae.Code
		}
		if ae.Message != "" {
			s += ": " + ae.Message
		}
		return s
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return "no answer from the API"
}
