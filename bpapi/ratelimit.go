package bpapi

import "context"

// Limiter holds the client-side request rate of each API key. The default
// (state.RateLimiter) keeps it in memory; an implementation on a shared
// store holds it for every replica.
type Limiter interface {
	// Wait blocks until the key identified by keyID (Client.KeyID) may
	// send one more request. It returns ctx's error when ctx ends first,
	// or an error wrapping context.DeadlineExceeded when the wait would
	// outlast ctx's deadline.
	Wait(ctx context.Context, keyID string) error
}

// waitLimiter blocks until the client's key may send one more request.
func (c *Client) waitLimiter(ctx context.Context) error {
	if c.limiter == nil {
		return ctx.Err()
	}
	return c.limiter.Wait(ctx, c.KeyID())
}
