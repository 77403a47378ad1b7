package redisstate_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/runs"
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

// runPromptSteps does what one run_prompt call asks of the shared store
// (a prompt read from the cache, a budget set, no confirmation): a wait
// slot, the budget's reservation, the run's record (begin with the
// sender's lease, sent, and finish: one script on the replica that began
// it), three rate-limited API requests (two reads of the prompt, the
// POST), then the settlement beside the slot's release: 9 round trips in a
// row. The sender reads nothing back. (A POST held longer than 5 s also
// renews its lease every 5 s.)
func runPromptSteps(ctx context.Context, s *redisstate.Store, key, handle string) error {
	l := s.RateLimiter(1e9, 1000)
	for range 2 {
		if err := l.Wait(ctx, key); err != nil {
			return err
		}
	}
	release, ok, err := s.Slots().Acquire(ctx, key, 1<<20, time.Minute)
	if err != nil || !ok {
		return fmt.Errorf("slot: %v %v", ok, err)
	}
	defer release()
	bu := s.Budgets()
	if _, ok, err := bu.Reserve(ctx, key, handle, 40, 1<<40, time.Hour); err != nil || !ok {
		return fmt.Errorf("reserve: %v %v", ok, err)
	}
	rec := s.Records()
	now := time.Now()
	if _, _, err := rec.Begin(ctx, runs.Record{Handle: handle, Tenant: key, Kind: "bench", Submitted: now,
		AliveUntil: now.Add(runs.SenderLease)}, false); err != nil {
		return err
	}
	if err := rec.Sent(ctx, handle, now); err != nil {
		return err
	}
	if err := l.Wait(ctx, key); err != nil {
		return err
	}
	if _, _, err := rec.Finish(ctx, handle, runs.Answer{At: time.Now(), JobID: "job-" + handle}); err != nil {
		return err
	}
	var released sync.WaitGroup
	released.Go(release)
	defer released.Wait()
	return bu.Settle(ctx, key, handle, 38)
}

// BenchmarkRunPromptStoreCost is the latency the shared store adds to one
// run_prompt call (p50 and p99 of the steps above, one caller), and the
// throughput of those steps from three replicas (three clients, 8 callers
// each) against one replica (one client, 8 callers), in one run:
//
//	go test ./state/redisstate -run '^$' -bench RunPromptStoreCost -benchtime 3000x
func BenchmarkRunPromptStoreCost(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	var seq atomic.Int64
	b.Run("read-call-latency", func(b *testing.B) {
		// A read (search_prompts, get_prompt, get_credits) asks the store
		// for one rate-limit slot per API request; get_run also reads its
		// record.
		s := redisstate.New(srv.Client(b), "")
		l, rec := s.RateLimiter(1e9, 1000), s.Records()
		var took []time.Duration
		for b.Loop() {
			began := time.Now()
			if err := l.Wait(ctx, "k"); err != nil {
				b.Fatal(err)
			}
			if _, _, err := rec.Get(ctx, "h", "k"); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(began))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	})
	b.Run("latency", func(b *testing.B) {
		s := redisstate.New(srv.Client(b), "")
		var took []time.Duration
		for b.Loop() {
			began := time.Now()
			if err := runPromptSteps(ctx, s, "k", strconv.FormatInt(seq.Add(1), 10)); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(began))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	})
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("throughput-%d-replicas", replicas), func(b *testing.B) {
			stores := make([]*redisstate.Store, replicas)
			for i := range stores {
				stores[i] = redisstate.New(srv.Client(b), "")
			}
			const callers = 8
			var next atomic.Int64
			n := int64(b.N)
			began := time.Now()
			var wg sync.WaitGroup
			for r := range replicas * callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stores[r%replicas]
					for next.Add(1) <= n {
						if err := runPromptSteps(ctx, s, "k"+strconv.Itoa(r%4), strconv.FormatInt(seq.Add(1), 10)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(n)/time.Since(began).Seconds(), "calls/s")
		})
	}
}
