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

// CanElicit reports whether the client can answer a form elicitation: it
// declared the capability (in the request's own capabilities in 2026-07-28,
// in its session's before) with form mode (an empty declaration means
// form). Otherwise why says why not, for a message.
func CanElicit(ctx context.Context) (ok bool, why string) {
	form := func(e *mcp.ElicitationCapability) bool { return e != nil && (e.Form != nil || e.URL == nil) }
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		if form(info.ClientCapabilities.Elicitation) {
			return true, ""
		}
		return false, "this client cannot ask the user (it does not declare form elicitation)"
	}
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok || s.SessionID() == "" {
		return false, "this server runs without sessions (--stateless), where a client of the 2025-11-25 protocol " +
			"cannot be asked; a 2026-07-28 client, or a server with sessions, can ask the user"
	}
	if form(s.GetClientCapabilities().Elicitation) {
		return true, ""
	}
	return false, "this client cannot ask the user (it does not declare form elicitation)"
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
