package state

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// REVIEW FINDING (nit/risk). A line is forgotten only by the Leave or
// Finish that leaves it idle with its cooldown passed. A generation's
// Finish always sets a cooldown in the future, so the line of every key
// that ever generated stays in memory for ever (per-request keys: one line
// per key any caller ever brought).
func TestReviewIdleLinesAreNeverForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := NewTurns(time.Minute)
		ctx := context.Background()
		for i := range 100 {
			key := fmt.Sprintf("key-%d", i)
			tk, _ := tr.Enter(ctx, key)
			if st, _ := tr.Try(ctx, key, tk); !st.Granted {
				t.Fatal("not granted")
			}
			_ = tr.Finish(ctx, key, tk, time.Now().Add(time.Minute))
		}
		time.Sleep(time.Hour)                  // every cooldown is long over
		_, _ = tr.Enter(ctx, "a later caller") // lines are swept as callers come
		tr.mu.Lock()
		n := len(tr.lines)
		tr.mu.Unlock()
		if n != 1 {
			t.Errorf("%d idle lines kept an hour after their cooldowns ended", n)
		}
	})
}
