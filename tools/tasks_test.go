package tools

import (
	"testing"
	"time"
)

// Past the cap on stored tasks a task call is refused; tasks count until
// their TTL has passed.
func TestTasksCap(t *testing.T) {
	var l Tasks
	now := time.Now()
	for i := range MaxStoredTasks {
		if !l.admit(now, time.Minute) {
			t.Fatalf("task %d refused below the cap", i)
		}
	}
	if l.admit(now, time.Minute) {
		t.Error("a task over the cap was admitted")
	}
	if !l.admit(now.Add(2*time.Minute), time.Minute) {
		t.Error("expired tasks still count against the cap")
	}
}
