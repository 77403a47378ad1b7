// Package jsonwalk rewrites the strings of a decoded JSON value: the trace
// replaces inline images by their size and hash, a replay replaces
// recorded media links by their local copies.
package jsonwalk

// Strings replaces, in place, every string in v (a value decoded from JSON
// into any: maps, slices, strings, numbers, booleans, nil) by what f
// returns for it, and returns v (a string is returned replaced).
func Strings(v any, f func(string) any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = Strings(x, f)
		}
	case []any:
		for i, x := range t {
			t[i] = Strings(x, f)
		}
	case string:
		return f(t)
	}
	return v
}
