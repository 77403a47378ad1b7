// Package secret holds a string type for keys and tokens that never prints
// itself: the BetterPrompt API key, a caller's own key, the HTTP bearer
// token.
package secret

import (
	"fmt"
	"log/slog"
)

// String is a secret. Every way of printing it (fmt verbs, JSON, slog)
// shows a placeholder, so a secret that reaches a log line, an error or a
// struct dump by mistake does not leak. Use Reveal only where it leaves the
// process on purpose.
type String string

// Placeholder is what a secret prints as.
const Placeholder = "[redacted]"

// String implements fmt.Stringer.
func (k String) String() string {
	if k == "" {
		return ""
	}
	return Placeholder
}

// GoString implements fmt.GoStringer, used by %#v.
func (k String) GoString() string { return `secret.String("` + k.String() + `")` }

// Format implements fmt.Formatter so that every verb (%s, %v, %q, %x, %d)
// prints the placeholder rather than the key's bytes.
func (k String) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(k.GoString()))
		return
	}
	_, _ = f.Write([]byte(k.String()))
}

// MarshalJSON implements json.Marshaler.
func (k String) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used for map keys and by
// some encoders).
func (k String) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// LogValue implements slog.LogValuer.
func (k String) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Reveal returns the secret itself. Call it only where it leaves the process
// on purpose (the Authorization header of an upstream request) or is
// compared.
func (k String) Reveal() string { return string(k) }
