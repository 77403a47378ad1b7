package betterprompt

import (
	"context"
	"errors"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
)

// Recovery through the run list. When a POST fails after it may have reached
// the API, the runs of the same prompt version created around the
// submission are the only witnesses. A run found there is certainly this
// submission's only when nothing else could have started it: the server was
// told that no other client uses the key (Toolset.ExclusiveKey), no other
// submission of the same version that this process cannot account for
// overlaps it, and this process has run long enough that no POST of its
// previous instance can have created it. Otherwise the runs found are candidates: the agent is
// told about them, and they are never presented as this call's.

// look is what one reading of the run list said about a submission.
type look struct {
	at         time.Time   // when the reading started
	candidates []bpapi.Run // runs of the version in the submission's window, claimed by no other submission
	final      bool        // read after the start bound: no run created later can be the submission's
}

// clockSlack allows for the API's clock being a little behind this one.
const clockSlack = 2 * time.Second

// maxCandidatePages bounds the pages of the run list read for one look.
const maxCandidatePages = 5

// windowLocked is the interval in which s's run must have been created, if
// it was: from its submission (less the API's clock slack) to the start
// bound after the last moment a POST of it was in flight (its latest
// sending, or its failure, whichever is later: the API may create the run
// at any moment before the POST fails).
func (t *runTracker) windowLocked(s *submission) (from, to time.Time) {
	last := s.submitted
	if s.lastSent.After(last) {
		last = s.lastSent
	}
	if s.finished.After(last) {
		last = s.finished
	}
	return s.submitted.Add(-clockSlack), last.Add(t.startBound)
}

// resendSpan is how long after a submission its POST may still be sent
// again after a 429: a fifth of the start bound.
func (t *runTracker) resendSpan() time.Duration { return t.startBound / 5 }

// foreignWindow is the window of a handle minted at submitted by a process
// that no longer knows it: its POSTs were in flight until CreateTimeout at
// the latest.
func (t *runTracker) foreignWindow(submitted time.Time) (from, to time.Time) {
	return submitted.Add(-clockSlack), submitted.Add(t.createTimeout + t.startBound)
}

// inheritedLocked reports whether a run in s's window may have been
// started by this server's previous instance (before a restart): its POSTs
// may have created runs until CreateTimeout and the start bound after this
// process started. Such a run is never confirmed as s's.
func (t *runTracker) inheritedLocked(s *submission) bool {
	from, _ := t.windowLocked(s)
	return from.Before(t.started.Add(t.createTimeout + t.startBound))
}

// listRuns reads the runs of the account created in [from, to] whose
// version matches keep, newest first, over a few pages of the run list.
func listRuns(ctx context.Context, c *bpapi.Client, from, to time.Time, keep func(bpapi.Run) bool) ([]bpapi.Run, error) {
	params := bpapi.ListRunsParams{Limit: 50, Since: from.Unix()}
	if time.Now().After(to) {
		params.Until = to.Unix() + 1
	}
	var found []bpapi.Run
	for page := 0; ; page++ {
		list, err := c.ListRuns(ctx, params)
		if err != nil {
			return nil, err
		}
		for _, r := range list.Rows {
			created, err := time.Parse(time.RFC3339Nano, r.CreatedAt)
			if err == nil && !created.Before(from) && !created.After(to) && keep(r) {
				found = append(found, r)
			}
		}
		if !list.HasMore || len(list.Rows) == 0 {
			return found, nil
		}
		if page == maxCandidatePages-1 {
			return nil, errors.New("more than 250 runs were started since; the run list is too long to search")
		}
		params.StartingAfter = list.Rows[len(list.Rows)-1].RunID
	}
}

// lookUp reads the run list for the runs that may be s's.
func (t *runTracker) lookUp(ctx context.Context, d *Toolset, c *bpapi.Client, s *submission) (*look, error) {
	t.mu.Lock()
	from, to := t.windowLocked(s)
	t.mu.Unlock()
	lk := &look{at: time.Now()}
	lk.final = lk.at.After(to)
	rows, err := listRuns(ctx, c, from, to, func(r bpapi.Run) bool { return r.PromptVersionID == s.versionID })
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range rows {
		if owner, ok := t.claimed[r.RunID]; !ok || owner == s.handle {
			lk.candidates = append(lk.candidates, r)
		}
	}
	return lk, nil
}

// confirmableLocked reports whether the only candidate of lk can be s's
// run for certain.
func (t *runTracker) confirmableLocked(s *submission, lk *look) bool {
	return len(lk.candidates) == 1 && t.exclusive && !t.competitorLocked(s) && !t.inheritedLocked(s)
}

// competitorLocked reports whether another submission of the same version,
// whose window overlaps s's, may have created a run that this process does
// not know: its POST has not answered, or its outcome is unknown. Every
// key counts, not only s's: the run list is the account's, and two keys
// of one account see the same runs.
func (t *runTracker) competitorLocked(s *submission) bool {
	from, to := t.windowLocked(s)
	for _, o := range t.byHandle {
		if o == s || o.versionID != s.versionID || (o.state != statePending && o.state != stateUnknown) {
			continue
		}
		if oFrom, oTo := t.windowLocked(o); oFrom.After(to) || from.After(oTo) {
			continue
		}
		return true
	}
	return false
}

// settle records a look for a submission whose outcome is unknown and
// reports whether the submission's fate is now settled: its run confirmed,
// its absence certain, or the list of runs that may be its own final.
func (t *runTracker) settle(d *Toolset, s *submission, lk *look) bool {
	t.mu.Lock()
	if s.state != stateUnknown {
		t.mu.Unlock()
		return true // the API answered meanwhile, or another look settled it
	}
	// Claims may have changed while the list was read.
	lk.candidates = t.unclaimedLocked(s, lk.candidates)
	var seen map[string]bool
	if s.look != nil {
		seen = make(map[string]bool, len(s.look.candidates))
		for _, r := range s.look.candidates {
			seen[r.RunID] = true
		}
	}
	s.look = lk
	settled := true
	switch {
	case t.confirmableLocked(s, lk):
		s.state, s.runID = stateStarted, lk.candidates[0].RunID
		t.claimed[s.runID] = s.handle
	case len(lk.candidates) == 0 && lk.final:
		s.state = stateNotStarted
	default:
		settled = lk.final
	}
	state, runID := s.state, s.runID
	s.notifyLocked()
	t.mu.Unlock()

	switch state {
	case stateStarted:
		s.log.Info("found the run in the run list; no other client could have started it", "run_id", runID)
	case stateNotStarted:
		s.log.Info("no run of the prompt showed in the run list within the start bound: nothing was started", "bound", d.Wait.StartBound)
	default:
		for _, r := range lk.candidates {
			if !seen[r.RunID] {
				// Every run the server learns of is on record, with the
				// submission it may belong to.
				s.log.Info("a run that may be this submission's shows in the run list; it cannot be told apart from runs other clients started",
					"run_id", r.RunID, "created_at", r.CreatedAt, "status", r.Status)
			}
		}
	}
	return settled
}

// unclaimed drops the runs that a submission this process knows owns.
func (t *runTracker) unclaimed(rows []bpapi.Run) []bpapi.Run {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unclaimedLocked(nil, rows)
}

// unclaimedLocked drops the runs owned by a submission other than s.
func (t *runTracker) unclaimedLocked(s *submission, rows []bpapi.Run) []bpapi.Run {
	kept := rows[:0:0]
	for _, r := range rows {
		if owner, ok := t.claimed[r.RunID]; !ok || (s != nil && owner == s.handle) {
			kept = append(kept, r)
		}
	}
	return kept
}

// maxRecoveryTime bounds how long the run list is watched for a submission
// whose list could not be read.
const maxRecoveryTime = 15 * time.Minute

// recoverInBackground watches the run list for a submission whose outcome is
// unknown until its fate is settled, whether or not a call still waits for
// it, so that every run the server may have started is found and logged.
// It stops at shutdown, logging what is known.
func (t *runTracker) recoverInBackground(ctx context.Context, d *Toolset, c *bpapi.Client, s *submission) {
	t.lookups.Add(1)
	stop := t.stopping()
	t.mu.Lock()
	s.watched = true
	t.mu.Unlock()
	go func() {
		defer t.lookups.Done()
		defer func() {
			t.mu.Lock()
			s.watched = false
			s.notifyLocked()
			t.mu.Unlock()
		}()
		interval := d.Wait.PollMin
		t.mu.Lock()
		_, bound := t.windowLocked(s)
		t.mu.Unlock()
		give := bound.Add(maxRecoveryTime)
		for {
			lctx, cancel := context.WithTimeout(ctx, lateWork)
			lk, err := t.lookUp(lctx, d, c, s)
			cancel()
			switch {
			case err == nil && t.settle(d, s, lk):
				return
			case err != nil:
				s.log.Debug("looking for the run in the run list failed; will look again", "err", err)
			}
			if time.Now().After(give) {
				s.log.Warn("gave up watching the run list; whether the run started is unknown: look in the account's runs for this prompt version around submitted_at",
					"submitted_at", s.submitted.UTC().Format(time.RFC3339))
				return
			}
			// Look again soon, and once more right after the bound, when
			// the answer becomes definitive.
			next := interval
			if untilBound := time.Until(bound); untilBound > 0 {
				next = min(next, untilBound+100*time.Millisecond)
			}
			select {
			case <-time.After(next):
			case <-stop:
				s.log.Warn("shutting down while it is unknown whether the run started: look in the account's runs for this prompt version around submitted_at",
					"submitted_at", s.submitted.UTC().Format(time.RFC3339))
				return
			}
			interval = min(interval*2, max(d.Wait.PollMax, interval))
		}
	}()
}

// confirmPending confirms through the run list the run of a submission
// whose POST the API still holds, when it can be told apart for certain, so
// that the agent gets an id that survives this process. It returns the run
// and whether it did.
func (t *runTracker) confirmPending(d *Toolset, s *submission, lk *look) (*bpapi.Run, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.state != statePending {
		return nil, false
	}
	lk.candidates = t.unclaimedLocked(s, lk.candidates)
	if !t.confirmableLocked(s, lk) {
		return nil, false
	}
	run := lk.candidates[0]
	s.state, s.runID = stateStarted, run.RunID
	t.claimed[s.runID] = s.handle
	s.notifyLocked()
	s.log.Info("found the run in the run list while the API still held the request; no other client could have started it", "run_id", run.RunID)
	return &run, true
}
