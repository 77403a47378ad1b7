package betterprompt_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// leaseCheckingSlots is state.Slots that notes every holder still holding
// its slot after its lease ended: a live holder must never outlast it, or
// the slot is counted free (and granted again) while its call still waits.
type leaseCheckingSlots struct {
	*state.Slots
	mu      sync.Mutex
	overrun []string
}

func (s *leaseCheckingSlots) Acquire(ctx context.Context, key string, limit int, ttl time.Duration) (func(), bool, error) {
	release, ok, err := s.Slots.Acquire(ctx, key, limit, ttl)
	if !ok {
		return release, ok, err
	}
	until := time.Now().Add(ttl)
	return func() {
		if late := time.Since(until); late > 0 {
			s.mu.Lock()
			s.overrun = append(s.overrun, fmt.Sprintf("released %v after its %v lease ended", late, ttl))
			s.mu.Unlock()
		}
		release()
	}, true, nil
}

// get_run on a handle this process does not know (a restart, another
// replica) reads the run list after its wait: every page of it, each
// bounded only by the client's request timeout. Its wait slot's lease
// (wait + LateWork + slotMargin) ends while the call still holds it.
func TestForeignHandleGetRunOutlivesItsWaitSlot(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		slots := &leaseCheckingSlots{Slots: state.NewSlots()}
		e := newEnv(t, withPipe(), withDeps(func(d *betterprompt.Toolset) { d.Slots = slots }))
		handle := runs.NewHandle(time.Now(), coldEmailVersion)
		time.Sleep(time.Second)
		// More runs since the handle was made than one page of the run list holds.
		for i := range 51 {
			_, err := e.deps.Client.CreateRun(context.Background(), bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion,
				Inputs: bpapi.RunInputs{TextInputs: map[string]string{"company_name": fmt.Sprint("Acme ", i), "recipient_role": "CTO",
					"value_proposition": "We halve your cloud bill."}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		// A slow run list: each page answers within the client's 30 s request timeout.
		e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Latency: 25 * time.Second, Count: -1})
		e.call(t, "get_run", map[string]any{"run_id": handle, "wait_seconds": 0})
		slots.mu.Lock()
		defer slots.mu.Unlock()
		for _, o := range slots.overrun {
			t.Errorf("a live get_run outlasted its wait slot's lease: %s", o)
		}
	})
}
