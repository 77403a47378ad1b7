package bpapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterRegistry holds one token-bucket limiter per API key, shared by every
// Client derived from one New call. Keys are stored as their sha256, never
// in plain form.
type limiterRegistry struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	byKey     map[[32]byte]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

// Idle limiters are dropped once the registry holds more than sweepAbove
// keys, at most once per sweepEvery. An entry idle for idleAfter has long
// refilled its bucket, so a fresh limiter behaves exactly the same.
const (
	sweepAbove = 1024
	sweepEvery = time.Minute
	idleAfter  = 10 * time.Minute
)

func newLimiterRegistry(perSecond float64, burst int) *limiterRegistry {
	return &limiterRegistry{
		limit: rate.Limit(perSecond),
		burst: burst,
		byKey: make(map[[32]byte]*limiterEntry),
	}
}

// get returns the limiter of the key whose sha256 is h, creating it if
// needed.
func (r *limiterRegistry) get(h [32]byte) *rate.Limiter {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byKey[h]
	if !ok {
		if len(r.byKey) >= sweepAbove && now.Sub(r.lastSweep) >= sweepEvery {
			r.lastSweep = now
			for k, old := range r.byKey {
				if now.Sub(old.lastUsed) >= idleAfter {
					delete(r.byKey, k)
				}
			}
		}
		e = &limiterEntry{lim: rate.NewLimiter(r.limit, r.burst)}
		r.byKey[h] = e
	}
	e.lastUsed = now
	return e.lim
}

// waitLimiter blocks until the client's key may send one more request. It
// returns an error wrapping the context's error when ctx ends first, or
// context.DeadlineExceeded when the wait would outlast ctx's deadline.
func (c *Client) waitLimiter(ctx context.Context) error {
	if c.limiters == nil {
		return ctx.Err()
	}
	lim := c.limiters.get(c.cred.hash)
	if err := lim.Wait(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		// rate.Limiter refuses at once a wait that would end after the
		// deadline; report it as the deadline it is.
		return fmt.Errorf("waiting for the rate limiter would pass the deadline: %w", context.DeadlineExceeded)
	}
	return nil
}
