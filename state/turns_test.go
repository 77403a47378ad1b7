package state

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestTurnsAreFirstComeFirstServedWithACooldown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr := NewTurns(time.Minute)
		a, _ := tr.Enter(ctx, "k")
		b, _ := tr.Enter(ctx, "k")
		c, _ := tr.Enter(ctx, "k")
		if st, _ := tr.Try(ctx, "k", b); st.Granted || st.Ahead != 1 {
			t.Fatalf("b before a: %+v", st)
		}
		if st, _ := tr.Try(ctx, "k", a); !st.Granted {
			t.Fatalf("a first in line: %+v", st)
		}
		// Until a's job has started, it may yet be refused: b could go now.
		if st, _ := tr.Try(ctx, "k", b); st.Granted || !st.Busy || !st.Earliest.Equal(time.Now()) {
			t.Fatalf("b while a submits: %+v", st)
		}
		_ = tr.Started(ctx, "k", a)
		// While a's job runs, b is next: no earlier than a minute from now.
		st, _ := tr.Try(ctx, "k", b)
		if st.Granted || !st.Busy || st.Ahead != 0 || !st.Earliest.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("b while a runs: %+v", st)
		}
		if st, _ := tr.Try(ctx, "k", c); st.Ahead != 1 || !st.Earliest.Equal(time.Now().Add(2*time.Minute)) {
			t.Fatalf("c while a runs: %+v", st)
		}
		time.Sleep(10 * time.Second) // a's job takes 10 s
		_ = tr.Finish(ctx, "k", a, time.Now().Add(time.Minute))
		st, _ = tr.Try(ctx, "k", b)
		if st.Granted || st.Busy || !st.FreeAt.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("b during the cooldown: %+v", st)
		}
		select {
		case <-st.Changed:
			t.Fatal("changed without a change")
		default:
		}
		time.Sleep(time.Minute)
		if st, _ := tr.Try(ctx, "k", b); !st.Granted {
			t.Fatalf("b after the cooldown: %+v", st)
		}
		// Another key has a line of its own.
		if x, _ := tr.Enter(ctx, "other"); !mustTry(t, tr, "other", x).Granted {
			t.Fatal("another key waits for k's line")
		}
	})
}

func TestLeavingMovesTheLineUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr := NewTurns(time.Minute)
		a, _ := tr.Enter(ctx, "k")
		b, _ := tr.Enter(ctx, "k")
		st := mustTry(t, tr, "k", b)
		_ = tr.Leave(ctx, "k", a)
		select {
		case <-st.Changed:
		default:
			t.Fatal("leaving did not announce a change")
		}
		if !mustTry(t, tr, "k", b).Granted {
			t.Fatal("b did not move up")
		}
		if _, err := tr.Try(ctx, "k", a); !errors.Is(err, ErrNotInLine) {
			t.Fatalf("a left but is still in line: %v", err)
		}
	})
}

// A refusal that started nothing keeps the cooldown as it was; a 429
// defers the next turn; a holder that never finishes loses the turn after
// MaxHold, and its late Finish changes nothing.
func TestFinishDeferAndExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr := NewTurns(time.Minute)
		tr.MaxHold = 5 * time.Minute
		a, _ := tr.Enter(ctx, "k")
		mustTry(t, tr, "k", a)
		_ = tr.Finish(ctx, "k", a, time.Time{})
		b, _ := tr.Enter(ctx, "k")
		if !mustTry(t, tr, "k", b).Granted {
			t.Fatal("a refusal left a cooldown")
		}
		_ = tr.Finish(ctx, "k", b, time.Time{})
		_ = tr.Defer(ctx, "k", time.Now().Add(30*time.Second))
		c, _ := tr.Enter(ctx, "k")
		if st := mustTry(t, tr, "k", c); st.Granted || !st.FreeAt.Equal(time.Now().Add(30*time.Second)) {
			t.Fatalf("after a deferral: %+v", st)
		}
		time.Sleep(30 * time.Second)
		if !mustTry(t, tr, "k", c).Granted {
			t.Fatal("not granted after the deferral")
		}
		d, _ := tr.Enter(ctx, "k")
		time.Sleep(5*time.Minute + time.Second) // c stalls
		if st := mustTry(t, tr, "k", d); st.Granted || st.Busy {
			t.Fatalf("a stalled holder still holds the turn, or d skipped the cooldown: %+v", st)
		}
		_ = tr.Finish(ctx, "k", c, time.Time{}) // late: fenced off
		time.Sleep(time.Minute)
		if !mustTry(t, tr, "k", d).Granted {
			t.Fatal("d not granted after the expired hold's cooldown")
		}
	})
}

func mustTry(t *testing.T, tr *Turns, key, ticket string) TurnState {
	t.Helper()
	st, err := tr.Try(context.Background(), key, ticket)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
