// Package spending holds what keeps an agent from spending more than it
// was allowed, for every toolset: a price cap per call (max_credits) and a
// budget per key over a rolling window, reserved before a run starts and
// settled with its actual charge.
package spending

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
)

// Budgets is the per-key ledger of charges; state.Budgets keeps it in
// memory, and a shared implementation holds it across replicas.
type Budgets interface {
	// Reserve reserves amount of key's budget for charge id, unless that
	// would take key past limit within window.
	Reserve(ctx context.Context, key, id string, amount, limit int, window time.Duration) (state.Spend, bool, error)
	// Settle records a reservation's actual charge.
	Settle(ctx context.Context, key, id string, actual int) error
	// Release drops a reservation whose run did not start.
	Release(ctx context.Context, key, id string) error
	// Report says where key's budget stands.
	Report(ctx context.Context, key string, limit int, window time.Duration) (state.Spend, error)
}

var _ Budgets = (*state.Budgets)(nil)

// Policy is one upstream's spending settings.
type Policy struct {
	// Upstream names the API, for messages and to keep each API's
	// budget apart ("BetterPrompt", "BetterWaifu").
	Upstream string
	// Budget is the credits each key may spend per Window; 0 means no
	// budget.
	Budget int
	// Window is the rolling window of the budget (default 24 h).
	Window time.Duration
	// Budgets keeps the charges (default: in memory).
	Budgets Budgets
}

// DefaultWindow is the budget's default window.
const DefaultWindow = 24 * time.Hour

func (p *Policy) window() time.Duration {
	if p.Window <= 0 {
		return DefaultWindow
	}
	return p.Window
}

// Init sets the defaults (an in-memory ledger) and the upstream's name.
// Call it once, before the policy is used.
func (p *Policy) Init(upstream string) {
	p.Upstream = upstream
	if p.Budgets == nil {
		p.Budgets = state.NewBudgets()
	}
}

func (p *Policy) budgets() Budgets { return p.Budgets }

func (p *Policy) key(tenant string) string { return p.Upstream + ":" + tenant }

// Reservation is the part of a key's budget a run holds until its charge is
// known. A nil Reservation (no budget) does nothing.
type Reservation struct {
	p      *Policy // nil: no budget, only a cap to report
	key    string
	id     string
	Amount int
	// Cap is the run's max_credits, for reporting a run that cost more
	// once its charge is known.
	Cap  *int
	once sync.Once
	kept []string // the ids Pending keeps it under (guarded by Pending's lock)
}

// Track returns what a run holds: its reservation with its cap, a
// reservation-less record of its cap when there is no budget, or nil when
// there is neither.
func Track(r *Reservation, maxCredits *int) *Reservation {
	switch {
	case r != nil:
		r.Cap = maxCredits
		return r
	case maxCredits != nil:
		return &Reservation{Cap: maxCredits}
	}
	return nil
}

// Check refuses, without reserving anything, a run whose estimate (nil:
// unknown) would go past what is left of tenant's budget, so that nobody is
// asked to confirm a run the budget would then refuse.
func (p *Policy) Check(ctx context.Context, tenant string, estimate *int, what string) error {
	if p == nil || p.Budget <= 0 {
		return nil
	}
	s, err := p.budgets().Report(ctx, p.key(tenant), p.Budget, p.window())
	if err != nil {
		return budgetUnreadable(err)
	}
	if s.Left <= 0 || estimate != nil && *estimate > s.Left {
		return p.refusal(s, estimate, what)
	}
	return nil
}

// CheckLeft refuses, without reserving anything, when the charges settled
// in the window used tenant's budget. Reservations in progress do not
// count: it is for runs that go one at a time and reserve at their turn,
// by which time the run before has settled.
func (p *Policy) CheckLeft(ctx context.Context, tenant, what string) error {
	if p == nil || p.Budget <= 0 {
		return nil
	}
	s, err := p.budgets().Report(ctx, p.key(tenant), p.Budget, p.window())
	if err != nil {
		return budgetUnreadable(err)
	}
	if s.Spent >= p.Budget {
		return p.refusal(s, nil, what)
	}
	return nil
}

// Reserve reserves a run's estimate of tenant's budget, or refuses the run
// with an error that gives the budget, the amount spent, what is left and
// the estimate. An unknown estimate (nil) reserves all that is left, so
// that runs whose price nobody knows go one at a time and none can take the
// key past its budget by more than its own cost. It returns nil, nil when
// there is no budget. what names the run for messages.
func (p *Policy) Reserve(ctx context.Context, tenant string, estimate *int, what string) (*Reservation, error) {
	if p == nil || p.Budget <= 0 {
		return nil, nil
	}
	key, window := p.key(tenant), p.window()
	amount := 0
	if estimate != nil {
		amount = max(*estimate, 0)
	} else {
		now, err := p.budgets().Report(ctx, key, p.Budget, window)
		if err != nil {
			return nil, budgetUnreadable(err)
		}
		amount = now.Left
		if amount <= 0 {
			return nil, p.refusal(now, estimate, what)
		}
	}
	id := newID()
	spend, ok, err := p.budgets().Reserve(ctx, key, id, amount, p.Budget, window)
	if err != nil {
		return nil, budgetUnreadable(err)
	}
	if !ok {
		return nil, p.refusal(spend, estimate, what)
	}
	return &Reservation{p: p, key: key, id: id, Amount: amount}, nil
}

func budgetUnreadable(err error) error {
	return tools.Failf(err, "The server could not read the spending budget (%v); nothing was run. Try again in a moment.", err)
}

func (p *Policy) refusal(s state.Spend, estimate *int, what string) error {
	est := "its price is not published (a run whose price is unknown needs the whole budget left)"
	if estimate != nil {
		est = fmt.Sprintf("its estimate is %d credits", *estimate)
	}
	return &tools.Error{Expected: true, Msg: fmt.Sprintf("Not run, and nothing spent: %s would go past this server's %s budget. "+
		"The budget is %d credits per %s; %d were spent and %d are reserved by runs in progress in that window, so %d are left, "+
		"and %s. Ask the user: the budget is set by whoever runs this server (--budget-credits).",
		what, p.Upstream, s.Limit, windowText(p.window()), s.Spent, s.Reserved, s.Left, est)}
}

func windowText(w time.Duration) string {
	if w%time.Hour == 0 {
		return fmt.Sprintf("%d hours", int(w.Hours()))
	}
	return w.String()
}

// Settle records the run's actual charge in place of its reservation. Only
// the first settlement or release counts.
func (r *Reservation) Settle(ctx context.Context, actual int) {
	if r == nil || r.p == nil {
		return
	}
	r.once.Do(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.p.budgets().Settle(sctx, r.key, r.id, actual)
	})
}

// Release gives the reservation back: the run did not start.
func (r *Reservation) Release(ctx context.Context) {
	if r == nil || r.p == nil {
		return
	}
	r.once.Do(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.p.budgets().Release(sctx, r.key, r.id)
	})
}

// View is a key's budget as get_credits shows it.
type View struct {
	Limit    int    `json:"limit"`
	Window   string `json:"window"`
	Spent    int    `json:"spent"`
	Reserved int    `json:"reserved"`
	Left     int    `json:"left"`
}

// JSONSchema declares a budget as a plain object, to keep tools/list small
// (it goes into every agent's context); its fields are in the README.
func (View) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

// Report returns tenant's budget, or nil when there is none.
func (p *Policy) Report(ctx context.Context, tenant string) (*View, error) {
	if p == nil || p.Budget <= 0 {
		return nil, nil
	}
	s, err := p.budgets().Report(ctx, p.key(tenant), p.Budget, p.window())
	if err != nil {
		return nil, err
	}
	return &View{Limit: s.Limit, Window: p.window().String(), Spent: s.Spent, Reserved: s.Reserved, Left: s.Left}, nil
}

// Text words a budget for a result's text.
func (v *View) Text() string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf(" Spending budget: %d of %d credits left in the last %s (%d spent, %d reserved by runs in progress).",
		v.Left, v.Limit, v.Window, v.Spent, v.Reserved)
}

// CheckCap refuses a run whose known estimate is above max_credits.
func CheckCap(maxCredits, estimate *int, what string) error {
	if maxCredits == nil || estimate == nil || *estimate <= *maxCredits {
		return nil
	}
	return &tools.Error{Expected: true, Msg: fmt.Sprintf("Not run, and nothing spent: %s is estimated at %d credits, above "+
		"max_credits=%d. Raise max_credits if the user agrees to the price, or choose a cheaper prompt.", what, *estimate, *maxCredits)}
}

// CapNotes says what a result must say about max_credits: that it could
// not be checked beforehand (no estimate), and that the run cost more.
// actual is nil until the charge is known.
func CapNotes(maxCredits, estimate, actual *int) []string {
	if maxCredits == nil {
		return nil
	}
	var notes []string
	if estimate == nil {
		notes = append(notes, fmt.Sprintf("max_credits=%d could not be checked beforehand: no price is published for this run.", *maxCredits))
	}
	if actual != nil && *actual > *maxCredits {
		notes = append(notes, fmt.Sprintf("This run cost %d credits, more than max_credits=%d.", *actual, *maxCredits))
	}
	return notes
}

// Holds reports whether r holds part of a budget (not only a cap).
func (r *Reservation) Holds() bool { return r != nil && r.p != nil }

// OverCap says that a run cost more than its cap, or "".
func (r *Reservation) OverCap(actual int) string {
	if r == nil || r.Cap == nil || actual <= *r.Cap {
		return ""
	}
	return fmt.Sprintf("This run cost %d credits, more than max_credits=%d.", actual, *r.Cap)
}

// Pending keeps, by run id (and by the handle that first stood for it),
// the reservations of runs still going when their call answered, so that
// whoever reads them when they end settles their charge. Bounded: a
// reservation that falls out stays counted at its estimate until it leaves
// the budget's window.
type Pending struct {
	mu sync.Mutex
	m  map[string]*Reservation
}

const maxPending = 4096

// Keep remembers r under ids.
func (p *Pending) Keep(r *Reservation, ids ...string) {
	if r == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPending {
		p.m = make(map[string]*Reservation)
	}
	for _, id := range ids {
		if id != "" && p.m[id] != r {
			p.m[id] = r
			r.kept = append(r.kept, id)
		}
	}
}

// Holds reports whether a reservation is kept under id.
func (p *Pending) Holds(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[id] != nil
}

// TakeID returns and forgets the reservation kept under any of ids, or nil.
func (p *Pending) TakeID(ids ...string) *Reservation {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r *Reservation
	for _, id := range ids {
		if x := p.m[id]; x != nil && id != "" {
			r = x
		}
	}
	p.forgetLocked(r)
	return r
}

// Take forgets r, under every id it was kept.
func (p *Pending) Take(r *Reservation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked(r)
}

func (p *Pending) forgetLocked(r *Reservation) {
	if r == nil {
		return
	}
	for _, id := range r.kept {
		if p.m[id] == r {
			delete(p.m, id)
		}
	}
	r.kept = nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
