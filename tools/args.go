package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxArgumentsBytes bounds the arguments of one call. The largest legitimate
// argument is a few base64 images inside run_prompt's inputs.
const maxArgumentsBytes = 32 << 20

// decodeArgs decodes a call's arguments into v, refusing unknown argument
// names and wrong types with messages a model can act on (mcp-go's built-in
// validation answers with Go struct dumps).
func decodeArgs(raw any, allowed []string, v any) error {
	data, err := argumentBytes(raw)
	if err != nil {
		return err
	}
	if len(data) > maxArgumentsBytes {
		return invalidArgf("the arguments are %d bytes; the limit is %d", len(data), maxArgumentsBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		trimmed = []byte("{}")
	}
	if trimmed[0] != '{' {
		return invalidArgf("the arguments must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return invalidArgf("the arguments are not valid JSON: %v", err)
	}
	for name := range fields {
		if !slices.Contains(allowed, name) {
			return invalidArgf("unknown argument %q; this tool takes %s", name, quotedList(allowed))
		}
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "the arguments"
			}
			return invalidArgf("argument %q must be %s, got a JSON %s", field, jsonTypeName(te.Type.String()), te.Value)
		}
		return invalidArgf("the arguments could not be read: %v", err)
	}
	return nil
}

// argumentBytes returns the JSON of the raw arguments mcp-go hands over
// (json.RawMessage for wire calls, a map for in-process ones).
func argumentBytes(raw any) ([]byte, error) {
	switch a := raw.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return a, nil
	case []byte:
		return a, nil
	default:
		b, err := json.Marshal(a)
		if err != nil {
			return nil, invalidArgf("the arguments could not be read: %v", err)
		}
		return b, nil
	}
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "a JSON object"
	case strings.HasPrefix(goType, "[]"):
		return "a JSON array"
	default:
		return goType
	}
}

func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 0 {
		return "no arguments"
	}
	return strings.Join(q, ", ")
}

// uuidPattern is the canonical 8-4-4-4-12 form, the only one the API takes.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkID refuses an id that is not a canonical UUID, naming the tool that
// hands out valid ones.
func checkID(name, value, source string) error {
	if value == "" {
		return invalidArgf("%s is required; %s", name, source)
	}
	if !uuidPattern.MatchString(value) {
		got := excerpt(value, 40)
		if looksLikeKey(value) {
			got = "a value that looks like an API key (not shown)"
		}
		return invalidArgf("%s must be a UUID such as 2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01, got %s; %s", name, got, source)
	}
	return nil
}

// looksLikeKey reports whether a value pasted into an argument may be an
// API key, which must not be echoed into a result.
func looksLikeKey(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(s, "bp_") || strings.HasPrefix(s, "bearer ")
}

// excerpt quotes at most n runes of s for an error message, so that a huge or
// binary argument does not flood the reply.
func excerpt(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	r := []rune(s)
	if len(r) > n {
		return fmt.Sprintf("%q…", string(r[:n]))
	}
	return fmt.Sprintf("%q", s)
}
