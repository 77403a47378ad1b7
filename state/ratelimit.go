package state

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter is a token bucket per key, in memory.
type RateLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	byKey     map[string]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

// Idle buckets are dropped once more than sweepAbove keys are held, at most
// once per sweepEvery. A bucket idle for idleAfter has long refilled, so a
// fresh one behaves exactly the same.
const (
	sweepAbove = 1024
	sweepEvery = time.Minute
	idleAfter  = 10 * time.Minute
)

// NewRateLimiter returns a limiter that lets each key send perSecond
// requests per second, with bursts of up to burst.
func NewRateLimiter(perSecond float64, burst int) *RateLimiter {
	return &RateLimiter{limit: rate.Limit(perSecond), burst: burst, byKey: make(map[string]*limiterEntry)}
}

// Rate returns the limiter's requests per second and burst.
func (r *RateLimiter) Rate() (perSecond float64, burst int) { return float64(r.limit), r.burst }

// Wait blocks until key may send one more request. It returns ctx's error
// when ctx ends first, and an error wrapping context.DeadlineExceeded at
// once when the wait would outlast ctx's deadline.
func (r *RateLimiter) Wait(ctx context.Context, key string) error {
	if err := r.bucket(key).Wait(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		// rate.Limiter refuses at once a wait that would end after the
		// deadline; report it as the deadline it is.
		return fmt.Errorf("waiting for the rate limiter would pass the deadline: %w", context.DeadlineExceeded)
	}
	return nil
}

func (r *RateLimiter) bucket(key string) *rate.Limiter {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byKey[key]
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
		r.byKey[key] = e
	}
	e.lastUsed = now
	return e.lim
}
