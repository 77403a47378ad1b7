package redisstate

import (
	"context"
	"time"
)

// Nonces records the nonces of accepted confirmations, so that an answer
// starts one run across every replica (spending.Nonces).
type Nonces struct{ s *Store }

// Nonces returns the shared nonce set.
func (s *Store) Nonces() *Nonces { return &Nonces{s: s} }

// Use marks nonce used until until (one SET NX, which expires then), and
// reports whether it was not used before.
func (n *Nonces) Use(ctx context.Context, nonce string, until time.Time) (bool, error) {
	ok, err := n.s.c.SetNX(ctx, n.s.key("nonce", nonce), 1, max(time.Until(until), time.Second)).Result()
	if err != nil {
		return false, unavailable("confirmation nonces", err)
	}
	return ok, nil
}
