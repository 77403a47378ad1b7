package schema

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// toAny converts a jvalue to what encoding/json decodes with UseNumber.
func toAny(v jvalue) any {
	switch v.kind {
	case jNull:
		return nil
	case jBool:
		return v.str == "true"
	case jNumber:
		return json.Number(v.str)
	case jString:
		return v.str
	case jArray:
		out := make([]any, len(v.members))
		for i, el := range v.members {
			out[i] = toAny(el.val)
		}
		return out
	default:
		out := map[string]any{}
		for _, m := range v.members {
			out[m.key] = toAny(m.val) // the last duplicate wins
		}
		return out
	}
}

func stdDecode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// checkSameAsStd checks that parseJSON accepts exactly what encoding/json
// accepts and decodes it to the same value.
func checkSameAsStd(t *testing.T, data []byte) {
	t.Helper()
	got, err := parseJSON(data)
	if valid := json.Valid(data); valid != (err == nil) {
		t.Fatalf("parseJSON(%q) error = %v, json.Valid = %v", data, err, valid)
	}
	if err != nil {
		return
	}
	want, err := stdDecode(data)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if g := toAny(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("parseJSON(%q) = %#v, encoding/json = %#v", data, g, want)
	}
}

var jsonSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `-0.5e+10`, `1E3`, `true`, `false`, `null`, ` {"a" : [1, "x", null, {"b":{}}], "a": 2} `,
	`"\u00e9\ud83d\ude00\ud800\udc00\ud800x\udc00\u0041\\\/\b\f\n\r\t"`, "\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"",
	`01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `tru`, `nul`, `truex`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `[`, `{"a":`,
	"\"\x01\"", `"\x"`, `"\u12"`, `"\u12G4"`, `1 2`, "\ufeff{}", `{"a":1}}`, "[1]\n", `"\ud83d"`, `"\udc00\ud83d\ude00"`,
	`[` + strings.Repeat(`[`, 50) + strings.Repeat(`]`, 50) + `]`,
}

func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkSameAsStd(t, []byte(s))
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if _, err := parseJSON([]byte(deep)); err == nil {
		t.Error("no error for nesting deeper than encoding/json allows")
	}
	if json.Valid([]byte(deep)) {
		t.Error("encoding/json accepts the deep document")
	}
}

// FuzzParseJSON compares the config/inputs decoder with encoding/json.
func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsStd(t, data)
	})
}
