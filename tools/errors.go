package tools

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

// Error is a failure whose text is written for the agent: what went wrong
// and what to do next. It becomes an isError result as it is.
type Error struct {
	Msg string
	// Expected marks failures the caller caused (bad arguments), logged at
	// debug level rather than as warnings.
	Expected bool
	// Cause is the underlying failure, for logs and errors.Is.
	Cause error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Cause }

// Invalidf reports a bad argument; nothing was sent anywhere.
func Invalidf(format string, args ...any) error {
	return &Error{Msg: "Invalid arguments: " + fmt.Sprintf(format, args...), Expected: true}
}

// Failf reports a failure with a message written for the agent.
func Failf(cause error, format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// errorResult renders any error as an isError tool result: an *Error as it
// is, anything else through Describe, never as a Go dump.
func (a *Adapter) errorResult(err error) *mcp.CallToolResult {
	return mcp.NewToolResultError(a.describe(err))
}

func (a *Adapter) describe(err error) string {
	var te *Error
	switch {
	case errors.As(err, &te):
		return te.Msg
	case a.Describe != nil:
		return a.Describe(err)
	case errors.Is(err, context.Canceled):
		return "The call was cancelled before it finished."
	default:
		return "The call failed (" + err.Error() + "). Try again in a moment."
	}
}
