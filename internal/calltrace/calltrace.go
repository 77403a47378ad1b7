// Package calltrace writes a trace of tool calls, one JSON line per call
// (--trace FILE), for evaluation harnesses that score what an agent did:
// which tools it called with which arguments, what each answered, what it
// spent and how many upstream requests it took. The format is documented
// in the README ("Trace of tool calls"); keys are never part of it.
package calltrace

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpmcp/bpmcp/internal/jsonwalk"
)

// Entry is one line of the trace.
type Entry struct {
	Time    time.Time `json:"time"`              // when the call began (UTC)
	Episode string    `json:"episode,omitempty"` // the caller's X-Bpmcp-Episode header
	Session string    `json:"session,omitempty"` // the MCP session id: "stdio" over stdio, none in stateless HTTP
	Tool    string    `json:"tool"`
	// Arguments as the call sent them, but for images given inline (base64
	// or data: URLs), each replaced by {"bytes": n, "sha256": hex}.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	IsError   bool            `json:"is_error"`
	// Outcome: "ok", "tool_error", "input_required" (the call asked the
	// user through the client) or "protocol_error".
	Outcome string `json:"outcome"`
	// Status, RunID and Credits are read from the result, when it has them
	// (run_prompt, get_run, betterwaifu_generate…): the run's status, its
	// id and the credits it consumed.
	Status     string  `json:"status,omitempty"`
	RunID      string  `json:"run_id,omitempty"`
	Credits    *int    `json:"credits,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// UpstreamRequests counts the HTTP requests sent to BetterPrompt and
	// BetterWaifu on the call's behalf while it ran (retries included; a
	// start request that outlives the call counts until the call ends).
	UpstreamRequests int64 `json:"upstream_requests"`
	// Error is the first line of an isError result's text.
	Error string `json:"error,omitempty"`
}

// Writer appends entries to a file, one JSON line each, safe for
// concurrent calls.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
}

// Open appends to the file at path, creating it (readable by its owner
// only: arguments are the user's) when absent.
func Open(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the trace file: %w", err)
	}
	return &Writer{w: f, closer: f}, nil
}

// NewWriter writes entries to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write appends e as one line.
func (t *Writer) Write(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err = t.w.Write(append(b, '\n'))
	return err
}

// Close closes the file Open opened.
func (t *Writer) Close() error {
	if t.closer == nil {
		return nil
	}
	return t.closer.Close()
}

type counterKey struct{}

// WithCounter returns ctx carrying a new count of upstream requests, which
// CountRequest adds to.
func WithCounter(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, counterKey{}, n), n
}

// CountRequest counts one upstream request for the call ctx belongs to, if
// it is traced.
func CountRequest(ctx context.Context) {
	if n, ok := ctx.Value(counterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}

type episodeKey struct{}

// WithEpisode returns ctx naming the episode a call belongs to.
func WithEpisode(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, episodeKey{}, id)
}

// Episode returns the episode WithEpisode named, or "".
func Episode(ctx context.Context) string {
	id, _ := ctx.Value(episodeKey{}).(string)
	return id
}

// inlineBelow is the length from which a string that decodes as base64 is
// taken for inline data (an image) rather than text.
const inlineBelow = 256

// Arguments returns raw with every inline image replaced by its size and
// hash: a base64 string of at least inlineBelow characters, or a data: URL.
// Arguments that are not JSON are written as {"unreadable_bytes": n}, never as they are.
func Arguments(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return json.RawMessage(fmt.Sprintf(`{"unreadable_bytes":%d}`, len(raw)))
	}
	out, err := json.Marshal(scrub(v))
	if err != nil {
		return nil
	}
	return out
}

// scrub replaces each inline image among v's strings by its size and hash.
func scrub(v any) any {
	return jsonwalk.Strings(v, func(s string) any {
		if data, ok := inlineData(s); ok {
			sum := sha256.Sum256(data)
			return map[string]any{"bytes": len(data), "sha256": hex.EncodeToString(sum[:])}
		}
		return s
	})
}

// inlineData decodes s when it is inline data: a data: URL, or a long
// base64 string.
func inlineData(s string) ([]byte, bool) {
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		if _, payload, ok := strings.Cut(rest, ";base64,"); ok {
			if b, ok := decodeBase64(payload); ok {
				return b, true
			}
			return []byte(payload), true // inline all the same: never kept
		}
		return []byte(rest), true
	}
	// Line breaks are allowed: Base64 is often wrapped (the decoders skip
	// them).
	if len(s) < inlineBelow || strings.Contains(s, " ") {
		return nil, false
	}
	return decodeBase64(s)
}

// decodeBase64 decodes s in any Base64 alphabet, padded or not.
func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}
