package runs

import (
	"fmt"
	"time"
)

// Outcome is what a wait learned about a job.
type Outcome struct {
	// Job is the job's latest reading; nil when no job is known for
	// certain. Job.Kind is filled in when the upstream left it empty.
	Job *Job
	// Stopping says the engine is shutting down: the wait ended early.
	Stopping bool
	// Joined says the call was a replay that joined the submission of its
	// first delivery: its own start was never sent (Run sets it, also when
	// it returns an error).
	Joined bool

	// When Job is nil, what is known instead:

	// Handle is the id to give the caller (a local handle).
	Handle string
	// Kind is the submission's kind (empty for a foreign handle).
	Kind string
	// State is StatePending, StateUnknown or StateNotStarted.
	State State
	// Look is the latest look at the job list (StateUnknown); nil before
	// the first.
	Look *Look
	// Submitted is when the job was submitted.
	Submitted time.Time
	// CertainAt is when the absence of a job becomes definitive.
	CertainAt time.Time
	// Cause is why the outcome is unknown: the start request's failure.
	Cause error
	// LookErr is why the job list could not be read, when a look was due.
	LookErr error
	// Foreign says the handle is one this process does not know (a
	// restart, another replica).
	Foreign bool
}

// RefusedError is the failure of a start the upstream refused, or that
// never reached it: nothing was started.
type RefusedError struct {
	Err error // the start request's failure
}

func (e *RefusedError) Error() string { return fmt.Sprintf("nothing was started: %v", e.Err) }
func (e *RefusedError) Unwrap() error { return e.Err }

// CancelledError is the failure of a call cancelled after its job was
// submitted. Unless State is StateRefused or StateNotStarted, the job goes
// on upstream and must not be started again: ID follows it.
type CancelledError struct {
	ID    string // the job id when known, else the local handle
	State State
	Err   error // the start request's failure (StateRefused)
}

func (e *CancelledError) Error() string {
	return fmt.Sprintf("call cancelled after submitting %s (state %d)", e.ID, e.State)
}

// Unwrap returns the start request's failure, if any; the error is also
// context.Canceled's kind of failure, which callers add if they need it.
func (e *CancelledError) Unwrap() error { return e.Err }

// ReadError is a failure to read a job that ends the wait.
type ReadError struct {
	ID string
	// Kind is Denied (the key was refused: follow ID once it is fixed),
	// Invalid (the upstream refused the read), InvalidID, or NotFound (no
	// such job, and, when ListErr is not nil, a local handle whose jobs
	// could not be listed).
	Kind    FailureKind
	Err     error
	ListErr error
}

func (e *ReadError) Error() string {
	if e.ListErr != nil {
		return fmt.Sprintf("reading job %s: %v; listing the jobs of the handle: %v", e.ID, e.Err, e.ListErr)
	}
	return fmt.Sprintf("reading job %s: %v", e.ID, e.Err)
}
func (e *ReadError) Unwrap() error { return e.Err }

// UnreadableError says a job that was started could not be read by the
// deadline: it goes on, and ID follows it.
type UnreadableError struct {
	ID  string
	Err error // the latest failure to read it
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("job %s could not be read by the deadline: %v", e.ID, e.Err)
}
func (e *UnreadableError) Unwrap() error { return e.Err }
