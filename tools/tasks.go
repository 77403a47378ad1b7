package tools

import (
	"context"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// MCP tasks (the 2025-11-25 shape): mcp-go v1.2.1 keeps task-augmented
// calls in memory, scoped by session. It stores a task before the tool can
// check its arguments, keeps a task that came without a TTL for ever, and
// sends every task's status notifications to every session. So a server
// should offer tasks only where there is a single client (stdio; see
// mcpserver), and Tasks bounds them there: a call with invalid arguments is
// answered at once as a plain call and stores nothing, every task gets a
// TTL, and past a cap new task calls are refused without running anything.

// Task bounds.
const (
	DefaultTaskTTL = 30 * time.Minute
	MaxTaskTTL     = 2 * time.Hour
	MaxStoredTasks = 1000
)

// refusedTaskMeta marks, in a call's _meta, a task call refused for the
// cap; the tool answers it with an error and runs nothing.
const refusedTaskMeta = "io.bpmcp/task-refused"

func errTooManyTasks(tool string) string {
	return "This server already keeps the most MCP tasks it allows; nothing was run. Call " + tool +
		" without task augmentation, or try again once older tasks have expired."
}

// Tasks bounds the MCP task calls of one server. Its zero value is ready;
// share one between every toolset of a server.
type Tasks struct {
	mu        sync.Mutex
	expiries  []time.Time // of the tasks admitted, in order
	prechecks map[string]func(raw any) error
}

func (t *Tasks) precheck(tool string, check func(raw any) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.prechecks == nil {
		t.prechecks = make(map[string]func(any) error)
	}
	t.prechecks[tool] = check
}

// Precheck declares how task calls of a tool built outside New are checked
// (a tool that copies another's declaration, task support included): Prepare
// lets the task calls of a tool without a check through unbounded.
func (t *Tasks) Precheck(tool string, check func(raw any) error) { t.precheck(tool, check) }

// PrecheckOf returns the check of tool's task calls, or nil.
func (t *Tasks) PrecheckOf(tool string) func(raw any) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prechecks[tool]
}

// admit records a task kept until now+ttl, unless the cap is reached.
func (t *Tasks) admit(now time.Time, ttl time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.expiries[:0]
	for _, at := range t.expiries {
		if at.After(now) {
			live = append(live, at)
		}
	}
	t.expiries = live
	if len(t.expiries) >= MaxStoredTasks {
		return false
	}
	t.expiries = append(t.expiries, now.Add(ttl))
	return true
}

// Prepare bounds a task-augmented tools/call before mcp-go stores it.
// Install it as an mcp-go before-call hook where tasks are offered.
func (t *Tasks) Prepare(_ context.Context, _ any, req *mcp.CallToolRequest) {
	task := req.Params.Task
	if task == nil {
		return
	}
	t.mu.Lock()
	check := t.prechecks[req.Params.Name]
	t.mu.Unlock()
	if check == nil {
		return // not a tool that takes task calls: mcp-go refuses it
	}
	if check(req.GetRawArguments()) != nil {
		// Answered at once, as a plain call, with what is wrong: the spec
		// lets a receiver process a request normally instead of as a task.
		req.Params.Task = nil
		return
	}
	ttl := DefaultTaskTTL
	if task.TTL != nil && *task.TTL > 0 {
		ttl = min(time.Duration(*task.TTL)*time.Millisecond, MaxTaskTTL)
	}
	if !t.admit(time.Now(), ttl) {
		req.Params.Task = nil
		setMeta(req, refusedTaskMeta, true)
		return
	}
	ms := ttl.Milliseconds()
	task.TTL = &ms
}

// taskRefused reports whether Prepare refused this call.
func taskRefused(req mcp.CallToolRequest) bool {
	if req.Params.Meta == nil {
		return false
	}
	refused, _ := req.Params.Meta.AdditionalFields[refusedTaskMeta].(bool)
	return refused
}
