package runs

import (
	"context"
	"time"
)

// Record is what a process needs to answer for a handle: the submission,
// what became of its start request, and the latest look at the job list.
// Records are shared by every process that may be asked about a handle
// (replicas, a restart), so they hold no channels and no process's
// in-flight work.
type Record struct {
	Handle string // local id handed out before the upstream id is known
	Tenant string // the caller's key id; a handle is private to it
	Kind   string
	// CallKey is the call that made it, so that a replay of the call joins
	// it; "" for none.
	CallKey   string
	Submitted time.Time
	// LastSent is when the latest start request was sent (a 429 may have
	// it sent again); Finished is when the start request answered or
	// failed (zero while pending).
	LastSent, Finished time.Time

	State State
	JobID string // the upstream job id, certain
	// Err is the start request's failure (StateRefused, StateUnknown), for
	// its wording; the state says which kind it is. The memory store keeps
	// the value; a store that serializes records keeps at least its text.
	Err       error
	Look      *Look // the latest look at the job list; never modified once recorded
	Watched   bool  // a background recovery watches the job list for it
	Abandoned bool  // no call waits for it any more
	// AliveUntil is the sender's lease while the record is pending: the
	// process sending the start request renews it (Records.Renew) every
	// SenderLease/3, so once it lapses the sender is presumed gone (a
	// replica killed while the upstream held its request). Zero: no lease,
	// and only CreateTimeout tells.
	AliveUntil time.Time
}

// SenderLease is how long a sender's lease (Record.AliveUntil) lasts from
// each renewal. It is long next to a renewal's round trip and to clock
// differences between replicas, and short next to CreateTimeout, the
// bound without it.
const SenderLease = 15 * time.Second

// Orphaned reports whether r, still pending at now, has lost its sender:
// its latest request was sent more than createTimeout ago (its sender
// would have recorded the answer by then), or its sender's lease lapsed.
// until is the last moment its request can count as in flight. It is the
// rule of Records.Orphan, for every store.
func (r Record) Orphaned(createTimeout time.Duration, now time.Time) (orphaned bool, until time.Time) {
	if r.State != StatePending {
		return false, time.Time{}
	}
	until = r.SentAt().Add(createTimeout)
	if !r.AliveUntil.IsZero() && r.AliveUntil.Before(until) {
		until = r.AliveUntil
	}
	return now.After(until), until
}

// Window is the interval in which r's job must have been created, if it
// was: from its submission (less the upstream's clock slack) to startBound
// after the last moment a request of it was in flight (its latest sending,
// or its failure, whichever is later: the upstream may create the job at
// any moment before the request fails).
func (r Record) Window(startBound time.Duration) (from, to time.Time) {
	last := r.SentAt()
	if r.Finished.After(last) {
		last = r.Finished
	}
	return r.Submitted.Add(-clockSlack), last.Add(startBound)
}

// SentAt is when r's latest start request was sent (its submission, when
// none is recorded).
func (r Record) SentAt() time.Time {
	if r.LastSent.After(r.Submitted) {
		return r.LastSent
	}
	return r.Submitted
}

// Answer is what became of a start request, for Records.Finish.
type Answer struct {
	At time.Time
	// JobID is the job the upstream named: StateStarted. When empty, the
	// start failed with Err: StateUnknown when Unknown (the request may
	// have created a job), else StateRefused.
	JobID   string
	Unknown bool
	Err     error
}

// Rules are the engine's settings that Settle and ConfirmPending apply.
type Rules struct {
	// StartBound: see Config.StartBound; it sizes each record's Window.
	StartBound time.Duration
	// Exclusive: see Config.Exclusive. Without it no job in the list is
	// ever confirmed.
	Exclusive bool
	// InheritedUntil: a job in a window that begins before it may have been
	// started by the previous instance of the process, and is never
	// confirmed.
	InheritedUntil time.Time
}

// Settled is what Records.Settle did.
type Settled struct {
	Record // the record after the step
	// Applied is false when the outcome was no longer unknown (the upstream
	// answered meanwhile, or another look settled it): nothing changed.
	Applied bool
	// Previous is the look that the step replaced, so that only jobs not
	// seen before are logged.
	Previous *Look
}

// KeepRecords is how long a record stays after its start request answered:
// a handle resolves as long as the job's outputs live (24 hours). A store
// may forget a record then (a TTL), and its claim with it.
const KeepRecords = 24 * time.Hour

// Records keeps the submissions' records and the claims (upstream job id →
// the handle that certainly owns it). Every method that guards money is one
// step that an implementation on a shared store makes atomic (a
// transaction, a script): nothing is read in the engine, decided and
// written back. MemoryRecords is the default, for a single process.
//
// Handles are those of records it holds; an unknown handle is a no-op that
// returns the zero Record (a store may have expired it).
type Records interface {
	// Begin records rec, a new submission in StatePending, and returns it.
	// When a record of rec.Tenant with rec.CallKey (not empty) exists, it
	// returns that one with replay true and records nothing: a replayed
	// call joins the job its first delivery started. When closed (the
	// process shuts down) it records nothing new and returns the zero
	// Record unless the call is a replay.
	Begin(ctx context.Context, rec Record, closed bool) (got Record, replay bool, err error)
	// Get returns the record of handle, when it is tenant's.
	Get(ctx context.Context, handle, tenant string) (rec Record, ok bool, err error)
	// Sent records that a start request of handle is sent at. It fails
	// with ErrOrphaned, recording nothing, when the record is no longer
	// pending (another process declared its sender gone: see Orphan): the
	// request must then not be sent.
	Sent(ctx context.Context, handle string, at time.Time) error
	// Renew extends the sender's lease of handle (Record.AliveUntil) to
	// until, while the record is pending.
	Renew(ctx context.Context, handle string, until time.Time) error
	// Finish records a start request's answer (see Answer), except that an
	// unknown outcome leaves a job the job list already confirmed; when the
	// outcome is unknown the record is marked Watched, because recovery
	// starts at once. The job is claimed for handle, and a job the list had
	// suggested before the upstream named another is released (to another
	// record that holds it, if any). It returns the job id held before.
	Finish(ctx context.Context, handle string, a Answer) (rec Record, previous string, err error)
	// Settle records lk for a record whose outcome is unknown (otherwise it
	// changes nothing): it drops from lk the jobs claimed by another
	// record, then confirms and claims the only candidate when it can be
	// told apart (rules.Exclusive, no competitor, not inherited: see
	// Config.Exclusive), or marks the record StateNotStarted when lk is
	// final and empty. A competitor is any other record of the kind, of
	// any tenant, pending or unknown, whose window overlaps handle's.
	Settle(ctx context.Context, handle string, lk Look, rules Rules) (Settled, error)
	// ConfirmPending confirms and claims, by the rules of Settle, the only
	// candidate of lk for a record still pending; job is nil when it did
	// not.
	ConfirmPending(ctx context.Context, handle string, lk Look, rules Rules) (rec Record, job *Job, err error)
	// Abandon records that no call waits for handle any more.
	Abandon(ctx context.Context, handle string) (Record, error)
	// Watch records whether a background recovery watches the job list for
	// handle.
	Watch(ctx context.Context, handle string, watched bool) (Record, error)
	// Orphan marks handle's record StateUnknown when Record.Orphaned: it
	// is still pending although its latest request was sent more than
	// createTimeout ago (its sender would have recorded an answer by
	// then), or its sender's lease lapsed; either way the sender is gone (a
	// process that died while the upstream held the request). The request
	// counts as in flight until then (Record.Finished).
	Orphan(ctx context.Context, handle string, createTimeout time.Duration) (Record, error)
	// Unclaimed returns rows without the jobs claimed by a record other
	// than handle ("" for any record).
	Unclaimed(ctx context.Context, rows []Job, handle string) ([]Job, error)
}

// Notifier is implemented by Records that can wake a waiter as soon as a
// record changes. Waiters do not depend on it: they also read the record
// again every Config.PollMin, which is all a store shared by processes
// offers.
type Notifier interface {
	// Changed returns a channel closed at the next change of handle's
	// record.
	Changed(handle string) <-chan struct{}
}
