package betterprompt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/tools"
)

// upstream is BetterPrompt's runs API as the run engine sees it, bound to
// one caller's client: a run is a job whose kind is its prompt version.
type upstream struct{ c *bpapi.Client }

var _ runs.Upstream = upstream{}

// Get reads a run.
func (u upstream) Get(ctx context.Context, id string) (*runs.Job, error) {
	run, err := u.c.GetRun(ctx, id)
	if err != nil {
		return nil, err // as the client words it: tools describe bpapi errors
	}
	job := jobOf(run)
	return &job, nil
}

// maxCandidatePages bounds the pages of the run list read for one look.
const maxCandidatePages = 5

// List reads the runs of the account created in [from, to], newest first,
// over a few pages of the run list.
func (u upstream) List(ctx context.Context, from, to time.Time) ([]runs.Job, error) {
	params := bpapi.ListRunsParams{Limit: 50, Since: from.Unix()}
	if time.Now().After(to) {
		params.Until = to.Unix() + 1
	}
	var found []runs.Job
	for page := 0; ; page++ {
		list, err := u.c.ListRuns(ctx, params)
		if err != nil {
			return nil, err
		}
		for i := range list.Rows {
			found = append(found, jobOf(&list.Rows[i]))
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

// Classify reads a BetterPrompt failure. CreateRun wraps
// bpapi.ErrOutcomeUnknown in every failure after which a run may exist. A
// rate-limit answer (status 429 or the code TOO_MANY_REQUESTS_ERROR) is
// RateLimited, so that the engine's 429 policy decides about a resend, and
// Then says what it means when the start is not sent again.
func (upstream) Classify(err error) runs.Failure {
	f := classify(err)
	if !bpapi.IsRateLimited(err) {
		return f
	}
	rl := runs.Failure{Kind: runs.RateLimited, JobID: f.JobID, Then: runs.Refused}
	if f.Kind == runs.OutcomeUnknown || f.Kind == runs.TimedOut {
		rl.Then = f.Kind
	}
	var ae *bpapi.APIError
	if errors.As(err, &ae) {
		rl.RetryAfter = ae.RetryAfter
	}
	return rl
}

// classify reads a failure regardless of any rate-limit code, in the order
// that keeps a run id the API named, then an outcome that may be a run.
func classify(err error) runs.Failure {
	var ae *bpapi.APIError
	id, timedOut := bpapi.TimedOutRunID(err)
	switch {
	case timedOut:
		return runs.Failure{Kind: runs.TimedOut, JobID: id}
	case errors.Is(err, bpapi.ErrOutcomeUnknown):
		return runs.Failure{Kind: runs.OutcomeUnknown}
	case bpapi.IsUnauthorized(err), bpapi.IsPaymentRequired(err):
		return runs.Failure{Kind: runs.Denied}
	case bpapi.IsNotFound(err):
		return runs.Failure{Kind: runs.NotFound}
	case errors.Is(err, bpapi.ErrInvalidID):
		return runs.Failure{Kind: runs.InvalidID}
	case errors.As(err, &ae) && ae.HTTPStatus >= 400 && ae.HTTPStatus < 500:
		return runs.Failure{Kind: runs.Invalid}
	}
	return runs.Failure{Kind: runs.Transient}
}

// jobOf is a run as the engine sees it; Data keeps the run itself.
func jobOf(run *bpapi.Run) runs.Job {
	created, _ := time.Parse(time.RFC3339Nano, run.CreatedAt) // zero when unreadable: never matched by time
	return runs.Job{ID: run.RunID, Kind: run.PromptVersionID, Status: runs.Status(run.Status), CreatedAt: created, Data: run}
}

// runOf is the run behind a job, with its prompt version filled in from the
// job when the API left it out.
func runOf(job *runs.Job) *bpapi.Run {
	run, ok := job.Data.(*bpapi.Run)
	if !ok {
		// A job read back from a shared store carries no API data: its
		// creation time is what tells a user which candidate is theirs.
		r := &bpapi.Run{RunID: job.ID, PromptVersionID: job.Kind, Status: bpapi.RunStatus(job.Status)}
		if !job.CreatedAt.IsZero() {
			r.CreatedAt = job.CreatedAt.UTC().Format(time.RFC3339Nano)
		}
		return r
	}
	if run.PromptVersionID != "" || job.Kind == "" {
		return run
	}
	cp := *run
	cp.PromptVersionID = job.Kind
	return &cp
}

// narrate words the engine's progress messages for BetterPrompt.
func narrate(n runs.Note) string {
	switch n.Phase {
	case runs.PhaseRecovering:
		return fmt.Sprintf("The request that starts the run failed; looking for the run in the account's run list (run_id=%s for get_run)", n.ID)
	case runs.PhasePolling:
		status := string(n.Status)
		if status == "" {
			status = "being read"
		}
		if n.Started.IsZero() {
			return fmt.Sprintf("Run %s is %s", n.ID, status)
		}
		// Counted from the run's start, not the call's: a get_run that
		// follows a long run says how long the run has taken.
		return fmt.Sprintf("Run %s is %s (%s since it started)", n.ID, status, time.Since(n.Started).Round(time.Second))
	}
	return fmt.Sprintf("Starting the run (run_id=%s for get_run if this call is cut off)", n.ID)
}

// errShuttingDown refuses a run while the server stops.
var errShuttingDown = &tools.Error{Msg: "The server is shutting down; nothing was run and no credits were spent. Try again once it is back."}

// engineError words the engine's failures for the agent.
func engineError(err error) error {
	var (
		refused    *runs.RefusedError
		cancelled  *runs.CancelledError
		unreadable *runs.UnreadableError
		read       *runs.ReadError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runs.ErrStopping):
		return errShuttingDown
	case errors.As(err, &refused):
		return refusedError(refused.Err)
	case errors.As(err, &cancelled):
		return cancelledError(cancelled)
	case errors.As(err, &unreadable):
		return tools.Failf(unreadable.Err, "Run %s could not be read just now (%s). It was started and goes on: do not "+
			"call run_prompt again for it; call get_run with run_id=%s in a moment.", unreadable.ID, briefError(unreadable.Err), unreadable.ID)
	case errors.As(err, &read):
		return readError(read)
	}
	return err
}

// refusedError is the error of a POST the API refused, or that never
// reached it: nothing was started.
func refusedError(err error) error {
	if bpapi.IsRateLimited(err) {
		return tools.Failf(err, "BetterPrompt's rate limit refused to start the run (429); nothing was started "+
			"and no credits were spent. Wait a few seconds, then call run_prompt again.")
	}
	return tools.Failf(err, "%s Nothing was run and no credits were spent.", describeError(err))
}

// cancelledError is the error of a call cancelled after its POST was sent:
// the agent must not start the run again.
func cancelledError(ce *runs.CancelledError) error {
	switch ce.State {
	case runs.StateRefused:
		return tools.Failf(errors.Join(context.Canceled, ce.Err), "The call was cancelled; BetterPrompt had refused to start the run, so nothing was spent.")
	case runs.StateNotStarted:
		return tools.Failf(context.Canceled, "The call was cancelled; no run was started and nothing was spent.")
	}
	return tools.Failf(context.Canceled, "The call was cancelled, but the run had already been submitted; it goes on upstream "+
		"(runs cannot be cancelled) and is charged. Do not call run_prompt again for it: call get_run with run_id=%s.", ce.ID)
}

// readError words a failure to read a run that ended the wait.
func readError(re *runs.ReadError) error {
	switch {
	case re.Kind == runs.Denied:
		return tools.Failf(re.Err, "%s The run id is %s: call get_run with it once that is fixed.", describeError(re.Err), re.ID)
	case re.Kind == runs.Invalid:
		return tools.Failf(re.Err, "Reading run %s failed (%s).", re.ID, briefError(re.Err))
	case re.Kind == runs.NotFound && re.ListErr != nil:
		return tools.Failf(re.Err, "Run id %s is a temporary handle from a run_prompt call served by another instance of this server "+
			"(or before a restart), and the account's runs could not be listed to find it (%s). Do not start the run again: "+
			"call get_run with it later.", re.ID, briefError(re.ListErr))
	case re.Kind == runs.NotFound:
		return tools.Failf(re.Err, "No run with id %s exists for this account. Run ids come from run_prompt; "+
			"runs started by another account are not visible.", re.ID)
	}
	return re.Err // an id the API cannot have: describeError words it
}

// briefError describes an upstream failure in a few words, without advice
// (the caller's message gives the advice).
func briefError(err error) string {
	var ae *bpapi.APIError
	if errors.As(err, &ae) {
		s := fmt.Sprintf("HTTP %d", ae.HTTPStatus)
		if ae.Code != "" {
			s += " " + ae.Code
		}
		if ae.Message != "" {
			s += ": " + ae.Message
		}
		return s
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return "no answer from the API"
}
