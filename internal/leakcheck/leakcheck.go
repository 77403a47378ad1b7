// Package leakcheck finds a secret in text that should not hold it, in the
// forms an echo may give it: raw, JSON-escaped or percent-encoded. Tests use
// it to check that an API key never reaches a result or a log line.
package leakcheck

import (
	"fmt"
	"strings"
)

// Forms returns the ways an answer may echo key, by name: raw, JSON-escaped
// (the underscores only, or every character, with lower- or upper-case hex
// digits), percent-encoded (the underscores only or every character, with
// upper- or lower-case hex digits), and percent-encoded with the '%'
// JSON-escaped.
func Forms(key string) map[string]string {
	every := func(format string) string {
		var b strings.Builder
		for i := 0; i < len(key); i++ {
			fmt.Fprintf(&b, format, key[i])
		}
		return b.String()
	}
	return map[string]string{
		"raw":               key,
		"json _":            strings.ReplaceAll(key, "_", `\u005f`),
		"json all":          every(`\u%04x`),
		"json all upper":    every(`\u%04X`),
		"percent _":         strings.ReplaceAll(key, "_", "%5F"),
		"percent _ lower":   strings.ReplaceAll(key, "_", "%5f"),
		"percent all":       every("%%%02X"),
		"percent all lower": every("%%%02x"),
		"json percent _":    strings.ReplaceAll(key, "_", `\u00255F`),
	}
}

// Find returns the name of a form of key (see Forms) that s contains, or ""
// when s contains none.
func Find(s, key string) string {
	for name, form := range Forms(key) {
		if strings.Contains(s, form) {
			return name
		}
	}
	return ""
}
