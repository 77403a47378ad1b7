package runs

import (
	"context"
	"time"
)

// awaitRun polls a job with backoff until it is final or the deadline
// passes. s, when not nil, is the submission the job belongs to: the job
// is known to exist, so a failure to read it never reads as "no such job",
// and the start request's answer, when it comes, is used (it may also
// correct the id).
func (w *waiter) awaitRun(ctx context.Context, jobID, kind string, s *submission) (Outcome, error) {
	p := &poll{jobID: jobID, kind: kind, s: s, interval: w.e.cfg.PollMin}
	if s != nil {
		p.posted = w.e.posted(s.handle)
	}
	stop := w.e.Stopping()
	for {
		if final := p.takePOSTAnswer(ctx, w.e); final != nil {
			return Outcome{Job: final}, nil
		}
		if out, done, err := w.readOnce(ctx, p); done {
			return out, err
		}
		remaining := time.Until(w.deadline)
		if remaining <= 0 || p.stopping {
			return p.lastKnown()
		}
		note := Note{Phase: PhasePolling, ID: p.jobID, Status: p.status()}
		if p.last != nil {
			note.Started, note.Detail = p.last.CreatedAt, p.last.Detail
		}
		w.send(ctx, note)
		switch w.sleep(ctx, min(w.pollInterval(ctx, p.interval), remaining), p.posted, stop) {
		case wokeCancelled:
			return Outcome{}, w.ended(ctx, p.jobID, s)
		case wokeStopping:
			if p.last != nil {
				return Outcome{Job: p.last, Stopping: true}, nil
			}
			p.stopping = true // one last look, then answer
		}
		p.interval = min(p.interval*3/2, w.e.cfg.PollMax)
	}
}

// poll is the state of one awaitRun.
type poll struct {
	jobID, kind string
	s           *submission
	posted      <-chan struct{} // closed when this process's start request answers, until then
	answered    bool            // the start request's answer was used
	interval    time.Duration
	last        *Job  // the latest reading
	lastErr     error // the latest failure to read it
	stopping    bool  // the engine shuts down: one last look
}

// takePOSTAnswer uses the start request's answer once it has come: the
// final job it carries, or the job id the upstream named (not the job
// list's guess). The record is read at every round, not only when this
// process's request answers: another process may be the one sending it.
func (p *poll) takePOSTAnswer(ctx context.Context, e *Engine) *Job {
	if p.s == nil || p.answered {
		return nil
	}
	select {
	case <-p.posted:
		p.posted = nil // a closed channel must not end every sleep
	default:
	}
	snap, err := e.read(ctx, p.s, false)
	if err != nil || !snap.answered {
		return nil
	}
	// The record has the answer: the channel has nothing more to say, and
	// once closed it would end every sleep.
	p.answered, p.posted = true, nil
	if snap.job != nil && snap.job.Status.Final() {
		return snap.job
	}
	if snap.jobID != "" && snap.jobID != p.jobID {
		p.jobID, p.last = snap.jobID, nil
	}
	return nil
}

// readOnce reads the job; done says the wait ends here with out and err.
func (w *waiter) readOnce(ctx context.Context, p *poll) (out Outcome, done bool, err error) {
	pctx, cancel := w.bounded(ctx)
	job, err := w.get(pctx, p.jobID, p.kind)
	cancel()
	if err == nil {
		if p.last == nil && jobAge(job) > 30*time.Second {
			p.interval = w.e.cfg.PollMax // an old job: no use polling fast
		}
		p.last, p.lastErr = job, nil
		return Outcome{Job: job}, job.Status.Final(), nil
	}
	if ctx.Err() != nil {
		return Outcome{}, true, w.ended(ctx, p.jobID, p.s)
	}
	switch f := w.up.Classify(err); {
	case f.Kind == Denied:
		return Outcome{}, true, &ReadError{ID: p.jobID, Kind: Denied, Err: err}
	case p.s == nil && (f.Kind == NotFound || f.Kind == InvalidID || f.Kind == Invalid):
		// An id the caller gave that the upstream does not know, or will
		// not read.
		return Outcome{}, true, &ReadError{ID: p.jobID, Kind: f.Kind, Err: err}
	}
	// Transient, or a job of ours the upstream does not show yet: keep the
	// id and try again until the deadline.
	p.lastErr = err
	w.e.log.Warn("reading a run failed; will try again", "run_id", p.jobID, "err", err)
	return Outcome{}, false, nil
}

// lastKnown answers at the deadline with the latest reading of the job.
func (p *poll) lastKnown() (Outcome, error) {
	if p.last == nil {
		return Outcome{}, &UnreadableError{ID: p.jobID, Err: p.lastErr}
	}
	return Outcome{Job: p.last, Stopping: p.stopping}, nil
}

func (p *poll) status() Status {
	if p.last == nil {
		return ""
	}
	return p.last.Status
}

// pollInterval stretches the interval when many calls wait with one key, so
// that their polls together stay within about 4 requests per second and
// leave room for other calls.
func (w *waiter) pollInterval(ctx context.Context, base time.Duration) time.Duration {
	held := 1
	if w.e.cfg.Held != nil {
		if n, err := w.e.cfg.Held(ctx, w.tenant); err == nil {
			held = n
		}
	}
	return max(base, time.Duration(held)*time.Second/4)
}

// ended is the failure of a call that ends while polling: the job goes on.
func (w *waiter) ended(ctx context.Context, jobID string, s *submission) error {
	if s != nil {
		w.e.abandon(ctx, s, context.Cause(ctx))
		return w.cancelledAfterStart(ctx, s)
	}
	w.e.log.Info("tool call ended while waiting; the run goes on upstream", "run_id", jobID, "reason", context.Cause(ctx))
	return ctx.Err()
}

// jobAge is how long ago a job was created, or 0 when unknown.
func jobAge(job *Job) time.Duration {
	if job.CreatedAt.IsZero() {
		return 0
	}
	return time.Since(job.CreatedAt)
}

// woke says why a sleep ended.
type woke int

const (
	wokeTimer woke = iota
	wokeCancelled
	wokeStopping
)

// sleep waits for d, sending progress at least every ProgressEvery; it ends
// early when wake is closed, the call ends, or the engine shuts down.
func (w *waiter) sleep(ctx context.Context, d time.Duration, wake, stop <-chan struct{}) woke {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(w.e.cfg.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return wokeTimer
		case <-tick.C:
			if w.progress != nil {
				w.progress.Send(ctx, w.progress.LastMessage())
			}
		case <-wake:
			return wokeTimer
		case <-stop:
			return wokeStopping
		case <-ctx.Done():
			return wokeCancelled
		}
	}
}
