package tools

import (
	"context"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/internal/secret"
)

// Toolset is the tools of one upstream API, as the server assembly sees
// them: a second API is a second Toolset, registered the same way.
type Toolset interface {
	// Instructions is the toolset's part of the server's instructions.
	Instructions() string
	// Tools declares the toolset's tools; tasks is nil where the server
	// offers no MCP tasks.
	Tools(tasks *Tasks) []server.ServerTool
	// KeyHeader names the HTTP header in which a caller brings its own key
	// for this API when the server serves many tenants, or "".
	KeyHeader() string
	// BeginShutdown refuses new work at once and, after answerWithin, makes
	// every call still waiting answer with what it knows.
	BeginShutdown(answerWithin time.Duration)
	// Drain blocks until the work this process started upstream has been
	// answered (so no id is lost), or ctx ends.
	Drain(ctx context.Context) error
}

// Redacting is a Toolset whose calls carry a secret (an API key): Redactor
// returns the function that removes it from a text, or nil. What a server
// writes about a call outside its result (a trace) goes through it.
type Redacting interface {
	Redactor(ctx context.Context) func(string) string
}

type callerKeyContextKey struct{ header string }

// WithCallerKey returns ctx carrying a caller's own key, read from the HTTP
// header of that name (a Toolset's KeyHeader).
func WithCallerKey(ctx context.Context, header string, key secret.String) context.Context {
	return context.WithValue(ctx, callerKeyContextKey{header}, key)
}

// CallerKey returns the key the caller brought in the named header, or "".
func CallerKey(ctx context.Context, header string) secret.String {
	k, _ := ctx.Value(callerKeyContextKey{header}).(secret.String)
	return k
}

// WaitGroup waits for wg until ctx ends, and returns ctx's error then: the
// end of a toolset's Drain, for the goroutines it keeps beyond its calls.
func WaitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
