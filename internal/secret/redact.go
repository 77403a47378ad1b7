package secret

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// An answer may echo a key back (a debugging proxy, an error message
// quoting the request), and not always as its raw bytes: JSON may escape
// any character (bp\u005f…), a URL or a query string percent-encodes it
// (bp%5F…), and the two combine. Decoding turns each of these into the key
// itself, so redaction must hold for the decoded text, not only for the
// bytes on the wire. Clients apply Redact to every body they read, before
// anything is decoded.

// maxUnescapeRounds is how many times text is unescaped (JSON escapes, then
// percent-escapes) when looking for the key: enough for a key that was
// percent-encoded and then JSON-escaped, or encoded twice.
const maxUnescapeRounds = 3

// Redact returns b with key replaced by the placeholder wherever it
// appears raw or after unescaping. A JSON document is rewritten as JSON:
// each string (object keys too) that holds the key is replaced by its
// unescaped text with the key redacted, and numbers are kept as written.
// Any other body is replaced by its unescaped text with the key redacted.
// b is returned unchanged when it does not hold the key.
func Redact(b []byte, key string) []byte {
	if key == "" {
		return b
	}
	k := []byte(key)
	if bytes.Contains(b, k) {
		b = bytes.ReplaceAll(b, k, []byte(Placeholder))
	}
	if !mayUnescapeTo(b, k) {
		return b
	}
	if _, found := unescapedWithKey(b, k); !found {
		return b
	}
	if out, ok := redactJSON(b, k); ok {
		if _, found := unescapedWithKey(out, k); !found {
			return out
		}
	}
	return redactText(b, k)
}

// redactJSON redacts key in every string of the JSON document b. It
// returns false when b is not a single JSON value.
func redactJSON(b, key []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, false
	}
	v, changed := redactValue(v, key)
	if !changed {
		return b, true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false // cannot happen: v came from the decoder
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// redactValue redacts key in the strings and object keys of v, a value
// decoded by encoding/json, and reports whether it changed anything.
func redactValue(v any, key []byte) (any, bool) {
	switch x := v.(type) {
	case string:
		return redactString(x, key)
	case []any:
		changed := false
		for i, e := range x {
			var ch bool
			x[i], ch = redactValue(e, key)
			changed = changed || ch
		}
		return x, changed
	case map[string]any:
		changed := false
		var renamed map[string]string
		for name, e := range x {
			if nv, ch := redactValue(e, key); ch {
				x[name], changed = nv, true
			}
			if nn, ch := redactString(name, key); ch {
				if renamed == nil {
					renamed = map[string]string{}
				}
				renamed[name] = nn
			}
		}
		for old, nn := range renamed {
			x[nn] = x[old]
			delete(x, old)
			changed = true
		}
		return x, changed
	}
	return v, false
}

// redactString redacts key in s (see redactText).
func redactString(s string, key []byte) (string, bool) {
	if !strings.Contains(s, string(key)) && !strings.ContainsAny(s, `\%`) {
		return s, false
	}
	out := redactText([]byte(s), key)
	if string(out) == s {
		return s, false
	}
	return string(out), true
}

// redactText returns b with key redacted: each time the key appears in b or
// in one of its unescapings, that text replaces b, with the key redacted.
// Should the key keep appearing (it cannot with real keys), the result is
// the placeholder alone.
func redactText(b, key []byte) []byte {
	for range 2 * (maxUnescapeRounds + 1) {
		text, found := unescapedWithKey(b, key)
		if !found {
			return b
		}
		b = bytes.ReplaceAll(text, key, []byte(Placeholder))
	}
	if _, found := unescapedWithKey(b, key); found {
		return []byte(Placeholder)
	}
	return b
}

// unescapedWithKey returns the first of b and its successive unescapings
// (at most maxUnescapeRounds) that contains key.
func unescapedWithKey(b, key []byte) ([]byte, bool) {
	if bytes.Contains(b, key) {
		return b, true
	}
	if !mayUnescapeTo(b, key) {
		return nil, false
	}
	for range maxUnescapeRounds {
		next, changed := unescapeJSON(b)
		next, pchanged := unescapePercent(next)
		if !changed && !pchanged {
			return nil, false
		}
		b = next
		if bytes.Contains(b, key) {
			return b, true
		}
	}
	return nil, false
}

// mayUnescapeTo reports whether unescaping b might make key appear, when b
// does not contain key: it is the cheap test that spares most bodies any
// unescaping. It looks only at the escapes of b, without decoding b.
//
// A key that appears after unescaping has at least one byte that an escape
// produced (its other bytes are of b, where the key is not). And a round
// of unescaping can make a new escape only out of a byte that an escape
// produced: a '\' or a '%', or a hex digit after a kept '%' ("%%41" gives
// "%A"), or a letter after a kept backslash. So when no escape of b produces
// a byte of the key, a '\', a '%' or a hex digit, and no backslash of b is
// kept, the first round gives text without the key and without escapes,
// and so does every other. The usual escapes of JSON ("\n", "\"",
// "\u0026", "\/") and of URLs ("%20", "%2F") produce none of those bytes.
func mayUnescapeTo(b, key []byte) bool {
	var relevant [256]bool // the bytes that an escape may not produce
	for _, c := range key {
		relevant[c] = true
	}
	for _, c := range []byte("\\%0123456789abcdefABCDEF") {
		relevant[c] = true
	}
	for rest := b; ; {
		i := bytes.IndexByte(rest, '\\')
		if i < 0 {
			break
		}
		n, r := jsonEscape(rest[i:])
		if n == 0 {
			return true // a kept backslash
		}
		var enc [utf8.UTFMax]byte
		for _, c := range enc[:utf8.EncodeRune(enc[:], r)] {
			if relevant[c] {
				return true
			}
		}
		rest = rest[i+n:]
	}
	for rest := b; ; {
		i := bytes.IndexByte(rest, '%')
		if i < 0 {
			return false
		}
		hi, ok1 := unhex(at(rest, i+1))
		lo, ok2 := unhex(at(rest, i+2))
		if ok1 && ok2 && relevant[hi<<4|lo] {
			return true
		}
		rest = rest[i+1:]
	}
}

// unescapeJSON decodes, leniently, the JSON escapes in b (\", \\, \/, \b,
// \f, \n, \r, \t, \uXXXX with surrogate pairs), wherever they are. A
// backslash that starts no valid escape is kept. It returns b itself when
// nothing was decoded.
func unescapeJSON(b []byte) ([]byte, bool) {
	return unescape(b, '\\', func(out, esc []byte) ([]byte, int) {
		n, r := jsonEscape(esc)
		if n == 0 {
			return out, 0
		}
		return utf8.AppendRune(out, r), n
	})
}

// unescapePercent decodes, leniently, the percent-escapes (%XX, hex digits
// in either case) in b. A '%' that starts no valid escape is kept; '+' is
// kept too. It returns b itself when nothing was decoded.
func unescapePercent(b []byte) ([]byte, bool) {
	return unescape(b, '%', func(out, esc []byte) ([]byte, int) {
		hi, ok1 := unhex(at(esc, 1))
		lo, ok2 := unhex(at(esc, 2))
		if !ok1 || !ok2 {
			return out, 0
		}
		return append(out, hi<<4|lo), 3
	})
}

// unescape decodes the escapes of b that start with the byte mark: at each
// mark, decode appends what the escape at the start of esc stands for to
// out and returns its length, or 0 (and out as it was) for no valid
// escape, whose mark is then kept. It returns b itself when nothing was
// decoded.
func unescape(b []byte, mark byte, decode func(out, esc []byte) ([]byte, int)) ([]byte, bool) {
	i := bytes.IndexByte(b, mark)
	if i < 0 {
		return b, false
	}
	orig := b
	out := make([]byte, 0, len(b))
	changed := false
	for i >= 0 {
		out = append(out, b[:i]...)
		b = b[i:]
		var n int
		if out, n = decode(out, b); n == 0 {
			out = append(out, mark)
			n = 1
		} else {
			changed = true
		}
		b = b[n:]
		i = bytes.IndexByte(b, mark)
	}
	if !changed {
		return orig, false
	}
	return append(out, b...), true
}

// jsonEscape decodes the JSON escape at the start of b (which begins with a
// backslash). It returns its length, or 0 when b starts no valid escape.
func jsonEscape(b []byte) (int, rune) {
	if len(b) < 2 {
		return 0, 0
	}
	switch b[1] {
	case '"', '\\', '/':
		return 2, rune(b[1])
	case 'b':
		return 2, '\b'
	case 'f':
		return 2, '\f'
	case 'n':
		return 2, '\n'
	case 'r':
		return 2, '\r'
	case 't':
		return 2, '\t'
	case 'u':
		r, ok := hex4(b[2:])
		if !ok {
			return 0, 0
		}
		if !utf16.IsSurrogate(r) {
			return 6, r
		}
		if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if r2, ok := hex4(b[8:]); ok {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					return 12, d
				}
			}
		}
		return 6, utf8.RuneError
	}
	return 0, 0
}

// hex4 decodes four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		d, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// at returns b[i], or 0 past its end.
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// unhex decodes one hex digit.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
