package betterprompt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// spend is what run_prompt checked of a run's price before sending it: the
// estimate (nil when unknown), the caller's max_credits and the budget the
// run reserved.
type spend struct {
	estimate, max *int
	res           *spending.Reservation
}

// checkSpend refuses, before anything is sent, a run whose estimate is
// above max_credits or would go past the key's budget, and reserves the
// budget for it.
func (d *Toolset) checkSpend(ctx context.Context, c *bpapi.Client, tenant string, pv *bpapi.PromptVersion, maxCredits *int) (*spend, error) {
	sp := &spend{max: maxCredits}
	if maxCredits == nil && d.Spending.Budget <= 0 && (d.Confirm == nil || d.Confirm.Above <= 0) {
		return sp, nil
	}
	f := d.facts.get(pv.PromptID).forVersion(pv.PromptVersionID)
	if f.EstimatedCredits == nil {
		f = d.factsFor(ctx, c, pv).forVersion(pv.PromptVersionID)
	}
	sp.estimate = f.EstimatedCredits
	what := fmt.Sprintf("a run of %q", pv.Title)
	if err := spending.CheckCap(maxCredits, sp.estimate, what); err != nil {
		return nil, err
	}
	if err := d.Confirm.Confirm(ctx, d.question(ctx, c, tenant, pv, sp.estimate)); err != nil {
		return nil, err
	}
	res, err := d.Spending.Reserve(ctx, tenant, sp.estimate, what)
	if err != nil {
		return nil, err
	}
	sp.res = res
	return sp, nil
}

// started keeps the reservation under the run id the API gave, so that
// whoever reads the run when it ends settles its charge.
func (d *Toolset) started(sp *spend, runID string) { d.pending.Keep(sp.res, runID) }

// afterRun settles, releases or keeps a run's reservation, from what its
// call learnt.
func (d *Toolset) afterRun(ctx context.Context, sp *spend, o runs.Outcome, err error) {
	if sp.res == nil {
		return
	}
	var (
		refused   *runs.RefusedError
		cancelled *runs.CancelledError
	)
	switch {
	case errors.As(err, &refused), errors.Is(err, runs.ErrStopping):
		sp.res.Release(ctx)
		d.pending.Take(sp.res)
	case errors.As(err, &cancelled) && (cancelled.State == runs.StateRefused || cancelled.State == runs.StateNotStarted):
		sp.res.Release(ctx)
		d.pending.Take(sp.res)
	case errors.As(err, &cancelled):
		d.pending.Keep(sp.res, cancelled.ID)
	case err != nil:
		// The run's fate is not known here: its estimate stays counted.
	case o.Job != nil && o.Job.Status.Final():
		sp.res.Settle(ctx, runOf(o.Job).Cost())
		d.pending.Take(sp.res)
	case o.Job != nil:
		d.pending.Keep(sp.res, o.Job.ID, o.Handle)
	case o.State == runs.StateNotStarted:
		sp.res.Release(ctx)
		d.pending.Take(sp.res)
	default:
		d.pending.Keep(sp.res, o.Handle)
	}
}

// settleFollowed settles the reservation of a run get_run found ended (or
// never started), when this process made one.
func (d *Toolset) settleFollowed(ctx context.Context, id string, o runs.Outcome) {
	switch {
	case o.Job != nil && o.Job.Status.Final():
		if r := d.pending.TakeID(id, o.Job.ID); r != nil {
			r.Settle(ctx, runOf(o.Job).Cost())
		}
	case o.Job == nil && o.State == runs.StateNotStarted:
		if r := d.pending.TakeID(id, o.Handle); r != nil {
			r.Release(ctx)
		}
	}
}

// withCapNotes says in a run_prompt result what max_credits could not
// check beforehand, and whether the run cost more.
func withCapNotes(r tools.Result[RunView], sp *spend) tools.Result[RunView] {
	notes := spending.CapNotes(sp.max, sp.estimate, r.Value.Credits)
	if len(notes) == 0 {
		return r
	}
	msg := strings.Join(notes, " ")
	r.Value.Message = strings.TrimSpace(r.Value.Message + " " + msg)
	r.Content = append(r.Content, mcp.NewTextContent(msg))
	return r
}

// budgetText is the key's budget in a get_credits text, or "".
func (d *Toolset) budgetView(ctx context.Context, tenant string) (*spending.View, error) {
	v, err := d.Spending.Report(ctx, tenant)
	if err != nil {
		return nil, tools.Failf(err, "The server could not read the spending budget (%v). Try again in a moment.", err)
	}
	return v, nil
}

// question is what the user is asked before a run above the confirmation
// threshold: the prompt, its price, the balance and the budget left.
func (d *Toolset) question(ctx context.Context, c *bpapi.Client, tenant string, pv *bpapi.PromptVersion, estimate *int) spending.Question {
	q := spending.Question{Tool: "run_prompt", Tenant: tenant, What: fmt.Sprintf("%q on BetterPrompt", pv.Title), Estimate: estimate}
	if d.Confirm == nil || d.Confirm.Above <= 0 || estimate != nil && *estimate <= d.Confirm.Above {
		return q // no question: nothing more to read
	}
	if n, err := c.Credits(ctx); err == nil {
		b := float64(n)
		q.Balance = &b
	}
	if v, err := d.Spending.Report(ctx, tenant); err == nil && v != nil {
		q.Left = &v.Left
	}
	return q
}
