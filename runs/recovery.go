package runs

import (
	"context"
	"errors"
	"time"
)

// Recovery through the job list. When a start request fails after it may
// have reached the upstream, the jobs of the same kind created around the
// submission are the only witnesses. A job found there is certainly this
// submission's only when nothing else could have started it: the engine
// was told that no other client uses the key (Config.Exclusive), no other
// submission of the same kind that this process cannot account for
// overlaps it, and this process has run long enough that no request of its
// previous instance can have created it. Otherwise the jobs found are
// candidates: the caller is told about them, and they are never presented
// as this call's.

// Look is what one reading of the job list said about a submission.
type Look struct {
	// At is when the reading started.
	At time.Time
	// Candidates are the jobs of the kind in the submission's window,
	// claimed by no other submission, newest first.
	Candidates []Job
	// Final says the list was read after the start bound: no job created
	// later can be the submission's.
	Final bool
}

// clockSlack allows for the upstream's clock being a little behind this one.
const clockSlack = 2 * time.Second

// resendSpan is how long after a submission its request may still be sent
// again after a 429: a fifth of the start bound.
func (e *Engine) resendSpan() time.Duration { return e.cfg.StartBound / 5 }

// foreignWindow is the window of a handle minted at submitted by a process
// that no longer knows it: its requests were in flight until CreateTimeout
// at the latest.
func (e *Engine) foreignWindow(submitted time.Time) (from, to time.Time) {
	return submitted.Add(-clockSlack), submitted.Add(e.cfg.CreateTimeout + e.cfg.StartBound)
}

// listJobs reads the jobs created in [from, to] whose kind matches keep,
// newest first.
func listJobs(ctx context.Context, up Upstream, from, to time.Time, keep func(kind string) bool) ([]Job, error) {
	rows, err := up.List(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var found []Job
	for _, j := range rows {
		if !j.CreatedAt.IsZero() && !j.CreatedAt.Before(from) && !j.CreatedAt.After(to) && keep(j.Kind) {
			found = append(found, j)
		}
	}
	return found, nil
}

// lookUp reads the job list for the jobs that may be s's.
func (e *Engine) lookUp(ctx context.Context, up Upstream, s *submission) (*Look, error) {
	rec, err := e.record(ctx, s)
	if err != nil {
		return nil, err
	}
	from, to := rec.Window(e.cfg.StartBound)
	lk := &Look{At: time.Now()}
	lk.Final = lk.At.After(to)
	rows, err := listJobs(ctx, up, from, to, func(kind string) bool { return kind == s.kind })
	if err != nil {
		return nil, err
	}
	// Settle and ConfirmPending drop again what was claimed meanwhile.
	if lk.Candidates, err = e.rec.Unclaimed(ctx, rows, s.handle); err != nil {
		return nil, err
	}
	return lk, nil
}

// settle records a look for a submission whose outcome is unknown and
// reports whether the submission's fate is now settled: its job confirmed,
// its absence certain, or the list of jobs that may be its own final. The
// record's reading after the step is returned when ok.
func (e *Engine) settle(ctx context.Context, s *submission, lk *Look) (settled bool, rec Record, ok bool) {
	sctx, cancel := lateContext(ctx)
	st, err := e.rec.Settle(sctx, s.handle, *lk, e.rules())
	cancel()
	if err != nil {
		s.log.Warn("recording a look at the run list failed; will look again", "err", err)
		return false, Record{}, false
	}
	if !st.Applied {
		return true, st.Record, true // the upstream answered meanwhile, or another look settled it
	}
	switch st.State {
	case StateStarted:
		s.log.Info("found the run in the run list; no other client could have started it", "run_id", st.JobID)
	case StateNotStarted:
		s.log.Info("no run with this "+e.cfg.KindKey+" showed in the run list within the start bound: nothing was started", "bound", e.cfg.StartBound)
	default:
		seen := make(map[string]bool)
		if st.Previous != nil {
			for _, j := range st.Previous.Candidates {
				seen[j.ID] = true
			}
		}
		for _, j := range st.Look.Candidates {
			if !seen[j.ID] {
				// Every job the engine learns of is on record, with the
				// submission it may belong to.
				s.log.Info("a run that may be this submission's shows in the run list; it cannot be told apart from runs other clients started",
					"run_id", j.ID, "created_at", j.CreatedAt, "status", j.Status)
			}
		}
	}
	return st.State != StateUnknown || st.Look.Final, st.Record, true
}

// maxRecoveryTime bounds how long the job list is watched for a submission
// whose list could not be read.
const maxRecoveryTime = 15 * time.Minute

// recoverInBackground watches the job list for a submission whose outcome
// is unknown (rec, as the start request's failure left it) until its fate
// is settled, whether or not a call still waits for it, so that every job
// the engine may have started is found and logged. It stops at shutdown,
// logging what is known. The record was marked watched when its outcome
// became unknown (Records.Finish), so that no waiter takes it for
// unwatched meanwhile.
func (e *Engine) recoverInBackground(ctx context.Context, up Upstream, s *submission, rec Record) {
	e.lookups.Add(1)
	stop := e.Stopping()
	_, bound := rec.Window(e.cfg.StartBound)
	go func() {
		defer e.lookups.Done()
		defer func() {
			sctx, cancel := lateContext(ctx)
			defer cancel()
			if _, err := e.rec.Watch(sctx, s.handle, false); err != nil {
				s.log.Warn("recording that the run list is no longer watched failed", "err", err)
			}
		}()
		e.watch(ctx, up, s, bound, stop)
	}()
}

// watch looks in the job list for s until its fate is settled, recovery
// gives up, or stop is closed.
func (e *Engine) watch(ctx context.Context, up Upstream, s *submission, bound time.Time, stop <-chan struct{}) {
	interval := e.cfg.PollMin
	give := bound.Add(maxRecoveryTime)
	for {
		lctx, cancel := context.WithTimeout(ctx, LateWork)
		lk, err := e.lookUp(lctx, up, s)
		cancel()
		if err == nil {
			if settled, _, _ := e.settle(ctx, s, lk); settled {
				return
			}
		} else if errors.Is(err, ErrNoJobList) {
			s.log.Warn("the start request failed after it may have reached the upstream, which cannot list its jobs: whether it started is unknown",
				"submitted_at", s.submitted.UTC().Format(time.RFC3339))
			return
		} else {
			s.log.Debug("looking for the run in the run list failed; will look again", "err", err)
		}
		if time.Now().After(give) {
			s.log.Warn("gave up watching the run list; whether the run started is unknown: look in the account's runs with this "+e.cfg.KindKey+" around submitted_at",
				"submitted_at", s.submitted.UTC().Format(time.RFC3339))
			return
		}
		// Look again soon, and once more right after the bound, when the
		// answer becomes definitive.
		next := interval
		if untilBound := time.Until(bound); untilBound > 0 {
			next = min(next, untilBound+100*time.Millisecond)
		}
		select {
		case <-time.After(next):
		case <-stop:
			s.log.Warn("shutting down while it is unknown whether the run started: look in the account's runs with this "+e.cfg.KindKey+" around submitted_at",
				"submitted_at", s.submitted.UTC().Format(time.RFC3339))
			return
		}
		interval = min(interval*2, max(e.cfg.PollMax, interval))
	}
}

// confirmPending confirms through the job list the job of a submission
// whose start request the upstream still holds, when it can be told apart
// for certain, so that the caller gets an id that survives this process.
// It returns the job and whether it did.
func (e *Engine) confirmPending(ctx context.Context, s *submission, lk *Look) (*Job, bool) {
	sctx, cancel := lateContext(ctx)
	_, job, err := e.rec.ConfirmPending(sctx, s.handle, *lk, e.rules())
	cancel()
	if err != nil {
		s.log.Warn("confirming the run through the run list failed", "err", err)
		return nil, false
	}
	if job == nil {
		return nil, false
	}
	s.log.Info("found the run in the run list while the API still held the request; no other client could have started it", "run_id", job.ID)
	return job, true
}
