package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxArgumentsBytes bounds the arguments of one call. The largest
// legitimate argument is a few base64 images.
const MaxArgumentsBytes = 32 << 20

// decodeArgs decodes a call's arguments into v, refusing unknown argument
// names and wrong types with messages a model can act on (mcp-go's built-in
// validation answers with Go struct dumps).
func decodeArgs(raw any, allowed []string, v any) error {
	data, err := objectArgs(raw)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Invalidf("the arguments are not valid JSON: %v", err)
	}
	for name := range fields {
		if !slices.Contains(allowed, name) {
			return Invalidf("unknown argument %q; this tool takes %s", name, quotedList(allowed))
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "the arguments"
			} else if key := memberOfKind(fields[field], te.Value); key != "" {
				field += "." + key // encoding/json names a map, not its member
			}
			return Invalidf("argument %q must be %s, got a JSON %s", field, jsonTypeName(te.Type.String()), te.Value)
		}
		return Invalidf("the arguments could not be read: %v", err)
	}
	return nil
}

// memberOfKind returns the first key (in sorted order) of the JSON object
// raw whose value is of kind ("number", "string", "bool", "array",
// "object"), or "" when raw is no object or has none.
func memberOfKind(raw json.RawMessage, kind string) string {
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil {
		return ""
	}
	keys := slices.Sorted(maps.Keys(members))
	for _, k := range keys {
		if jsonKind(members[k]) == kind {
			return k
		}
	}
	return ""
}

// jsonKind names the kind of a JSON value as encoding/json's type errors do.
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// objectArgs returns the arguments as the bytes of a JSON object ("{}" when
// there are none), within MaxArgumentsBytes.
func objectArgs(raw any) (json.RawMessage, error) {
	data, err := argumentBytes(raw)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxArgumentsBytes {
		return nil, Invalidf("the arguments are %d bytes; the limit is %d", len(data), MaxArgumentsBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		trimmed = []byte("{}")
	}
	if trimmed[0] != '{' {
		return nil, Invalidf("the arguments must be a JSON object")
	}
	return trimmed, nil
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
			return nil, Invalidf("the arguments could not be read: %v", err)
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

// Excerpt quotes at most n runes of s for an error message, so that a huge
// or binary argument does not flood the reply.
func Excerpt(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	r := []rune(s)
	if len(r) > n {
		return fmt.Sprintf("%q…", string(r[:n]))
	}
	return fmt.Sprintf("%q", s)
}
