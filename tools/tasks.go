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
// sends every task's status notifications to every session. So the server
// offers tasks only where there is a single client (stdio; see mcpserver),
// and PrepareTaskCall bounds them there: a call with invalid arguments is
// answered at once as a plain call and stores nothing, every task gets a
// TTL, and past a cap new task calls are refused without spending.

// Task bounds.
const (
	defaultTaskTTL = 30 * time.Minute
	maxTaskTTL     = 2 * time.Hour
	maxStoredTasks = 1000
)

// refusedTaskMeta marks, in a call's _meta, a task call refused for the
// cap; the tool answers it with an error and spends nothing.
const refusedTaskMeta = "io.bpmcp/task-refused"

var errTooManyTasks = &toolError{msg: "This server already keeps the most MCP tasks it allows; nothing was run. Call run_prompt " +
	"without task augmentation (it returns a run_id for get_run when the run outlasts the wait), or try again once older tasks have expired."}

// taskLedger counts the tasks mcp-go stores, by when each expires.
type taskLedger struct {
	mu       sync.Mutex
	expiries []time.Time // in the order admitted
}

// admit records a task kept until now+ttl, unless the cap is reached.
func (l *taskLedger) admit(now time.Time, ttl time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	live := l.expiries[:0]
	for _, at := range l.expiries {
		if at.After(now) {
			live = append(live, at)
		}
	}
	l.expiries = live
	if len(l.expiries) >= maxStoredTasks {
		return false
	}
	l.expiries = append(l.expiries, now.Add(ttl))
	return true
}

// PrepareTaskCall bounds a task-augmented tools/call before mcp-go stores
// it. Install it as an mcp-go before-call hook where tasks are offered.
func (d *Deps) PrepareTaskCall(_ context.Context, _ any, req *mcp.CallToolRequest) {
	task := req.Params.Task
	if task == nil || !d.TaskCalls {
		return // not a task call, or tasks are off: mcp-go refuses it
	}
	if check := d.prechecks[req.Params.Name]; check != nil && check(req.GetRawArguments()) != nil {
		// Answered at once, as a plain call, with what is wrong: the spec
		// lets a receiver process a request normally instead of as a task.
		req.Params.Task = nil
		return
	}
	ttl := defaultTaskTTL
	if task.TTL != nil && *task.TTL > 0 {
		ttl = min(time.Duration(*task.TTL)*time.Millisecond, maxTaskTTL)
	}
	if !d.tasks.admit(time.Now(), ttl) {
		req.Params.Task = nil
		if req.Params.Meta == nil {
			req.Params.Meta = &mcp.Meta{}
		}
		if req.Params.Meta.AdditionalFields == nil {
			req.Params.Meta.AdditionalFields = map[string]any{}
		}
		req.Params.Meta.AdditionalFields[refusedTaskMeta] = true
		return
	}
	ms := ttl.Milliseconds()
	task.TTL = &ms
}

// taskRefused reports whether PrepareTaskCall refused this call.
func taskRefused(req mcp.CallToolRequest) bool {
	if req.Params.Meta == nil {
		return false
	}
	refused, _ := req.Params.Meta.AdditionalFields[refusedTaskMeta].(bool)
	return refused
}
