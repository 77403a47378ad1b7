package runs

import (
	"context"
	"errors"
	"time"
)

// waiter waits for one job within a deadline, sending progress.
type waiter struct {
	e        *Engine
	up       Upstream
	tenant   string
	deadline time.Time
	progress Progress
}

// LateWork bounds what a call still does after its deadline (looking the
// job up once), so that it answers before the host gives up: hold what
// bounds a wait (a lease, a slot) that much longer.
const LateWork = 5 * time.Second

// staleLook is how old a final look at the job list may be before a call
// reads the list again, so that the candidates' statuses are current.
const staleLook = 10 * time.Second

// bounded returns ctx limited to the call's deadline plus LateWork: no
// upstream call made while waiting may keep the caller past it.
func (w *waiter) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, w.deadline.Add(LateWork))
}

func (w *waiter) send(ctx context.Context, n Note) {
	if w.progress != nil {
		w.progress.Send(ctx, w.e.cfg.Narrate(n))
	}
}

// Follow waits until deadline for the job behind id: a handle of a job this
// engine submitted for tenant, a job id of tenant's upstream, or a handle
// this process does not know (Outcome.Foreign: the jobs of its kind created
// when it was minted are listed as candidates).
func (e *Engine) Follow(ctx context.Context, up Upstream, tenant, id string, deadline time.Time, progress Progress) (Outcome, error) {
	w := &waiter{e: e, up: up, tenant: tenant, deadline: deadline, progress: progress}
	if s := e.lookup(ctx, id, tenant); s != nil {
		return w.awaitSubmission(ctx, s)
	}
	out, err := w.awaitRun(ctx, id, "", nil)
	var re *ReadError
	if errors.As(err, &re) && re.Kind == NotFound {
		// Bounded like every other upstream read after the deadline, so
		// that the call ends within its wait slot's lease.
		fctx, cancel := w.bounded(ctx)
		defer cancel()
		return e.foreignHandle(fctx, up, id, re.Err)
	}
	return out, err
}

// awaitSubmission waits for a job submitted by this engine. It reads the
// record again at every change the records announce (Notifier), and every
// PollMin in any case: a store shared by processes can only be polled.
func (w *waiter) awaitSubmission(ctx context.Context, s *submission) (Outcome, error) {
	e := w.e
	timer := time.NewTimer(time.Until(w.deadline))
	defer timer.Stop()
	tick := time.NewTicker(e.cfg.ProgressEvery)
	defer tick.Stop()
	reread := time.NewTicker(e.cfg.PollMin)
	defer reread.Stop()
	stop := e.Stopping()
	snap := snapshot{state: StatePending}
	for first := true; ; first = false {
		snap = e.readOr(ctx, s, snap, false)
		if out, done, err := w.decided(ctx, s, snap); done {
			return out, err
		}
		if first {
			// At once, so that the host sees the call is alive, and with the
			// id to follow: a call cut off by its host keeps it.
			w.send(ctx, startingNote(s, snap.state))
		}
		select {
		case <-snap.changed:
		case <-reread.C:
		case <-tick.C:
			w.send(ctx, startingNote(s, snap.state))
		case <-timer.C:
			return w.atDeadline(ctx, s, snap, false)
		case <-stop:
			return w.atDeadline(ctx, s, snap, true)
		case <-ctx.Done():
			return Outcome{}, w.ended(ctx, "", s)
		}
	}
}

// decided answers when snap leaves nothing to wait for.
func (w *waiter) decided(ctx context.Context, s *submission, snap snapshot) (out Outcome, done bool, err error) {
	switch snap.state {
	case StateStarted:
		if snap.job != nil && snap.job.Status.Final() {
			return Outcome{Job: snap.job}, true, nil
		}
		out, err = w.awaitRun(ctx, snap.jobID, s.kind, s)
		return out, true, err
	case StateRefused:
		return Outcome{}, true, &RefusedError{Err: snap.err}
	case StateNotStarted:
		return w.noRun(s, snap, false), true, nil
	case StateUnknown:
		if snap.look != nil && snap.look.Final {
			return w.finalLook(ctx, s, snap), true, nil
		}
		if !snap.watched {
			// Recovery gave up (the list stayed unreadable), or its
			// process is gone: look now.
			return w.lookNow(ctx, s, snap), true, nil
		}
	case StatePending:
		if snap.orphaned && !w.e.sendingHere(s.handle) {
			return w.orphaned(ctx, s, snap)
		}
	}
	return Outcome{}, false, nil
}

// orphaned answers for a record still pending past the time its start
// request can have been in flight, whose sender is not this process: the
// sender went away, so the outcome is unknown and the job list decides.
func (w *waiter) orphaned(ctx context.Context, s *submission, snap snapshot) (Outcome, bool, error) {
	sctx, cancel := lateContext(ctx)
	rec, err := w.e.rec.Orphan(sctx, s.handle, w.e.cfg.CreateTimeout)
	cancel()
	if err != nil || rec.State == StatePending {
		return Outcome{}, false, nil // the wait goes on; the next reading tries again
	}
	s.log.Warn("the process that sent the start request went away before it answered; looking for the run in the run list")
	return w.decided(ctx, s, w.e.snapshotOf(rec))
}

func startingNote(s *submission, state State) Note {
	if state == StateUnknown {
		return Note{Phase: PhaseRecovering, ID: s.handle}
	}
	return Note{Phase: PhaseStarting, ID: s.handle}
}

// atDeadline answers when the wait ends, or when the engine shuts down,
// before the job is known to be final; last is the latest reading.
func (w *waiter) atDeadline(ctx context.Context, s *submission, last snapshot, stopping bool) (Outcome, error) {
	e := w.e
	snap := e.readOr(ctx, s, last, true)
	if snap.state == StatePending && e.cfg.Exclusive && !stopping {
		// The upstream still holds the start request. If the job shows in
		// the job list for certain, hand out its id (it survives a restart
		// of this process); otherwise the local handle, which Follow
		// resolves.
		if job, ok := w.confirmNow(ctx, s); ok {
			return Outcome{Job: job}, nil
		}
		if ctx.Err() != nil {
			return Outcome{}, w.ended(ctx, "", s)
		}
		// The start request may have answered during the look: its answer
		// decides below.
		snap = e.readOr(ctx, s, snap, true)
	}
	switch snap.state {
	case StateStarted:
		if snap.job != nil {
			return Outcome{Job: snap.job, Stopping: stopping}, nil
		}
		// The id arrived at the deadline: one look at the job.
		lctx, cancel := context.WithTimeout(ctx, LateWork)
		job, err := w.get(lctx, snap.jobID, s.kind)
		cancel()
		if ctx.Err() != nil {
			return Outcome{}, w.ended(ctx, "", s)
		}
		if err != nil { // known but unreadable just now: the id is what matters
			job = &Job{ID: snap.jobID, Kind: s.kind, Status: Running}
		}
		return Outcome{Job: job, Stopping: stopping}, nil
	case StateRefused:
		return Outcome{}, &RefusedError{Err: snap.err}
	}
	return w.noRun(s, snap, stopping), nil
}

// confirmNow reads the job list once for a pending submission and confirms
// its job when it can be told apart for certain.
func (w *waiter) confirmNow(ctx context.Context, s *submission) (*Job, bool) {
	lctx, cancel := context.WithTimeout(ctx, LateWork)
	lk, err := w.e.lookUp(lctx, w.up, s)
	cancel()
	if err != nil {
		return nil, false
	}
	job, ok := w.e.confirmPending(ctx, s, lk)
	if ok && job.Kind == "" {
		job.Kind = s.kind
	}
	return job, ok
}

// noRun is the outcome of a submission without a job known for certain.
func (w *waiter) noRun(s *submission, snap snapshot, stopping bool) Outcome {
	return Outcome{Handle: s.handle, Kind: s.kind, State: snap.state, Look: snap.look, Submitted: s.submitted,
		CertainAt: snap.certainAt, Cause: snap.err, Stopping: stopping}
}

// finalLook answers for a submission whose candidates are final, reading
// the job list again when the last reading is old, so that the candidates'
// statuses are current.
func (w *waiter) finalLook(ctx context.Context, s *submission, snap snapshot) Outcome {
	if time.Since(snap.look.At) > staleLook {
		snap, _ = w.lookAgain(ctx, s, snap)
	}
	return w.noRun(s, snap, false)
}

// lookAgain reads the job list for s within the call's bound and settles
// what it shows; it returns the record as it then is (snap when nothing
// changed) and why the list could not be read.
func (w *waiter) lookAgain(ctx context.Context, s *submission, snap snapshot) (snapshot, error) {
	e := w.e
	lctx, cancel := w.bounded(ctx)
	lk, err := e.lookUp(lctx, w.up, s)
	cancel()
	if err == nil {
		if _, rec, ok := e.settle(ctx, s, lk); ok {
			snap = e.snapshotOf(rec)
		}
	}
	return snap, err
}

// lookNow reads the job list for a submission whose outcome is unknown and
// that no background recovery watches any more, and answers with what it
// shows, or with why it could not be read.
func (w *waiter) lookNow(ctx context.Context, s *submission, snap snapshot) Outcome {
	snap, err := w.lookAgain(ctx, s, snap)
	out := w.noRun(s, snap, false)
	out.LookErr = err
	return out
}

// cancelledAfterStart is the failure of a call cancelled after its start
// request was sent: the caller must not start the job again.
func (w *waiter) cancelledAfterStart(ctx context.Context, s *submission) error {
	sctx, cancel := lateContext(ctx)
	rec, _, err := w.e.rec.Get(sctx, s.handle, s.tenant)
	cancel()
	if err != nil {
		// Nothing known for certain: the job may go on, and the handle
		// follows it.
		s.log.Warn("reading the submission's record failed", "err", err)
	}
	jobID := rec.JobID
	if jobID == "" {
		jobID = s.handle
	}
	ce := &CancelledError{ID: jobID, State: rec.State}
	if rec.State == StateRefused {
		ce.Err = rec.Err
	}
	return ce
}

// get reads a job once, filling in its kind when the upstream leaves it
// empty.
func (w *waiter) get(ctx context.Context, id, kind string) (*Job, error) {
	job, err := w.up.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if job.Kind == "" {
		job.Kind = kind
	}
	return job, nil
}
