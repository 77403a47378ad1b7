package redisstate_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/state/redisstate"
)

// The cost each guard adds to a call when kept on Redis over loopback (one
// script round trip each):
//
//	go test ./state/redisstate -run '^$' -bench . -benchtime 2000x
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	s := redisstate.New(srv.Client(b), "")
	ctx := context.Background()
	b.Run("RateLimit", func(b *testing.B) {
		l := s.RateLimiter(1e9, 1000) // never waits: the script's cost alone
		for i := 0; b.Loop(); i++ {
			if err := l.Wait(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SlotAcquireRelease", func(b *testing.B) {
		sl := s.Slots()
		for b.Loop() {
			release, ok, err := sl.Acquire(ctx, "k", 64, time.Minute)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			release()
		}
	})
	b.Run("BudgetReserveSettle", func(b *testing.B) {
		bu := s.Budgets()
		for i := 0; b.Loop(); i++ {
			id := strconv.Itoa(i)
			if _, ok, err := bu.Reserve(ctx, "k"+strconv.Itoa(i%64), id, 1, 1<<40, time.Minute); err != nil || !ok {
				b.Fatal(ok, err)
			}
			if err := bu.Settle(ctx, "k"+strconv.Itoa(i%64), id, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TurnTry", func(b *testing.B) {
		tr := s.Turns(time.Minute, time.Hour)
		h, _ := tr.Enter(ctx, "k")
		_, _ = tr.Try(ctx, "k", h) // h holds the turn
		w, _ := tr.Enter(ctx, "k")
		for b.Loop() {
			if _, err := tr.Try(ctx, "k", w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
