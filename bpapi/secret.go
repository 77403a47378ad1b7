package bpapi

import (
	"fmt"
	"log/slog"
)

// APIKey is a BetterPrompt API key. Every way of printing it (fmt verbs,
// JSON, slog) shows a placeholder, so a key that reaches a log line, an
// error or a struct dump by mistake does not leak. Use Reveal only to build
// the Authorization header.
type APIKey string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (k APIKey) String() string {
	if k == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, used by %#v.
func (k APIKey) GoString() string { return `bpapi.APIKey("` + k.String() + `")` }

// Format implements fmt.Formatter so that every verb (%s, %v, %q, %x, %d)
// prints the placeholder rather than the key's bytes.
func (k APIKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(k.GoString()))
		return
	}
	_, _ = f.Write([]byte(k.String()))
}

// MarshalJSON implements json.Marshaler.
func (k APIKey) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used for map keys and by
// some encoders).
func (k APIKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// LogValue implements slog.LogValuer.
func (k APIKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Reveal returns the key itself. Call it only where the key leaves the
// process on purpose: the Authorization header of an upstream request.
func (k APIKey) Reveal() string { return string(k) }
