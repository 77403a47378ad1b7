package redisstate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/state/redisstate"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

var _ betterwaifu.Turns = (*redisstate.Turns)(nil)

func try(t *testing.T, tr *redisstate.Turns, key, ticket string) state.TurnState {
	t.Helper()
	st, err := tr.Try(context.Background(), key, ticket)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The line is one across replicas: first come, first served, one holder,
// the cooldown after its job, and an estimate that counts a started job.
func TestTurnsAcrossReplicas(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 2)
	const cooldown = 300 * time.Millisecond
	a, b := stores[0].Turns(cooldown, time.Minute), stores[1].Turns(cooldown, time.Minute)
	ctx := context.Background()
	t1, _ := a.Enter(ctx, "k")
	t2, _ := b.Enter(ctx, "k")
	t3, _ := a.Enter(ctx, "k")
	if st := try(t, b, "k", t2); st.Granted || st.Ahead != 1 {
		t.Fatalf("t2 before t1: %+v", st)
	}
	if !try(t, b, "k", t1).Granted {
		t.Fatal("t1, first in line, was not granted (through the other replica)")
	}
	if st := try(t, a, "k", t2); st.Granted || !st.Busy || time.Until(st.Earliest) > 50*time.Millisecond {
		t.Fatalf("t2 while t1 submits (its job may yet be refused): %+v", st)
	}
	_ = a.Started(ctx, "k", t1)
	if st := try(t, a, "k", t3); st.Ahead != 1 || time.Until(st.Earliest) < 500*time.Millisecond {
		t.Fatalf("t3 while t1's job runs: %+v (want about 2 cooldowns away)", st)
	}
	_ = b.Finish(ctx, "k", t1, time.Now().Add(cooldown))
	st := try(t, b, "k", t2)
	if st.Granted || st.Busy || st.FreeAt.IsZero() {
		t.Fatalf("t2 in the cooldown: %+v", st)
	}
	time.Sleep(cooldown + 50*time.Millisecond)
	if !try(t, a, "k", t2).Granted {
		t.Fatal("t2 after the cooldown")
	}
	_ = a.Leave(ctx, "k", t3)
	if _, err := b.Try(ctx, "k", t3); !errors.Is(err, state.ErrNotInLine) {
		t.Fatalf("t3 left but is in line: %v", err)
	}
	// Another key has its own line.
	o, _ := b.Enter(ctx, "other")
	if !try(t, a, "other", o).Granted {
		t.Fatal("another key waited for k's line")
	}
}

// A holder that stalls past MaxHold loses the turn (and its late Finish
// changes nothing); a place not renewed expires; a 429 defers the line.
func TestTurnsExpireAndDefer(t *testing.T) {
	t.Parallel()
	stores, _ := replicas(t, 1)
	tr := stores[0].Turns(100*time.Millisecond, 200*time.Millisecond).WithPlaceTTL(400 * time.Millisecond)
	ctx := context.Background()
	h, _ := tr.Enter(ctx, "k")
	try(t, tr, "k", h)
	next, _ := tr.Enter(ctx, "k")
	for range 2 { // stays in line by trying
		if st := try(t, tr, "k", next); st.Granted {
			t.Fatal("granted while the holder holds")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(120 * time.Millisecond) // past the 200 ms hold and its 100 ms cooldown
	if !try(t, tr, "k", next).Granted {
		t.Fatal("a stalled holder kept the turn past MaxHold")
	}
	_ = tr.Finish(ctx, "k", h, time.Now().Add(time.Hour)) // late: fenced off
	_ = tr.Finish(ctx, "k", next, time.Time{})
	gone, _ := tr.Enter(ctx, "k")
	time.Sleep(500 * time.Millisecond) // its place expires unrenewed
	if _, err := tr.Try(ctx, "k", gone); !errors.Is(err, state.ErrNotInLine) {
		t.Fatalf("an abandoned place is still in line: %v", err)
	}
	_ = tr.Defer(ctx, "k", time.Now().Add(300*time.Millisecond))
	d, _ := tr.Enter(ctx, "k")
	if st := try(t, tr, "k", d); st.Granted || st.FreeAt.IsZero() {
		t.Fatalf("granted within a deferral, or a late Finish moved the line: %+v", st)
	}
}

// A ticket is the fencing token of a hold: it must never be handed out
// again, even after the line's keys are gone (they expire when the line is
// idle, or Redis restarted without persistence). Otherwise a stalled
// holder's late Finish ends the turn of the new caller that got the same
// ticket, while that caller's job runs, and the next caller starts at once.
func TestTurnsTicketsAreNotReusedAfterTheLineIsLost(t *testing.T) {
	t.Parallel()
	stores, srv := replicas(t, 1)
	tr := stores[0].Turns(time.Minute, time.Hour)
	ctx := context.Background()
	stale, _ := tr.Enter(ctx, "k")
	if !try(t, tr, "k", stale).Granted {
		t.Fatal("first caller not granted")
	}
	// The line's keys are lost (expired, evicted, or a restart).
	if err := srv.Client(t).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := tr.Enter(ctx, "k")
	if fresh == stale {
		t.Errorf("ticket %q handed out twice", fresh)
	}
	if !try(t, tr, "k", fresh).Granted {
		t.Fatal("the new caller was not granted the free line")
	}
	_ = tr.Started(ctx, "k", fresh)
	// The stalled holder wakes up and gives its turn back.
	_ = tr.Finish(ctx, "k", stale, time.Now())
	if !try(t, tr, "k", fresh).Granted {
		t.Fatal("a stale holder's Finish ended the new holder's turn")
	}
	next, _ := tr.Enter(ctx, "k")
	if st := try(t, tr, "k", next); st.Granted || !st.Busy {
		t.Fatalf("a caller was let in while the new holder's job runs: %+v", st)
	}
}

// A deferral (a 429's Retry-After) or a Finish that frees the line later
// than the line's keys live must keep them until then: when the keys expire
// first, the next caller is granted the turn at once.
func TestTurnsKeepTheLineUntilItIsFree(t *testing.T) {
	t.Parallel()
	stores, srv := replicas(t, 1)
	tr := stores[0].Turns(time.Second, time.Minute)
	ctx := context.Background()
	c := srv.Client(t)
	hash := "bpmcp:v1:line-turn:{k}"
	until := time.Now().Add(3 * time.Hour)
	if err := tr.Defer(ctx, "k", until); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, hash).Val(); ttl < time.Until(until) {
		t.Errorf("the line deferred for 3 h expires in %v", ttl)
	}
	h, _ := tr.Enter(ctx, "other")
	try(t, tr, "other", h)
	until = time.Now().Add(4 * time.Hour)
	if err := tr.Finish(ctx, "other", h, until); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, "bpmcp:v1:line-turn:{other}").Val(); ttl < time.Until(until) {
		t.Errorf("the line freed in 4 h expires in %v", ttl)
	}
}
