package state

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestSlotsAreBoundedPerKey(t *testing.T) {
	ctx := context.Background()
	s := NewSlots()
	var releases []func()
	for i := range 3 {
		release, ok, err := s.Acquire(ctx, "a", 3, time.Minute)
		if err != nil || !ok {
			t.Fatalf("slot %d refused below the limit: %v", i, err)
		}
		releases = append(releases, release)
	}
	if _, ok, _ := s.Acquire(ctx, "a", 3, time.Minute); ok {
		t.Error("a slot over the limit was granted")
	}
	if _, ok, _ := s.Acquire(ctx, "b", 3, time.Minute); !ok {
		t.Error("another key's slots are counted against this one")
	}
	releases[0]()
	releases[0]() // twice is harmless
	if n, _ := s.Held(ctx, "a"); n != 2 {
		t.Errorf("%d slots held after one release, want 2", n)
	}
	if _, ok, _ := s.Acquire(ctx, "a", 3, time.Minute); !ok {
		t.Error("a released slot was not granted again")
	}
}

// A holder that never releases its slot loses it when its lease ends.
func TestSlotsExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewSlots()
		if _, ok, _ := s.Acquire(ctx, "a", 1, time.Minute); !ok {
			t.Fatal("refused")
		}
		time.Sleep(59 * time.Second)
		if _, ok, _ := s.Acquire(ctx, "a", 1, time.Minute); ok {
			t.Error("granted while the first lease is live")
		}
		time.Sleep(time.Second)
		release, ok, _ := s.Acquire(ctx, "a", 1, time.Minute)
		if !ok {
			t.Fatal("the expired lease still holds the slot")
		}
		release()
		if n, _ := s.Held(ctx, "a"); n != 0 || len(s.leases) != 0 {
			t.Errorf("%d held, %d keys kept after every lease ended", n, len(s.leases))
		}
	})
}

func TestRateLimiterWaitsPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := NewRateLimiter(5, 2)
		start := time.Now()
		for range 2 + 5 { // the burst, then one second's worth
			if err := r.Wait(ctx, "a"); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("7 requests took %v, want 1 s (burst 2, then 5/s)", got)
		}
		before := time.Now()
		if err := r.Wait(ctx, "b"); err != nil || time.Since(before) != 0 {
			t.Errorf("another key waited %v (%v)", time.Since(before), err)
		}
		_ = r.Wait(ctx, "a") // the bucket is empty again
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		if err := r.Wait(short, "a"); !errors.Is(err, context.DeadlineExceeded) || short.Err() != nil {
			t.Errorf("a wait past the deadline returned %v (ctx %v); want DeadlineExceeded at once", err, short.Err())
		}
	})
}

func TestRateLimiterSweepsIdleKeys(t *testing.T) {
	r := NewRateLimiter(5, 5)
	for i := range sweepAbove {
		r.bucket(fmt.Sprint(i))
	}
	kept := r.bucket("kept")
	r.mu.Lock()
	for k, e := range r.byKey {
		if k != "kept" {
			e.lastUsed = time.Now().Add(-2 * idleAfter)
		}
	}
	r.lastSweep = time.Time{}
	r.mu.Unlock()
	r.bucket("new")
	r.mu.Lock()
	n := len(r.byKey)
	r.mu.Unlock()
	if n != 2 {
		t.Errorf("%d buckets after the sweep, want 2", n)
	}
	if r.bucket("kept") != kept {
		t.Error("a recently used bucket was replaced")
	}
}
