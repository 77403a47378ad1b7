package state

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestBudgetsReserveSettleAndRoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := NewBudgets()
		const limit, window = 100, 24 * time.Hour
		if s, ok, _ := b.Reserve(ctx, "k", "a", 40, limit, window); !ok || s != (Spend{Limit: 100, Reserved: 40, Left: 60}) {
			t.Fatalf("reserve a: %+v %v", s, ok)
		}
		if s, ok, _ := b.Reserve(ctx, "k", "b", 70, limit, window); ok || s.Left != 60 || s.Reserved != 40 {
			t.Fatalf("b over the budget was reserved: %+v %v", s, ok)
		}
		_ = b.Settle(ctx, "k", "a", 30) // it cost less than estimated
		if s, _ := b.Report(ctx, "k", limit, window); s != (Spend{Limit: 100, Spent: 30, Left: 70}) {
			t.Fatalf("after settling: %+v", s)
		}
		time.Sleep(time.Hour)
		if _, ok, _ := b.Reserve(ctx, "k", "c", 60, limit, window); !ok {
			t.Fatal("c within what is left was refused")
		}
		_ = b.Release(ctx, "k", "c") // nothing started
		if s, _ := b.Report(ctx, "k", limit, window); s.Spent != 30 || s.Reserved != 0 {
			t.Fatalf("after releasing: %+v", s)
		}
		// Another key has a budget of its own.
		if _, ok, _ := b.Reserve(ctx, "other", "x", 100, limit, window); !ok {
			t.Fatal("another key's budget was shared")
		}
		// The window rolls: a's charge leaves it 24 h after it was reserved.
		time.Sleep(23 * time.Hour)
		if s, _ := b.Report(ctx, "k", limit, window); s.Spent != 0 || s.Left != 100 {
			t.Fatalf("after the window: %+v", s)
		}
	})
}
