package state

import (
	"context"
	"sync"
	"time"
)

// Slots counts, per key, the holders of a bounded resource (the calls
// waiting for runs), in memory. Every slot is a lease: it ends when it is
// released or when its time is up, whichever comes first, so a holder that
// never releases (a crash, a lost replica in a shared implementation)
// cannot keep it.
type Slots struct {
	mu     sync.Mutex
	leases map[string]map[uint64]time.Time // key → lease → expiry
	next   uint64
}

// NewSlots returns an empty set of slots.
func NewSlots() *Slots { return &Slots{leases: make(map[string]map[uint64]time.Time)} }

// Acquire takes one of key's limit slots for at most ttl. ok is false when
// every slot is held; release (safe to call more than once) frees the slot
// before its time is up.
func (s *Slots) Acquire(_ context.Context, key string, limit int, ttl time.Duration) (release func(), ok bool, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.liveLocked(key, now)
	if len(held) >= limit {
		return nil, false, nil
	}
	if held == nil {
		held = make(map[uint64]time.Time)
		s.leases[key] = held
	}
	s.next++
	id := s.next
	held[id] = now.Add(ttl)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if held := s.leases[key]; held != nil {
				delete(held, id)
				if len(held) == 0 {
					delete(s.leases, key)
				}
			}
		})
	}, true, nil
}

// Held returns how many of key's slots are held now.
func (s *Slots) Held(_ context.Context, key string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.liveLocked(key, time.Now())), nil
}

// liveLocked drops key's expired leases and returns the live ones.
func (s *Slots) liveLocked(key string, now time.Time) map[uint64]time.Time {
	held := s.leases[key]
	for id, until := range held {
		if !now.Before(until) {
			delete(held, id)
		}
	}
	if held != nil && len(held) == 0 {
		delete(s.leases, key)
		return nil
	}
	return held
}
