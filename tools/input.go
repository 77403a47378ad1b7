package tools

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// NeedInput is what a tool function returns, as its error, to ask the
// client for input before it can go on (an elicitation): the adapter
// answers the call with Result as it is, an input_required result that
// mcp-go turns into an elicitation/create request for clients of the
// 2025-11-25 era. The call is then made again with the answer
// (InputResponses).
type NeedInput struct {
	Result *mcp.CallToolResult
}

func (e *NeedInput) Error() string { return "the call needs input from the client" }

// InputResponses returns the answers a call carries to input it asked for,
// and the request state echoed back with them.
func InputResponses(ctx context.Context) (mcp.InputResponses, string) {
	req, ok := requestFrom(ctx)
	if !ok {
		return nil, ""
	}
	return req.Params.InputResponses, req.Params.RequestState
}

// CanElicit reports whether the client declared that it can answer an
// elicitation: in the request's own capabilities (2026-07-28) or in those
// of its session (earlier eras).
func CanElicit(ctx context.Context) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		return info.ClientCapabilities.Elicitation != nil
	}
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return s.GetClientCapabilities().Elicitation != nil
	}
	return false
}

// needInput returns the result a tool function asked to send as is.
func needInput(err error) (*mcp.CallToolResult, bool) {
	var ni *NeedInput
	if errors.As(err, &ni) && ni.Result != nil {
		return ni.Result, true
	}
	return nil, false
}

// RawArguments returns the call's arguments as the client sent them.
func RawArguments(ctx context.Context) any {
	req, ok := requestFrom(ctx)
	if !ok {
		return nil
	}
	return req.GetRawArguments()
}
