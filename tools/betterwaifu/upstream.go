package betterwaifu

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/internal/cassette"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
)

// upstream is BetterWaifu's generations as the run engine sees them, bound
// to one caller's client. It has no list of generations (runs.ErrNoJobList).
type upstream struct{ c *bwapi.Client }

var _ runs.Upstream = upstream{}

// Get reads a generation.
func (u upstream) Get(ctx context.Context, id string) (*runs.Job, error) {
	g, err := u.c.Generation(ctx, id)
	if err != nil {
		return nil, err
	}
	job := jobOf(g, "")
	return &job, nil
}

// List fails: BetterWaifu cannot list generations.
func (upstream) List(context.Context, time.Time, time.Time) ([]runs.Job, error) {
	return nil, runs.ErrNoJobList
}

// Classify reads a BetterWaifu failure. A 429 to a start is a plain
// refusal: the limits are kept locally, and the start is not sent again
// (the caller is told when the next slot opens).
func (upstream) Classify(err error) runs.Failure {
	var ae *bwapi.APIError
	switch {
	case errors.Is(err, bwapi.ErrOutcomeUnknown), errors.Is(err, bwapi.ErrNoID):
		return runs.Failure{Kind: runs.OutcomeUnknown}
	case bwapi.IsUnauthorized(err), bwapi.IsPaymentRequired(err), bwapi.IsForbidden(err):
		return runs.Failure{Kind: runs.Denied}
	case bwapi.IsNotFound(err):
		return runs.Failure{Kind: runs.NotFound}
	case errors.As(err, &ae) && (ae.Status == http.StatusTooManyRequests || ae.Status >= 300 && ae.Status < 400):
		// A 429, or a redirect (not followed: the request went nowhere).
		return runs.Failure{Kind: runs.Refused}
	case errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500:
		return runs.Failure{Kind: runs.Invalid}
	case errors.As(err, &ae) && ae.Method == http.MethodPost:
		// A 5xx to a start: the generation may have been created.
		return runs.Failure{Kind: runs.OutcomeUnknown}
	}
	return runs.Failure{Kind: runs.Transient}
}

// jobOf is a generation as the engine sees it; Data keeps the generation.
// An undocumented status is taken as still running.
func jobOf(g *bwapi.Generation, kind string) runs.Job {
	job := runs.Job{ID: g.ID, Kind: kind, Data: g}
	switch g.Status {
	case bwapi.Queued:
		job.Status = runs.Queued
		if g.QueuePosition != nil {
			job.Detail = fmt.Sprintf("position %d in the queue", *g.QueuePosition)
		}
	case bwapi.Succeeded:
		job.Status = runs.Succeeded
	case bwapi.Failed:
		job.Status = runs.Failed
	default:
		job.Status = runs.Running
	}
	return job
}

// generationOf is the generation behind a job.
func generationOf(job *runs.Job) *bwapi.Generation {
	if g, ok := job.Data.(*bwapi.Generation); ok {
		return g
	}
	st := bwapi.Status(job.Status)
	if job.Status == runs.Running {
		st = bwapi.Processing
	}
	return &bwapi.Generation{ID: job.ID, Status: st}
}

// narrate words the engine's progress messages for BetterWaifu.
func narrate(n runs.Note) string {
	switch n.Phase {
	case runs.PhaseRecovering:
		return fmt.Sprintf("The request that starts the generation failed; generation_id=%s", n.ID)
	case runs.PhasePolling:
		switch {
		case n.Status == runs.Queued && n.Detail != "":
			return fmt.Sprintf("Generation %s is queued, %s", n.ID, n.Detail)
		case n.Status == runs.Running:
			return fmt.Sprintf("Generation %s is processing", n.ID)
		case n.Status == "":
			return fmt.Sprintf("Generation %s is being read", n.ID)
		}
		return fmt.Sprintf("Generation %s is %s", n.ID, n.Status)
	}
	return fmt.Sprintf("Submitting the generation (generation_id=%s if this call is cut off)", n.ID)
}

// describeError words a BetterWaifu failure for the agent: what went wrong
// and what to do next.
func describeError(err error) string {
	if errors.Is(err, state.ErrUnavailable) {
		return "The server's shared state store cannot be reached, so the guards that protect your credits (the key's " +
			"line, the budget) cannot be checked; nothing was submitted or spent. Try again in a moment."
	}
	var ae *bwapi.APIError
	if !errors.As(err, &ae) {
		if errors.Is(err, context.DeadlineExceeded) {
			return "BetterWaifu did not answer in time. Try again in a moment."
		}
		return "BetterWaifu could not be reached (" + err.Error() + "). Check the network and BETTERWAIFU_BASE_URL, then try again."
	}
	msg := ae.Message
	switch {
	case strings.HasPrefix(msg, cassette.MissPrefix):
		return msg // --replay has no recording of the request: its message says which, and what to do
	case bwapi.IsModeration(err):
		return "BetterWaifu's moderation flagged the prompt (" + msg + "). Revise the prompt, removing what may have been " +
			"flagged; sending it again unchanged will be refused again."
	case bwapi.IsUnauthorized(err):
		return "BetterWaifu rejected the API key (401: " + msg + "). Check BETTERWAIFU_API_KEY; keys are made in the web app " +
			"(avatar → Settings → API Key)."
	case bwapi.IsPaymentRequired(err):
		return "BetterWaifu refused for lack of credits (402: " + msg + "). betterwaifu_get_account shows the balance."
	case bwapi.IsForbidden(err):
		return "BetterWaifu refused (403: " + msg + "): the API needs an active subscription, and a plan may not allow " +
			"every model. betterwaifu_get_account shows the subscription."
	case bwapi.IsNotFound(err) && ae.Method == http.MethodPost:
		return "BetterWaifu answered 404 to the generation request (" + msg + "): check BETTERWAIFU_BASE_URL (it ends in /api/v1)."
	case bwapi.IsNotFound(err):
		return "Not found (404: " + msg + "). Generation ids come from betterwaifu_generate."
	case ae.Status == http.StatusTooManyRequests:
		return "BetterWaifu is busy for this key (429: " + msg + "): it runs one generation at a time, 60 s apart."
	case ae.Status == http.StatusBadRequest && ae.Method == http.MethodPost:
		return "BetterWaifu refused the request (400: " + msg + "). The API documents no ranges for sizes, steps or " +
			"cfg_scale: try values closer to the examples (832×1216, 30 steps, cfg_scale 7, sampler euler_a)."
	}
	return fmt.Sprintf("BetterWaifu answered HTTP %d (%s). The service may be having trouble; try again in a moment.", ae.Status, msg)
}

// errShuttingDown refuses a generation while the server stops.
var errShuttingDown = &tools.Error{Msg: "The server is shutting down; nothing was submitted and nothing was spent. Try again once it is back."}

// engineError words the engine's failures for the agent.
func (d *Toolset) engineError(err error) error {
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
		if busy, after := bwapi.IsBusy(refused.Err); busy {
			if after <= 0 {
				after = d.Cooldown
			}
			return tools.Failf(refused.Err, "BetterWaifu refused the generation: a generation of this key is still active "+
				"or cooling down (429), perhaps one started elsewhere (the web app, another client). Nothing was started. "+
				"This server holds this key's next generation until about %s UTC (in %s); call betterwaifu_generate again then.",
				time.Now().Add(after).UTC().Format("15:04:05"), seconds(after))
		}
		if errors.Is(refused.Err, errTurnLost) {
			return tools.Failf(refused.Err, "The call ended before its generation was submitted; nothing was started or spent.")
		}
		return tools.Failf(refused.Err, "%s Nothing was generated and nothing was spent.", strings.TrimSpace(describeError(refused.Err)))
	case errors.As(err, &cancelled):
		if cancelled.State == runs.StateRefused || cancelled.State == runs.StateNotStarted {
			return tools.Failf(context.Canceled, "The call was cancelled; nothing was generated or spent.")
		}
		return tools.Failf(context.Canceled, "The call was cancelled after the generation was submitted: unless BetterWaifu "+
			"refuses it, it goes on (generations cannot be cancelled) and will be charged. Follow it with "+
			"betterwaifu_get_generation, generation_id=%s, before starting another.", cancelled.ID)
	case errors.As(err, &unreadable):
		return tools.Failf(unreadable.Err, "Generation %s could not be read just now (%s). It was started and goes on: call "+
			"betterwaifu_get_generation with it in a moment.", unreadable.ID, describeError(unreadable.Err))
	case errors.As(err, &read):
		if read.Kind == runs.NotFound {
			return tools.Failf(read.Err, "No generation with id %s exists for this key. Generation ids come from betterwaifu_generate.", read.ID)
		}
		return tools.Failf(read.Err, "%s", describeError(read.Err))
	}
	return err
}
