package runs

import (
	"context"
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

// windowLocked is the interval in which s's job must have been created, if
// it was: from its submission (less the upstream's clock slack) to the
// start bound after the last moment a request of it was in flight (its
// latest sending, or its failure, whichever is later: the upstream may
// create the job at any moment before the request fails).
func (e *Engine) windowLocked(s *submission) (from, to time.Time) {
	last := s.submitted
	if s.lastSent.After(last) {
		last = s.lastSent
	}
	if s.finished.After(last) {
		last = s.finished
	}
	return s.submitted.Add(-clockSlack), last.Add(e.cfg.StartBound)
}

// resendSpan is how long after a submission its request may still be sent
// again after a 429: a fifth of the start bound.
func (e *Engine) resendSpan() time.Duration { return e.cfg.StartBound / 5 }

// foreignWindow is the window of a handle minted at submitted by a process
// that no longer knows it: its requests were in flight until CreateTimeout
// at the latest.
func (e *Engine) foreignWindow(submitted time.Time) (from, to time.Time) {
	return submitted.Add(-clockSlack), submitted.Add(e.cfg.CreateTimeout + e.cfg.StartBound)
}

// inheritedLocked reports whether a job in s's window may have been
// started by this process's previous instance (before a restart): its
// requests may have created jobs until CreateTimeout and the start bound
// after this process started. Such a job is never confirmed as s's.
func (e *Engine) inheritedLocked(s *submission) bool {
	from, _ := e.windowLocked(s)
	return from.Before(e.cfg.Started.Add(e.cfg.CreateTimeout + e.cfg.StartBound))
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
	e.mu.Lock()
	from, to := e.windowLocked(s)
	e.mu.Unlock()
	lk := &Look{At: time.Now()}
	lk.Final = lk.At.After(to)
	rows, err := listJobs(ctx, up, from, to, func(kind string) bool { return kind == s.kind })
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range rows {
		if owner, ok := e.claimed[j.ID]; !ok || owner == s.handle {
			lk.Candidates = append(lk.Candidates, j)
		}
	}
	return lk, nil
}

// confirmableLocked reports whether the only candidate of lk can be s's
// job for certain.
func (e *Engine) confirmableLocked(s *submission, lk *Look) bool {
	return len(lk.Candidates) == 1 && e.cfg.Exclusive && !e.competitorLocked(s) && !e.inheritedLocked(s)
}

// competitorLocked reports whether another submission of the same kind,
// whose window overlaps s's, may have created a job that this process does
// not know: its request has not answered, or its outcome is unknown. Every
// key counts, not only s's: the job list may be an account's, which
// several keys share.
func (e *Engine) competitorLocked(s *submission) bool {
	from, to := e.windowLocked(s)
	for _, o := range e.byHandle {
		if o == s || o.kind != s.kind || (o.state != StatePending && o.state != StateUnknown) {
			continue
		}
		if oFrom, oTo := e.windowLocked(o); oFrom.After(to) || from.After(oTo) {
			continue
		}
		return true
	}
	return false
}

// settle records a look for a submission whose outcome is unknown and
// reports whether the submission's fate is now settled: its job confirmed,
// its absence certain, or the list of jobs that may be its own final.
func (e *Engine) settle(s *submission, lk *Look) bool {
	e.mu.Lock()
	if s.state != StateUnknown {
		e.mu.Unlock()
		return true // the upstream answered meanwhile, or another look settled it
	}
	// Claims may have changed while the list was read.
	lk.Candidates = e.unclaimedLocked(s, lk.Candidates)
	var seen map[string]bool
	if s.look != nil {
		seen = make(map[string]bool, len(s.look.Candidates))
		for _, j := range s.look.Candidates {
			seen[j.ID] = true
		}
	}
	s.look = lk
	settled := true
	switch {
	case e.confirmableLocked(s, lk):
		s.state, s.jobID = StateStarted, lk.Candidates[0].ID
		e.claimed[s.jobID] = s.handle
	case len(lk.Candidates) == 0 && lk.Final:
		s.state = StateNotStarted
	default:
		settled = lk.Final
	}
	state, jobID := s.state, s.jobID
	s.notifyLocked()
	e.mu.Unlock()

	switch state {
	case StateStarted:
		s.log.Info("found the run in the run list; no other client could have started it", "run_id", jobID)
	case StateNotStarted:
		s.log.Info("no run of the "+e.cfg.KindNoun+" showed in the run list within the start bound: nothing was started", "bound", e.cfg.StartBound)
	default:
		for _, j := range lk.Candidates {
			if !seen[j.ID] {
				// Every job the engine learns of is on record, with the
				// submission it may belong to.
				s.log.Info("a run that may be this submission's shows in the run list; it cannot be told apart from runs other clients started",
					"run_id", j.ID, "created_at", j.CreatedAt, "status", j.Status)
			}
		}
	}
	return settled
}

// unclaimed drops the jobs that a submission this process knows owns.
func (e *Engine) unclaimed(rows []Job) []Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unclaimedLocked(nil, rows)
}

// unclaimedLocked drops the jobs owned by a submission other than s.
func (e *Engine) unclaimedLocked(s *submission, rows []Job) []Job {
	kept := rows[:0:0]
	for _, j := range rows {
		if owner, ok := e.claimed[j.ID]; !ok || (s != nil && owner == s.handle) {
			kept = append(kept, j)
		}
	}
	return kept
}

// maxRecoveryTime bounds how long the job list is watched for a submission
// whose list could not be read.
const maxRecoveryTime = 15 * time.Minute

// recoverInBackground watches the job list for a submission whose outcome
// is unknown until its fate is settled, whether or not a call still waits
// for it, so that every job the engine may have started is found and
// logged. It stops at shutdown, logging what is known.
func (e *Engine) recoverInBackground(ctx context.Context, up Upstream, s *submission) {
	e.lookups.Add(1)
	stop := e.Stopping()
	e.mu.Lock()
	s.watched = true
	_, bound := e.windowLocked(s)
	e.mu.Unlock()
	go func() {
		defer e.lookups.Done()
		defer func() {
			e.mu.Lock()
			s.watched = false
			s.notifyLocked()
			e.mu.Unlock()
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
		lctx, cancel := context.WithTimeout(ctx, lateWork)
		lk, err := e.lookUp(lctx, up, s)
		cancel()
		switch {
		case err == nil && e.settle(s, lk):
			return
		case err != nil:
			s.log.Debug("looking for the run in the run list failed; will look again", "err", err)
		}
		if time.Now().After(give) {
			s.log.Warn("gave up watching the run list; whether the run started is unknown: look in the account's runs for this "+e.cfg.KindNoun+" around submitted_at",
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
			s.log.Warn("shutting down while it is unknown whether the run started: look in the account's runs for this "+e.cfg.KindNoun+" around submitted_at",
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
func (e *Engine) confirmPending(s *submission, lk *Look) (*Job, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.state != StatePending {
		return nil, false
	}
	lk.Candidates = e.unclaimedLocked(s, lk.Candidates)
	if !e.confirmableLocked(s, lk) {
		return nil, false
	}
	job := lk.Candidates[0]
	s.state, s.jobID = StateStarted, job.ID
	e.claimed[s.jobID] = s.handle
	s.notifyLocked()
	s.log.Info("found the run in the run list while the API still held the request; no other client could have started it", "run_id", job.ID)
	return &job, true
}
