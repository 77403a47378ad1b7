package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

type requestContextKey struct{}

// withRequest keeps the call's request in the context, so that a tool can
// find its progress token, its task parameters and its replay key.
func withRequest(ctx context.Context, req mcp.CallToolRequest) context.Context {
	return context.WithValue(ctx, requestContextKey{}, req)
}

func requestFrom(ctx context.Context) (mcp.CallToolRequest, bool) {
	req, ok := ctx.Value(requestContextKey{}).(mcp.CallToolRequest)
	return req, ok
}

// callIDMeta is the _meta field in which NoteRequestID keeps the session and
// JSON-RPC id of a tools/call request for the tool handler.
const callIDMeta = "io.bpmcp/call"

// NoteRequestID records the session and JSON-RPC id of a tools/call request
// in its _meta, so that a request delivered twice (an HTTP-level retry) can
// be recognised (CallKey) and start nothing new. Install it as an mcp-go
// before-call hook. Without a session (stateless HTTP) nothing is recorded:
// ids are unique only within a session.
func NoteRequestID(ctx context.Context, id any, req *mcp.CallToolRequest) {
	if req.Params.Meta != nil {
		delete(req.Params.Meta.AdditionalFields, callIDMeta) // only this hook sets it
	}
	session := server.ClientSessionFromContext(ctx)
	if session == nil || session.SessionID() == "" || id == nil {
		return
	}
	// 1 and "1" are different ids.
	setMeta(req, callIDMeta, fmt.Sprintf("%s\x00%T\x00%v", session.SessionID(), id, id))
}

// setMeta sets key in req's _meta, which this server uses to pass what a
// hook learned to the tool.
func setMeta(req *mcp.CallToolRequest, key string, v any) {
	if req.Params.Meta == nil {
		req.Params.Meta = &mcp.Meta{}
	}
	if req.Params.Meta.AdditionalFields == nil {
		req.Params.Meta.AdditionalFields = map[string]any{}
	}
	req.Params.Meta.AdditionalFields[key] = v
}

// CallKey returns what NoteRequestID recorded for this call (its session and
// JSON-RPC id), or "".
func CallKey(ctx context.Context) string {
	req, ok := requestFrom(ctx)
	if !ok || req.Params.Meta == nil {
		return ""
	}
	k, _ := req.Params.Meta.AdditionalFields[callIDMeta].(string)
	return k
}

// progressToken returns the call's progress token, or nil.
func progressToken(ctx context.Context) mcp.ProgressToken {
	req, ok := requestFrom(ctx)
	if !ok || req.Params.Meta == nil {
		return nil
	}
	return req.Params.Meta.ProgressToken
}

// IsTaskCall reports whether the call was made as an MCP task.
func IsTaskCall(ctx context.Context) bool {
	req, ok := requestFrom(ctx)
	return ok && req.Params.Task != nil
}

// TaskTTL returns the TTL a task-augmented call asked for (as bounded by
// Tasks.Prepare), or 0.
func TaskTTL(ctx context.Context) time.Duration {
	req, ok := requestFrom(ctx)
	if !ok || req.Params.Task == nil || req.Params.Task.TTL == nil || *req.Params.Task.TTL <= 0 {
		return 0
	}
	return time.Duration(*req.Params.Task.TTL) * time.Millisecond
}
