package runs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// MemoryRecords is Records in memory, for a single process; the zero value
// is not usable: call NewMemoryRecords. Each method is one critical
// section, the in-memory form of the atomic step a shared store makes.
//
// It lives in this package, not in state, because records and the rules of
// its steps are this package's types, state must not import runs, and runs
// takes nothing beyond the standard library.
type MemoryRecords struct {
	mu        sync.Mutex
	byHandle  map[string]*Record
	byCall    map[callID]string        // tenant and call key → handle, for replays
	claimed   map[string]string        // upstream job id → handle of the record that certainly owns it
	changed   map[string]chan struct{} // handle → closed at its record's next change
	lastSweep time.Time
}

type callID struct{ tenant, key string }

// maxRecords bounds the memory the records take, and minKeep protects
// recent handles from eviction whatever the count.
const (
	maxRecords = 10000
	minKeep    = time.Hour
)

// NewMemoryRecords returns an empty store.
func NewMemoryRecords() *MemoryRecords {
	return &MemoryRecords{
		byHandle: make(map[string]*Record), byCall: make(map[callID]string),
		claimed: make(map[string]string), changed: make(map[string]chan struct{}),
	}
}

var (
	_ Records  = (*MemoryRecords)(nil)
	_ Notifier = (*MemoryRecords)(nil)
)

// Begin implements Records.
func (m *MemoryRecords) Begin(_ context.Context, rec Record, closed bool) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec.CallKey != "" {
		if h, ok := m.byCall[callID{rec.Tenant, rec.CallKey}]; ok {
			return *m.byHandle[h], true, nil
		}
	}
	if closed {
		return Record{}, false, nil
	}
	m.sweepLocked(rec.Submitted)
	rec.State = StatePending
	m.byHandle[rec.Handle] = &rec
	if rec.CallKey != "" {
		m.byCall[callID{rec.Tenant, rec.CallKey}] = rec.Handle
	}
	return rec, false, nil
}

// Get implements Records.
func (m *MemoryRecords) Get(_ context.Context, handle, tenant string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byHandle[handle]
	if r == nil || r.Tenant != tenant {
		return Record{}, false, nil
	}
	return *r, true, nil
}

// Sent implements Records.
func (m *MemoryRecords) Sent(_ context.Context, handle string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.byHandle[handle]; r != nil {
		if r.State != StatePending {
			return ErrOrphaned
		}
		r.LastSent = at
		m.notifyLocked(handle)
	}
	return nil
}

// Renew implements Records.
func (m *MemoryRecords) Renew(_ context.Context, handle string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.byHandle[handle]; r != nil && r.State == StatePending {
		r.AliveUntil = until // no waiter to wake: a lease that holds changes nothing
	}
	return nil
}

// Finish implements Records.
func (m *MemoryRecords) Finish(_ context.Context, handle string, a Answer) (Record, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byHandle[handle]
	if r == nil {
		return Record{}, "", nil
	}
	previous := r.JobID
	switch {
	case a.JobID != "":
		r.State, r.JobID = StateStarted, a.JobID
	case a.Unknown:
		r.Err = a.Err
		if r.State != StateStarted { // the job list may have settled it already
			r.State, r.Watched = StateUnknown, true
		}
	default:
		r.State, r.Err, r.JobID = StateRefused, a.Err, "" // nothing was started
	}
	if previous != "" && r.JobID != previous {
		// The job list suggested another job; the upstream's answer is the
		// truth.
		m.unclaimLocked(previous, handle)
	}
	if r.JobID != "" {
		m.claimed[r.JobID] = handle
	}
	r.Finished = a.At
	m.notifyLocked(handle)
	return *r, previous, nil
}

// Settle implements Records.
func (m *MemoryRecords) Settle(_ context.Context, handle string, lk Look, rules Rules) (Settled, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byHandle[handle]
	if r == nil {
		return Settled{}, nil
	}
	if r.State != StateUnknown {
		return Settled{Record: *r}, nil
	}
	// Claims may have changed while the list was read.
	lk.Candidates = m.unclaimedLocked(handle, lk.Candidates)
	previous := r.Look
	r.Look = &lk
	switch {
	case m.confirmableLocked(r, &lk, rules):
		r.State, r.JobID = StateStarted, lk.Candidates[0].ID
		m.claimed[r.JobID] = handle
	case len(lk.Candidates) == 0 && lk.Final:
		r.State = StateNotStarted
	}
	m.notifyLocked(handle)
	return Settled{Record: *r, Applied: true, Previous: previous}, nil
}

// ConfirmPending implements Records.
func (m *MemoryRecords) ConfirmPending(_ context.Context, handle string, lk Look, rules Rules) (Record, *Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byHandle[handle]
	if r == nil {
		return Record{}, nil, nil
	}
	if r.State != StatePending {
		return *r, nil, nil
	}
	lk.Candidates = m.unclaimedLocked(handle, lk.Candidates)
	if !m.confirmableLocked(r, &lk, rules) {
		return *r, nil, nil
	}
	job := lk.Candidates[0]
	r.State, r.JobID = StateStarted, job.ID
	m.claimed[job.ID] = handle
	m.notifyLocked(handle)
	return *r, &job, nil
}

// Abandon implements Records.
func (m *MemoryRecords) Abandon(_ context.Context, handle string) (Record, error) {
	return m.update(handle, func(r *Record) { r.Abandoned = true })
}

// Watch implements Records.
func (m *MemoryRecords) Watch(_ context.Context, handle string, watched bool) (Record, error) {
	return m.update(handle, func(r *Record) { r.Watched = watched })
}

// Orphan implements Records.
func (m *MemoryRecords) Orphan(_ context.Context, handle string, createTimeout time.Duration) (Record, error) {
	return m.update(handle, func(r *Record) {
		if gone, until := r.Orphaned(createTimeout, time.Now()); gone {
			r.State, r.Finished, r.Err = StateUnknown, until, ErrOrphaned
		}
	})
}

// ErrOrphaned is the failure of a start request whose sender went away
// before it answered.
var ErrOrphaned = errors.New("the server instance that sent the request went away before it answered")

// update applies f to handle's record and wakes its waiters.
func (m *MemoryRecords) update(handle string, f func(*Record)) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byHandle[handle]
	if r == nil {
		return Record{}, nil
	}
	f(r)
	m.notifyLocked(handle)
	return *r, nil
}

// Unclaimed implements Records.
func (m *MemoryRecords) Unclaimed(_ context.Context, rows []Job, handle string) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unclaimedLocked(handle, rows), nil
}

// Changed implements Notifier. It returns nil for a handle it holds no
// record of: nothing will change.
func (m *MemoryRecords) Changed(handle string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byHandle[handle] == nil {
		return nil
	}
	ch := m.changed[handle]
	if ch == nil {
		ch = make(chan struct{})
		m.changed[handle] = ch
	}
	return ch
}

// notifyLocked wakes everyone waiting for a change of handle's record.
func (m *MemoryRecords) notifyLocked(handle string) {
	if ch := m.changed[handle]; ch != nil {
		close(ch)
		delete(m.changed, handle)
	}
}

// unclaimedLocked drops the jobs claimed by a record other than handle.
func (m *MemoryRecords) unclaimedLocked(handle string, rows []Job) []Job {
	kept := rows[:0:0]
	for _, j := range rows {
		if owner, ok := m.claimed[j.ID]; !ok || (handle != "" && owner == handle) {
			kept = append(kept, j)
		}
	}
	return kept
}

// unclaimLocked releases a job id unless a record other than except holds
// it.
func (m *MemoryRecords) unclaimLocked(jobID, except string) {
	for h, o := range m.byHandle {
		if h != except && o.JobID == jobID {
			m.claimed[jobID] = h
			return
		}
	}
	delete(m.claimed, jobID)
}

// confirmableLocked reports whether the only candidate of lk can be r's job
// for certain.
func (m *MemoryRecords) confirmableLocked(r *Record, lk *Look, rules Rules) bool {
	others := make([]Record, 0, len(m.byHandle))
	for _, o := range m.byHandle {
		if o.Kind == r.Kind {
			others = append(others, *o)
		}
	}
	return Confirmable(*r, *lk, rules, others)
}

// Confirmable reports whether the only candidate of lk can be r's job for
// certain: no other client uses the key (rules.Exclusive), r's window
// begins after the previous instance's last start could land
// (rules.InheritedUntil), and none of others competes with r (Competes).
// It is the rule of Records.Settle and Records.ConfirmPending, for every
// store.
func Confirmable(r Record, lk Look, rules Rules, others []Record) bool {
	if len(lk.Candidates) != 1 || !rules.Exclusive {
		return false
	}
	from, _ := r.Window(rules.StartBound)
	if from.Before(rules.InheritedUntil) {
		return false
	}
	for _, o := range others {
		if Competes(r, o, rules.StartBound) {
			return false
		}
	}
	return true
}

// Competes reports whether o, another record of r's kind whose window
// overlaps r's, may have created a job that no record accounts for: its
// request has not answered, or its outcome is unknown. Every tenant counts,
// not only r's: the job list may be an account's, which several keys
// share.
func Competes(r, o Record, startBound time.Duration) bool {
	if o.Handle == r.Handle || o.Kind != r.Kind || (o.State != StatePending && o.State != StateUnknown) {
		return false
	}
	from, to := r.Window(startBound)
	oFrom, oTo := o.Window(startBound)
	switch {
	case o.State != StatePending:
	case !o.AliveUntil.IsZero() && time.Now().After(o.AliveUntil):
		// Its sender is gone (its lease lapsed): its request was in flight
		// at most until then.
		oTo = maxTime(oTo, o.AliveUntil.Add(startBound))
	default:
		// Still in flight: it may create its job at any moment, so its
		// window has no end yet.
		oTo = maxTime(oTo, to)
	}
	return !oFrom.After(to) && !from.After(oTo)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sweepLocked forgets old records so memory stays bounded: those finished
// for KeepRecords, and past the count limit the oldest finished ones, but
// never one finished within minKeep, whose handle a caller may be about to
// use.
func (m *MemoryRecords) sweepLocked(now time.Time) {
	if len(m.byHandle) < maxRecords && now.Sub(m.lastSweep) < time.Minute {
		return
	}
	m.lastSweep = now
	var evictable []*Record
	for _, r := range m.byHandle {
		switch {
		case r.Finished.IsZero() || now.Sub(r.Finished) < minKeep:
		case now.Sub(r.Finished) > KeepRecords:
			m.forgetLocked(r)
		default:
			evictable = append(evictable, r)
		}
	}
	if excess := len(m.byHandle) - maxRecords + 1; excess > 0 {
		slices.SortFunc(evictable, func(a, b *Record) int { return a.Finished.Compare(b.Finished) })
		for _, r := range evictable[:min(excess, len(evictable))] {
			m.forgetLocked(r)
		}
	}
}

func (m *MemoryRecords) forgetLocked(r *Record) {
	delete(m.byHandle, r.Handle)
	if id := (callID{r.Tenant, r.CallKey}); m.byCall[id] == r.Handle {
		delete(m.byCall, id)
	}
	if r.JobID != "" && m.claimed[r.JobID] == r.Handle {
		m.unclaimLocked(r.JobID, r.Handle)
	}
	m.notifyLocked(r.Handle)
}
