package bpapi

import (
	"strings"

	"github.com/bpmcp/bpmcp/internal/secret"
)

// An answer may echo the API key back (a debugging proxy, an error message
// quoting the request), and not always as its raw bytes: JSON may escape
// any character (bp\u005f…), a URL or a query string percent-encodes it
// (bp%5F…), and the two combine. Decoding turns each of these into the key
// itself, so redaction must hold for the decoded text, not only for the
// bytes on the wire.
//
// redactKey is applied to every body the client reads, before anything is
// decoded, so that no decoded field, error message, error data or log
// attribute can carry the key. Its common path is a search for the raw key
// and a look at the body's escapes (see mayUnescapeTo); only a body with an
// escape that could make the key is unescaped to look for it, and only a
// body whose unescaped text holds the key is rewritten.

// Redact returns s with the client's API key replaced by a placeholder,
// whether s holds the key raw, JSON-escaped or percent-encoded (in either
// case of hex digits). A JSON document stays a JSON document. Use it on
// text built from anything that may echo the key.
func (c *Client) Redact(s string) string {
	k := c.cred.key.Reveal()
	if k == "" || (!strings.Contains(s, k) && !strings.ContainsAny(s, `\%`)) {
		return s
	}
	return string(redactKey([]byte(s), k))
}

// redactBytes replaces the client's API key in b, in every form (see
// redactKey).
func (c *Client) redactBytes(b []byte) []byte { return redactKey(b, c.cred.key.Reveal()) }

// redactKey returns b with key replaced wherever it appears, raw or escaped
// (secret.Redact).
func redactKey(b []byte, key string) []byte { return secret.Redact(b, key) }
