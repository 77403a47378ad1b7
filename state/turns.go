package state

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Turns keeps, per key, the line of callers of an upstream that runs one
// job at a time and needs a cooldown between jobs (BetterWaifu: one active
// generation per key, 60 s between generations). At most one caller holds
// a key's turn; callers get it first come, first served; and a turn is
// granted only once the previous job's cooldown has passed. In memory.
//
// A turn is held from the moment it is granted until Finish says when the
// next may start (the job's completion, or its refusal, plus the cooldown),
// or until MaxHold has passed: a holder that never finishes (a bug, a lost
// replica in a shared implementation) cannot block the key for ever.
type Turns struct {
	// Cooldown is the least time between the end of one job and the
	// start of the next.
	Cooldown time.Duration
	// MaxHold bounds how long a turn is held without Finish (default 30
	// minutes); the next turn then starts after it plus Cooldown.
	MaxHold time.Duration

	mu        sync.Mutex
	lines     map[string]*line
	next      uint64
	lastSweep time.Time
}

type line struct {
	queue   []string  // tickets waiting, in arrival order
	holder  string    // the ticket holding the turn, "" when none
	heldAt  time.Time // when the holder got it
	started bool      // the holder's job has started (Started)
	freeAt  time.Time // the next turn starts no earlier
	changed chan struct{}
}

// TurnState is what a caller in line learns from Try.
type TurnState struct {
	// Granted: the caller holds the turn and may start its job.
	Granted bool
	// Ahead is how many callers are before this one in line.
	Ahead int
	// Busy: another caller's job holds the turn.
	Busy bool
	// Earliest is when this caller's turn can come at the soonest if the
	// callers ahead all run their jobs: the cooldown after a job in
	// progress (which ends no earlier than now), then one cooldown per
	// caller ahead. It is sooner when a caller ahead leaves or has its job
	// refused; a holder whose job has not started counts for nothing.
	Earliest time.Time
	// FreeAt is when the current cooldown ends (zero: none, or a job is
	// in progress).
	FreeAt time.Time
	// Changed is closed at the next change of the line; nil when the
	// implementation cannot tell (poll instead).
	Changed <-chan struct{}
}

// ErrNotInLine is Try's error for a ticket the line does not hold (it
// left, or its key's state was lost).
var ErrNotInLine = errors.New("not in line for this key")

// NewTurns returns an empty set of lines with the given cooldown.
func NewTurns(cooldown time.Duration) *Turns {
	return &Turns{Cooldown: cooldown, lines: make(map[string]*line)}
}

func (t *Turns) lineLocked(key string, now time.Time) *line {
	if t.lines == nil {
		t.lines = make(map[string]*line)
	}
	l := t.lines[key]
	if l == nil {
		l = &line{changed: make(chan struct{})}
		t.lines[key] = l
	}
	maxHold := t.MaxHold
	if maxHold <= 0 {
		maxHold = 30 * time.Minute
	}
	if l.holder != "" && now.Sub(l.heldAt) > maxHold {
		l.holder, l.started = "", false
		l.freeAt = later(l.freeAt, l.heldAt.Add(maxHold+t.Cooldown))
		l.notify()
	}
	return l
}

func (l *line) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Enter puts a caller at the end of key's line and returns its ticket.
func (t *Turns) Enter(_ context.Context, key string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(time.Now())
	l := t.lineLocked(key, time.Now())
	t.next++
	ticket := strconv.FormatUint(t.next, 10)
	l.queue = append(l.queue, ticket)
	return ticket, nil
}

// Try grants the turn to ticket when it is first in line, no job holds the
// turn and the cooldown has passed; otherwise it says where the caller
// stands.
func (t *Turns) Try(_ context.Context, key, ticket string) (TurnState, error) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lineLocked(key, now)
	if l.holder == ticket {
		return TurnState{Granted: true, Changed: l.changed}, nil
	}
	pos := -1
	for i, q := range l.queue {
		if q == ticket {
			pos = i
			break
		}
	}
	if pos < 0 {
		return TurnState{}, ErrNotInLine
	}
	if pos == 0 && l.holder == "" && !now.Before(l.freeAt) {
		l.queue = l.queue[1:]
		l.holder, l.heldAt = ticket, now
		l.notify()
		return TurnState{Granted: true, Changed: l.changed}, nil
	}
	st := TurnState{Ahead: pos, Busy: l.holder != "", Changed: l.changed}
	base := later(now, l.freeAt)
	switch {
	case st.Busy && l.started:
		// The job in progress ends no earlier than now, and the cooldown
		// counts from its end.
		base = later(base, now.Add(t.Cooldown))
	case !st.Busy && l.freeAt.After(now):
		st.FreeAt = l.freeAt
	}
	st.Earliest = base.Add(time.Duration(pos) * t.Cooldown)
	return st, nil
}

// Started records that the holder's job has started: the next turn then
// comes no sooner than the cooldown after now.
func (t *Turns) Started(_ context.Context, key, ticket string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lineLocked(key, time.Now())
	if l.holder == ticket && !l.started {
		l.started = true
		l.notify()
	}
	return nil
}

// Leave takes a caller that has not got the turn out of line (its call
// ended); the callers behind move up. It is safe to call for a ticket that
// is no longer in line.
func (t *Turns) Leave(_ context.Context, key, ticket string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lineLocked(key, time.Now())
	for i, q := range l.queue {
		if q == ticket {
			l.queue = append(l.queue[:i:i], l.queue[i+1:]...)
			l.notify()
			break
		}
	}
	t.dropIdleLocked(key, l)
	return nil
}

// Finish ends ticket's turn: the next starts no earlier than freeAt (the
// job's end plus the cooldown; zero when nothing was started, so the
// cooldown before it still holds). A ticket that no longer holds the turn
// (its hold expired) changes nothing: it is the fence against a holder
// that stalled past MaxHold.
func (t *Turns) Finish(_ context.Context, key, ticket string, freeAt time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lineLocked(key, time.Now())
	if l.holder != ticket {
		return nil
	}
	l.holder, l.started = "", false
	l.freeAt = later(l.freeAt, freeAt)
	l.notify()
	t.dropIdleLocked(key, l)
	return nil
}

// Defer moves key's next turn to until at the earliest, as the upstream
// asked (a 429 with Retry-After).
func (t *Turns) Defer(_ context.Context, key string, until time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lineLocked(key, time.Now())
	if until.After(l.freeAt) {
		l.freeAt = until
		l.notify()
	}
	return nil
}

// sweepLocked forgets, at most once a minute, every line with no one in it
// whose cooldown has passed: a key seen once does not stay in memory.
func (t *Turns) sweepLocked(now time.Time) {
	if now.Sub(t.lastSweep) < time.Minute {
		return
	}
	t.lastSweep = now
	for key, l := range t.lines {
		t.dropIdleLocked(key, l)
	}
}

// dropIdleLocked forgets a line with no one in it whose cooldown has
// passed, so that keys seen once do not stay in memory.
func (t *Turns) dropIdleLocked(key string, l *line) {
	if len(l.queue) == 0 && l.holder == "" && !time.Now().Before(l.freeAt) {
		delete(t.lines, key)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
