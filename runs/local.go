package runs

import (
	"context"
	"errors"
	"slices"
	"time"
)

// sending is what only the process that sends a start request holds of it.
// The upstream's 200 answer is handed to exactly one waiter, so that a fast
// job costs no read; it stays here, not in the records, because no other
// process needs it: a waiter without it reads the job upstream by the id
// that the record holds. Fields are guarded by Engine.mu.
type sending struct {
	done   chan struct{} // closed when the start request has answered or failed
	answer *Job          // the start request's answer, until a waiter takes it
	// err is the start request's failure as returned, with its type: a
	// store shared by processes keeps only its text, which the toolsets
	// cannot word (a 402 would read as a network failure).
	err      error
	finished time.Time
	// rec is the record as this process last wrote it: from the start
	// (Begin) until the start request answers, and then as Finish left it
	// when that is final. A store
	// shared by processes is then not read again (a round trip each time a
	// waiter looks); nil when the store must be read. While pending it may
	// be behind the store (ConfirmPending, Orphan elsewhere): a call's
	// answer at its deadline reads the store (read, deciding).
	rec *Record
}

// posted returns a channel closed when this process's start request of
// handle has answered, or nil when this process is not sending one.
func (e *Engine) posted(handle string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.sending[handle]; p != nil {
		return p.done
	}
	return nil
}

// takeAnswer hands the start request's answer, when it named jobID, to its
// first taker.
func (e *Engine) takeAnswer(handle, jobID string) *Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.sending[handle]
	if p == nil || p.answer == nil || p.answer.ID != jobID {
		return nil
	}
	job := p.answer
	p.answer = nil
	if !p.finished.IsZero() && p.err == nil {
		delete(e.sending, handle)
	}
	return job
}

// sweepSendingLocked drops the answers no waiter took (their calls ended before
// the upstream answered) once their records may be gone, and past the
// count limit the oldest: a waiter that comes later reads the job by its
// id.
func (e *Engine) sweepSendingLocked(now time.Time) {
	if len(e.sending) < maxRecords && now.Sub(e.lastSweep) < time.Minute {
		return
	}
	e.lastSweep = now
	var answered []string
	for h, p := range e.sending {
		switch {
		case p.finished.IsZero():
		case now.Sub(p.finished) > KeepRecords:
			delete(e.sending, h)
		default:
			answered = append(answered, h)
		}
	}
	if excess := len(e.sending) - maxRecords + 1; excess > 0 {
		slices.SortFunc(answered, func(a, b string) int { return e.sending[a].finished.Compare(e.sending[b].finished) })
		for _, h := range answered[:min(excess, len(answered))] {
			delete(e.sending, h)
		}
	}
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
	watched   bool            // background recovery watches the job list, and has lately
	sentAt    time.Time       // when the latest start request was sent
	orphaned  bool            // pending, but its sender is presumed gone (Record.Orphaned)
	answered  bool            // the start request has answered or failed
	changed   <-chan struct{} // closed at the next change, when the records can say so
}

// record reads s's record; a record the store no longer holds is an error.
func (e *Engine) record(ctx context.Context, s *submission) (Record, error) {
	rec, ok, err := e.rec.Get(ctx, s.handle, s.tenant)
	if err == nil && !ok {
		err = errForgotten
	}
	return rec, err
}

// errForgotten is the failure to read a record the store no longer holds.
var errForgotten = errors.New("runs: the submission's record is gone")

// read reads what is known of a submission. The start request's answer is
// handed to one caller only; later ones read the job upstream by its id.
// When deciding (a call answers at its deadline), a pending record of this
// process's own is read from the store: another process, or another call,
// may have confirmed its job through the job list (ConfirmPending) or
// found its sender gone (Orphan) meanwhile.
func (e *Engine) read(ctx context.Context, s *submission, deciding bool) (snapshot, error) {
	var changed <-chan struct{}
	if n, ok := e.rec.(Notifier); ok {
		changed = n.Changed(s.handle) // before the reading, so that no change is missed
	} else if p := e.posted(s.handle); p != nil && !isClosed(p) {
		// A store shared by processes can only be polled, but a start
		// request this process sends wakes its waiters as soon as its
		// answer is on record, as the memory store would.
		changed = p
	}
	rec, ok := e.ownRecord(s.handle)
	if ok && deciding && rec.State == StatePending {
		ok = false
	}
	if !ok {
		var err error
		if rec, err = e.record(ctx, s); err != nil {
			return snapshot{}, err
		}
	}
	snap := e.snapshotOf(rec)
	snap.changed = changed
	switch rec.State {
	case StateStarted:
		snap.job = e.takeAnswer(s.handle, rec.JobID)
	case StateRefused, StateUnknown:
		if err := e.sentErr(s.handle); err != nil {
			snap.err = err
		}
	}
	return snap, nil
}

// ownRecord returns handle's record as this process last wrote it, when
// that is all there is to know (sending.rec). The records' own store is
// read otherwise, and always when it announces changes (Notifier): then
// reading costs nothing.
func (e *Engine) ownRecord(handle string) (Record, bool) {
	if _, ok := e.rec.(Notifier); ok {
		return Record{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.sending[handle]
	if p == nil || p.rec == nil {
		return Record{}, false
	}
	return *p.rec, true
}

// ownRecordLocked sets what ownRecord returns for handle: rec, while no
// other process can change it, else nil.
func (e *Engine) ownRecordLocked(handle string, rec *Record) {
	if p := e.sending[handle]; p != nil {
		p.rec = rec
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sentErr returns the failure of this process's start request of handle,
// as returned; nil when it did not send one or it did not fail.
func (e *Engine) sentErr(handle string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.sending[handle]; p != nil {
		return p.err
	}
	return nil
}

// snapshotOf is what rec says, without the start request's answer.
func (e *Engine) snapshotOf(rec Record) snapshot {
	_, certainAt := rec.Window(e.cfg.StartBound)
	orphaned, _ := rec.Orphaned(e.cfg.CreateTimeout, time.Now())
	return snapshot{state: rec.State, jobID: rec.JobID, err: rec.Err, look: rec.Look, certainAt: certainAt,
		watched: rec.Watched && !e.watchLapsed(rec), answered: !rec.Finished.IsZero(), sentAt: rec.SentAt(),
		orphaned: orphaned}
}

// watchLapsed reports whether the recovery that watches rec has not
// recorded a look for so long that it is presumed gone (its process died):
// a live watch records one at least every PollMax while the list can be
// read. A waiter then looks itself, as for a record nobody watches.
func (e *Engine) watchLapsed(rec Record) bool {
	last := rec.Finished
	if rec.Look != nil && rec.Look.At.After(last) {
		last = rec.Look.At
	}
	return time.Since(last) > 4*e.cfg.PollMax+LateWork
}

// sendingHere reports whether this process is sending handle's start
// request (it is then not an orphan, however long it takes).
func (e *Engine) sendingHere(handle string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.sending[handle]
	return ok
}

// readOr reads a submission, or, when its record cannot be read, logs why
// and returns last: the wait goes on with what it knew. deciding: see read.
func (e *Engine) readOr(ctx context.Context, s *submission, last snapshot, deciding bool) snapshot {
	snap, err := e.read(ctx, s, deciding)
	if err != nil {
		if ctx.Err() == nil { // a call that ends says so itself
			s.log.Warn("reading the submission's record failed; going on with what was known", "err", err)
		}
		last.changed, last.job = nil, nil
		return last
	}
	return snap
}
