package betterwaifu

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// meter measures what a generation cost: the account's balance before it
// was submitted and after it ended. Generations of a key go one at a time,
// so the difference is the generation's own charge (unless the key is used
// elsewhere at the same time). It settles the generation's reservation of
// the key's budget.
type meter struct {
	before float64 // the balance read just before submitting; NaN when unread
	res    *spending.Reservation
	cap    *int // the call's max_credits, reported when the charge is known

	once   sync.Once
	charge *int // nil until measured, or when it could not be
}

// measure reads the balance once the generation has ended and returns the
// charge (nil when it cannot be known); concurrent callers share one
// reading.
func (m *meter) measure(ctx context.Context, d *Toolset, c *bwapi.Client, tenant string) *int {
	m.once.Do(func() {
		if math.IsNaN(m.before) {
			return // unknown: the reservation stays counted in full
		}
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		a, err := d.account(mctx, c, tenant, true)
		if err != nil {
			d.logger().Warn("the charge of a BetterWaifu generation could not be read; its budget reservation stays counted", "err", err)
			return
		}
		n := max(int(math.Ceil(m.before-a.Credits)), 0)
		m.charge = &n
		m.res.Settle(ctx, n)
	})
	return m.charge
}

// meters keeps the meters of generations by id, bounded.
type meters struct {
	mu sync.Mutex
	m  map[string]*meter
}

func (ms *meters) put(id string, m *meter) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.m == nil || len(ms.m) >= maxCacheEntries {
		ms.m = make(map[string]*meter)
	}
	ms.m[id] = m
}

func (ms *meters) get(id string) *meter {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.m[id]
}

// budgetLeft refuses, before the call queues, a generation when the
// charges settled in the window used the key's budget; it reserves nothing
// (that happens at the call's turn, after the generation before settled).
func (d *Toolset) budgetLeft(ctx context.Context, tenant string) error {
	return d.Spending.CheckLeft(ctx, tenant, "a BetterWaifu generation")
}

// reserve takes what is left of the key's budget for a generation whose
// price is unknown, and reads the balance it will be measured from. It is
// called once the key's turn has come, just before submitting.
func (d *Toolset) reserve(ctx context.Context, c *bwapi.Client, tenant string, maxCredits *int) (*meter, error) {
	res, err := d.Spending.Reserve(ctx, tenant, nil, "a BetterWaifu generation")
	if err != nil {
		return nil, err
	}
	m := &meter{before: math.NaN(), res: res, cap: maxCredits}
	if res != nil || maxCredits != nil {
		if a, err := d.account(ctx, c, tenant, true); err == nil {
			m.before = a.Credits
		}
	}
	return m, nil
}

// chargeNotes says, for a generation that ended, what it cost and whether
// that was more than max_credits (which could not be checked beforehand:
// BetterWaifu publishes no price).
func (d *Toolset) chargeNotes(ctx context.Context, c *bwapi.Client, tenant string, o runs.Outcome, maxCredits *int) []string {
	var charge *int
	if o.Job != nil && o.Job.Status.Final() {
		if m := d.meters.get(o.Job.ID); m != nil {
			charge = m.measure(ctx, d, c, tenant)
			if maxCredits == nil {
				maxCredits = m.cap // followed later: the cap its generate call set
				if charge != nil && maxCredits != nil && *charge > *maxCredits {
					return []string{fmt.Sprintf("This run cost %d credits, more than max_credits=%d.", *charge, *maxCredits)}
				}
			}
		}
	}
	notes := spending.CapNotes(maxCredits, nil, charge)
	if charge != nil && (maxCredits == nil || *charge <= *maxCredits) {
		notes = append(notes, fmt.Sprintf("Charged %d credits (the account's balance before and after).", *charge))
	}
	return notes
}

// withNotes adds notes to a result's message and text.
func withNotes(r tools.Result[GenerationView], notes []string) tools.Result[GenerationView] {
	if len(notes) == 0 {
		return r
	}
	msg := strings.Join(notes, " ")
	r.Value.Message = strings.TrimSpace(r.Value.Message + " " + msg)
	r.Content = append(r.Content, mcp.NewTextContent(msg))
	return r
}

// question is what the user is asked before a generation, when a
// confirmation threshold is set: its price is unknown, so it is asked.
func (d *Toolset) question(ctx context.Context, c *bwapi.Client, tenant string) spending.Question {
	q := spending.Question{Tool: "betterwaifu_generate", Tenant: tenant, What: "an image generation on BetterWaifu"}
	if d.Confirm == nil || d.Confirm.Above <= 0 {
		return q
	}
	if a, err := d.account(ctx, c, tenant, false); err == nil {
		q.Balance = &a.Credits
	}
	if v, err := d.Spending.Report(ctx, tenant); err == nil && v != nil {
		q.Left = &v.Left
	}
	return q
}
