package runs

import (
	"context"
	"errors"
	"time"
)

// Status is the lifecycle state of a job upstream.
type Status string

// The statuses a job passes through; Succeeded and Failed are final.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
)

// Final reports whether the status can no longer change.
func (s Status) Final() bool { return s == Succeeded || s == Failed }

// Job is what the engine needs to know of an upstream job.
type Job struct {
	ID string
	// Kind is what recovery matches in the job list: jobs of another kind
	// cannot be a submission's (BetterPrompt: the prompt version id).
	Kind   string
	Status Status
	// CreatedAt is when the upstream created the job; zero when unknown
	// (such a job is never matched to a submission by time).
	CreatedAt time.Time
	// Detail is what the upstream says of the job's progress beyond its
	// status (e.g. "position 3 in the queue"), for progress messages.
	Detail string
	// Data is the upstream's own record of the job (for rendering); the
	// engine never reads it.
	Data any
}

// Upstream is the API that runs the jobs, bound to one caller's key.
type Upstream interface {
	// Get reads one job by its id.
	Get(ctx context.Context, id string) (*Job, error)
	// List returns the account's jobs created in [from, to], of every kind.
	// Rows outside the interval are dropped by the engine. It fails rather
	// than return a list it knows to be incomplete, and fails with
	// ErrNoJobList when the upstream has no list at all: a start whose
	// outcome is unknown then stays unknown (never "not started").
	List(ctx context.Context, from, to time.Time) ([]Job, error)
	// Classify says what a failure of Get, List or a start means.
	Classify(err error) Failure
}

// ErrNoJobList is List's failure for an upstream that cannot list its jobs.
var ErrNoJobList = errors.New("the upstream has no list of jobs")

// Failure is what an upstream failure means to the engine.
type Failure struct {
	Kind FailureKind
	// RetryAfter is how long the upstream asked to wait (RateLimited); 0
	// when it did not say.
	RetryAfter time.Duration
	// JobID is the job the upstream named while failing (TimedOut, or
	// RateLimited with Then TimedOut).
	JobID string
	// Then is, for RateLimited, what the failure means once the start is
	// not sent again: OutcomeUnknown (the zero value) when the request may
	// have created a job all the same (a 429 code in a 5xx answer),
	// TimedOut when the answer named the job, Refused for a plain refusal.
	Then FailureKind
}

// FailureKind classifies an upstream failure.
//
// A start request is sent again only after RateLimited, and its job is
// known only after TimedOut; every other kind but OutcomeUnknown means that
// the start had no effect. So Classify must answer OutcomeUnknown, the zero
// value, for every failure after which the request may have taken effect.
type FailureKind int

const (
	// OutcomeUnknown: the request may have reached the upstream and taken
	// effect (a broken connection, a 5xx to a start). A start that fails
	// so is never sent again; the job list decides.
	OutcomeUnknown FailureKind = iota
	// Transient: the request had no effect (it was never sent, or a read
	// failed); trying again later may succeed.
	Transient
	// RateLimited: the upstream refused for now (429), normally before
	// doing anything.
	RateLimited
	// TimedOut: the upstream stopped holding a start request and named the
	// job it created (Failure.JobID); the job goes on.
	TimedOut
	// NotFound: no such job for this key.
	NotFound
	// InvalidID: the id cannot be a job id; nothing was sent.
	InvalidID
	// Denied: the key was refused (invalid, revoked, out of credits).
	Denied
	// Invalid: any other refusal of the request itself (a 4xx).
	Invalid
	// Refused: the upstream refused the start before doing anything (a
	// plain 429 once it is not sent again).
	Refused
)

// Progress receives what a waiting call is doing. *tools.Progress fits.
type Progress interface {
	// Send reports msg now.
	Send(ctx context.Context, msg string)
	// LastMessage is the message last sent, to repeat while nothing changes.
	LastMessage() string
}

// Phase is what a waiting call is doing, for its progress messages.
type Phase int

const (
	// PhaseStarting: the upstream still holds the start request.
	PhaseStarting Phase = iota
	// PhaseRecovering: the start request failed; the job list is searched.
	PhaseRecovering
	// PhasePolling: the job is known and read until it is final.
	PhasePolling
)

// Note is one progress message to word (Config.Narrate).
type Note struct {
	Phase Phase
	// ID is the id the caller follows: the job's, or a local handle.
	ID string
	// Status is the job's latest status (PhasePolling); empty before the
	// first reading.
	Status Status
	// Started is when the upstream created the job (PhasePolling); zero
	// when unknown.
	Started time.Time
	// Detail is the job's Detail (PhasePolling).
	Detail string
}
