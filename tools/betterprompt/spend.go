package betterprompt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	if d.Confirm.Asks(sp.estimate) {
		// Before asking the user about a run the budget would refuse
		// (without a question, the reservation below checks it).
		if err := d.Spending.Check(ctx, tenant, sp.estimate, what); err != nil {
			return nil, err
		}
		if err := d.Confirm.Confirm(ctx, d.question(ctx, c, tenant, pv, sp.estimate)); err != nil {
			return nil, err
		}
	}
	res, err := d.Spending.Reserve(ctx, tenant, sp.estimate, what)
	if err != nil {
		return nil, err
	}
	sp.res = spending.Track(res, maxCredits)
	return sp, nil
}

// started keeps the reservation under the run id the API gave, so that
// whoever reads the run when it ends settles its charge, and follows the
// run in case nobody does.
func (d *Toolset) started(c *bpapi.Client, sp *spend, runID string) {
	if sp.res == nil {
		return
	}
	d.pending.Keep(sp.res, runID)
	if sp.res.Holds() {
		d.settleLater(c, runID)
	}
}

// afterRun settles, releases or keeps a run's reservation, from what its
// call learnt. c reads the run later when it outlives the call.
func (d *Toolset) afterRun(ctx context.Context, c *bpapi.Client, sp *spend, o runs.Outcome, err error) {
	if sp.res == nil {
		return
	}
	var (
		refused   *runs.RefusedError
		cancelled *runs.CancelledError
	)
	switch {
	case o.Joined:
		// A replay: its first delivery's reservation covers the run.
		d.drop(ctx, sp.res)
	case errors.As(err, &refused), errors.Is(err, runs.ErrStopping):
		d.drop(ctx, sp.res)
	case errors.As(err, &cancelled) && (cancelled.State == runs.StateRefused || cancelled.State == runs.StateNotStarted):
		d.drop(ctx, sp.res)
	case errors.As(err, &cancelled):
		d.pending.Keep(sp.res, cancelled.ID) // started() follows it when the API named it
	case err != nil:
		// The run's fate is not known here: its estimate stays counted.
	case o.Job != nil && o.Job.Status.Final():
		settle(ctx, sp.res, runOf(o.Job))
		d.pending.Take(sp.res)
	case o.Job != nil:
		d.pending.Keep(sp.res, o.Job.ID, o.Handle)
		if sp.res.Holds() {
			d.settleLater(c, o.Job.ID) // a second follower of the same run exits when the first settles it
		}
	case o.State == runs.StateNotStarted:
		d.drop(ctx, sp.res)
	default:
		d.pending.Keep(sp.res, o.Handle)
	}
}

// drop gives a reservation back: its run did not start (or is another
// call's).
func (d *Toolset) drop(ctx context.Context, r *spending.Reservation) {
	r.Release(ctx)
	d.pending.Take(r)
}

// settle records a finished run's charge; a run that gives no figure stays
// counted at its reservation.
func settle(ctx context.Context, r *spending.Reservation, run *bpapi.Run) {
	if run.Tokens == nil && run.Credits == nil {
		r.Settle(ctx, r.Amount)
		return
	}
	r.Settle(ctx, run.Cost())
}

// settleLater follows a run that outlived its call until it ends, to
// settle its reservation, so that a run nobody reads again does not hold
// the budget for the whole window. It stops at shutdown, after 30 minutes,
// or when get_run settled it first.
func (d *Toolset) settleLater(c *bpapi.Client, runID string) {
	if runID == "" || !d.pending.Holds(runID) {
		return
	}
	if _, following := d.following.LoadOrStore(runID, true); following {
		return
	}
	stop := d.runEngine().Stopping()
	d.settlers.Add(1)
	go func() {
		defer d.settlers.Done()
		defer d.following.Delete(runID)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		end := time.Now().Add(30 * time.Minute)
		for interval := time.Second; time.Now().Before(end); interval = min(interval*2, time.Minute) {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return
			}
			if !d.pending.Holds(runID) {
				return // get_run settled it
			}
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			run, err := c.GetRun(rctx, runID)
			rcancel()
			switch {
			case err == nil && run.Status.Final():
				if r := d.pending.TakeID(runID); r != nil {
					settle(ctx, r, run)
				}
				return
			case bpapi.IsNotFound(err), bpapi.IsUnauthorized(err):
				return // its estimate stays counted
			}
		}
	}()
}

// settleFollowed settles the reservation of a run get_run found ended (or
// never started), when this process made one, and says whether the run
// cost more than the cap its run_prompt call set.
func (d *Toolset) settleFollowed(ctx context.Context, id string, o runs.Outcome) string {
	switch {
	case o.Job != nil && o.Job.Status.Final():
		if r := d.pending.TakeID(id, o.Job.ID); r != nil {
			run := runOf(o.Job)
			settle(ctx, r, run)
			return r.OverCap(run.Cost())
		}
	case o.Job == nil && o.State == runs.StateNotStarted:
		if r := d.pending.TakeID(id, o.Handle); r != nil {
			r.Release(ctx)
		}
	}
	return ""
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

// question is what the user is asked before a run above the confirmation
// threshold: the prompt, its price, the balance and the budget left.
func (d *Toolset) question(ctx context.Context, c *bpapi.Client, tenant string, pv *bpapi.PromptVersion, estimate *int) spending.Question {
	q := spending.Question{Tool: "run_prompt", Tenant: tenant, Subject: pv.PromptVersionID,
		What: fmt.Sprintf("%q on BetterPrompt", pv.Title), Estimate: estimate}
	if n, err := c.Credits(ctx); err == nil {
		b := float64(n)
		q.Balance = &b
	}
	if v, err := d.Spending.Report(ctx, tenant); err == nil && v != nil {
		q.Left = &v.Left
	}
	return q
}
