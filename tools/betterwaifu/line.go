package betterwaifu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
)

// The key's line: waiting for a turn, holding it while a generation runs,
// and giving it back with the cooldown.

// turn is a key's turn, held by one call from the moment it is granted
// until its generation ends (afterStart), or given back unused.
type turn struct {
	key, ticket string
	mu          sync.Mutex
	used, ended bool
}

// begin marks the turn used by a start request; false when it was already
// given back (the call ended first).
func (t *turn) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.used = true
	return true
}

// endIfUnused gives back a turn no start request used (a replay joined
// another submission), and reports whether it did; a start that begins
// later is not sent.
func (t *turn) endIfUnused(d *Toolset) bool {
	t.mu.Lock()
	unused := !t.used && !t.ended
	t.ended = true
	t.mu.Unlock()
	if unused {
		d.finishTurn(t, time.Time{})
	}
	return unused
}

func (d *Toolset) finishTurn(t *turn, freeAt time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), runs.LateWork)
	defer cancel()
	if err := d.Turns.Finish(ctx, t.key, t.ticket, freeAt); err != nil {
		d.logger().Warn("giving back a BetterWaifu turn failed; it ends when its hold expires", "err", err)
	}
}

// afterStart decides when the key's next turn may start, from what the
// start request's answer says.
func (d *Toolset) afterStart(c *bwapi.Client, t *turn, m *meter, submitted time.Time, g *bwapi.Generation, err error) {
	busy, retryAfter := bwapi.IsBusy(err)
	switch {
	case err == nil:
		sctx, cancel := context.WithTimeout(context.Background(), runs.LateWork)
		_ = d.Turns.Started(sctx, t.key, t.ticket)
		cancel()
		d.followers.Add(1)
		go func() {
			defer d.followers.Done()
			d.follow(c, t, m, submitted, g.ID)
		}()
	case busy:
		// The API is the source of truth: something else holds the key.
		if retryAfter <= 0 {
			retryAfter = d.Cooldown
		}
		ctx, cancel := context.WithTimeout(context.Background(), runs.LateWork)
		_ = d.Turns.Defer(ctx, t.key, time.Now().Add(retryAfter))
		cancel()
		d.finishTurn(t, time.Time{})
		m.res.Release(context.Background())
	case errors.Is(err, bwapi.ErrOutcomeUnknown), errors.Is(err, bwapi.ErrNoID), upstream{c}.Classify(err).Kind == runs.OutcomeUnknown:
		// It may have started: hold the key as if it had.
		d.Metrics.RunEnded(apiName, "unknown@"+submitted.Format(time.RFC3339Nano), "unconfirmed", -1)
		d.logger().Warn("a BetterWaifu generation may have started without its id reaching this server; "+
			"the key's next generation waits as if it had", "submitted_at", submitted.UTC().Format(time.RFC3339), "err", err)
		d.finishTurn(t, submitted.Add(unknownHold+d.Cooldown))
	default:
		d.finishTurn(t, time.Time{}) // refused: nothing started, no cooldown
		m.res.Release(context.Background())
	}
}

// follow reads a generation until it ends, then gives back the key's turn
// with the cooldown counted from the later of its submission and its end
// (the documentation does not say which counts). A generation that cannot
// be read for good (404, 401, 403) gives the turn back after a few tries,
// with the cooldown counted from then.
func (d *Toolset) follow(c *bwapi.Client, t *turn, m *meter, submitted time.Time, id string) {
	end := submitted.Add(maxFollow)
	failures := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop: // shutting down: a reading in flight has nothing to report
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		g, err := c.Generation(rctx, id)
		rcancel()
		now := time.Now()
		switch {
		case err == nil && g.Status.Final():
			charge := -1
			if n := m.measure(ctx, d, c, t.key); n != nil {
				charge = *n
			}
			d.Metrics.RunEnded(apiName, id, string(g.Status), charge)
			d.finishTurn(t, later(submitted, now).Add(d.Cooldown))
			return
		case err != nil && (bwapi.IsNotFound(err) || bwapi.IsUnauthorized(err) || bwapi.IsForbidden(err)):
			failures++
		case err == nil:
			failures = 0
		}
		if failures >= 5 || now.After(end) {
			d.logger().Warn("a BetterWaifu generation could not be followed to its end; its key's turn is given back",
				"generation_id", id, "err", err)
			d.finishTurn(t, now.Add(d.Cooldown))
			return
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return // shutting down: the in-memory line goes with the process
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// awaitTurn waits in the key's line until the call's turn comes, sending
// progress; it refuses at once when the turn cannot come before the
// deadline. Nothing is sent to BetterWaifu while waiting.
func (d *Toolset) awaitTurn(ctx context.Context, key, ticket string, deadline time.Time, progress *tools.Progress) error {
	stop := d.runEngine().Stopping()
	tick := d.ProgressEvery
	if tick <= 0 {
		tick = 3 * time.Second
	}
	for {
		if ctx.Err() != nil {
			return tools.Failf(ctx.Err(), "The call ended while waiting for its turn; nothing was submitted and nothing was spent.")
		}
		st, err := d.Turns.Try(ctx, key, ticket)
		if err != nil {
			return tools.Failf(err, "The server lost this call's place in line (%v); nothing was submitted. Try again.", err)
		}
		if st.Granted {
			return nil
		}
		now := time.Now()
		if st.Earliest.After(deadline) || !now.Before(deadline) {
			return d.noSlotError(st, now)
		}
		progress.Send(ctx, lineMessage(st, now))
		next := min(tick, time.Until(deadline))
		if !st.FreeAt.IsZero() {
			next = min(next, time.Until(st.FreeAt))
		}
		timer := time.NewTimer(max(next, 10*time.Millisecond))
		select {
		case <-st.Changed:
		case <-timer.C:
		case <-stop:
			timer.Stop()
			return errShuttingDown
		case <-ctx.Done():
		}
		timer.Stop()
	}
}

// leaveLine takes a caller that did not get its turn out of line.
func (d *Toolset) leaveLine(ctx context.Context, key, ticket string) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runs.LateWork)
	defer cancel()
	if err := d.Turns.Leave(lctx, key, ticket); err != nil {
		d.logger().Warn("leaving a BetterWaifu line failed; the place is dropped when its key's line is next read", "err", err)
	}
}

// lineMessage is the progress message of a caller in line.
func lineMessage(st state.TurnState, now time.Time) string {
	ahead := ""
	if st.Ahead > 0 {
		ahead = fmt.Sprintf(" (%s ahead in line)", plural(st.Ahead, "call", "calls"))
	}
	switch {
	case st.Busy:
		return "Waiting for the previous generation with this key to finish" + ahead
	case !st.FreeAt.IsZero():
		return fmt.Sprintf("Next generation slot in %s (BetterWaifu allows one generation per cooldown)%s", seconds(st.FreeAt.Sub(now)), ahead)
	}
	return "Waiting for the generation slot" + ahead
}

// noSlotError refuses a call whose turn cannot come within its wait.
func (d *Toolset) noSlotError(st state.TurnState, now time.Time) error {
	when := fmt.Sprintf("at about %s UTC (in about %s) if the generations before it run", st.Earliest.UTC().Format("15:04:05"), seconds(st.Earliest.Sub(now)))
	why := fmt.Sprintf("BetterWaifu runs one generation at a time per key, %s apart", seconds(d.Cooldown))
	if st.Ahead > 0 {
		why += fmt.Sprintf(", and %s ahead of this one", plural(st.Ahead, "call is", "calls are"))
	}
	return &tools.Error{Expected: true, Msg: fmt.Sprintf("Nothing was submitted and nothing was spent: %s. This call's turn "+
		"would come %s, after its wait. Call betterwaifu_generate again then, or with a longer wait_seconds.", why, when)}
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%d s", int(math.Ceil(max(d, 0).Seconds())))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// waitFor turns wait_seconds into a wait within the configured bounds.
func (d *Toolset) waitFor(s *float64) time.Duration {
	switch {
	case s == nil:
		return d.WaitDefault
	case *s >= d.WaitMax.Seconds():
		return d.WaitMax
	case !(*s >= 0):
		return 0
	}
	return time.Duration(*s * float64(time.Second))
}
