package state

import (
	"context"
	"sync"
	"time"
)

// Budgets keeps, per key, the credits spent in a rolling window and those
// reserved by runs not yet settled, in memory. A run reserves its estimate
// before it starts, refused when the reservation would take the key past
// its budget; it settles with its actual charge once known, or is released
// when nothing was started. A reservation never settled counts at its
// estimate until it leaves the window: unknown charges are counted, not
// forgotten.
type Budgets struct {
	mu      sync.Mutex
	ledgers map[string][]charge
}

type charge struct {
	id      string
	at      time.Time // when it was reserved: the window counts from there
	amount  int
	settled bool
}

// Spend is what a key's budget stands at.
type Spend struct {
	Limit    int // the budget for the window
	Spent    int // charges settled in the window
	Reserved int // estimates of runs not yet settled
	Left     int // Limit - Spent - Reserved, at least 0
}

// NewBudgets returns empty budgets.
func NewBudgets() *Budgets { return &Budgets{ledgers: make(map[string][]charge)} }

// liveLocked drops the charges older than window and returns the rest.
func (b *Budgets) liveLocked(key string, window time.Duration, now time.Time) []charge {
	if b.ledgers == nil {
		b.ledgers = make(map[string][]charge)
	}
	l := b.ledgers[key]
	keep := l[:0]
	for _, c := range l {
		if now.Sub(c.at) < window {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		delete(b.ledgers, key)
		return nil
	}
	b.ledgers[key] = keep
	return keep
}

func spendOf(l []charge, limit int) Spend {
	s := Spend{Limit: limit}
	for _, c := range l {
		if c.settled {
			s.Spent += c.amount
		} else {
			s.Reserved += c.amount
		}
	}
	s.Left = max(limit-s.Spent-s.Reserved, 0)
	return s
}

// Reserve reserves amount credits of key's budget for the charge id. ok
// is false, and nothing is reserved, when that would take the key past
// limit within window; Spend says where the budget stands (before the
// reservation when refused, after it otherwise).
func (b *Budgets) Reserve(_ context.Context, key, id string, amount, limit int, window time.Duration) (Spend, bool, error) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.liveLocked(key, window, now)
	s := spendOf(l, limit)
	if s.Left <= 0 || s.Spent+s.Reserved+amount > limit {
		return s, false, nil // once it is all used, not even a free run starts
	}
	b.ledgers[key] = append(l, charge{id: id, at: now, amount: amount})
	return spendOf(b.ledgers[key], limit), true, nil
}

// Settle records the actual charge of a reservation. An unknown id (it
// left the window, or was released) changes nothing.
func (b *Budgets) Settle(_ context.Context, key, id string, actual int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.ledgers[key] {
		if c.id == id {
			b.ledgers[key][i].amount, b.ledgers[key][i].settled = max(actual, 0), true
			return nil
		}
	}
	return nil
}

// Release drops a reservation whose run did not start: nothing was spent.
func (b *Budgets) Release(_ context.Context, key, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.ledgers[key]
	for i, c := range l {
		if c.id == id {
			b.ledgers[key] = append(l[:i:i], l[i+1:]...)
			return nil
		}
	}
	return nil
}

// Report says where key's budget stands.
func (b *Budgets) Report(_ context.Context, key string, limit int, window time.Duration) (Spend, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return spendOf(b.liveLocked(key, window, time.Now()), limit), nil
}
