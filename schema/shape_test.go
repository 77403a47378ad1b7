package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// checkShape is ParseInputs' verdict without size limits.
func checkShape(inputs json.RawMessage) error {
	_, err := ParseInputs(inputs, Limits{})
	return err
}

func TestParseInputsShape(t *testing.T) {
	cases := []struct {
		inputs string
		want   string // "" = accepted
	}{
		{``, ""},
		{`null`, ""},
		{`{}`, ""},
		{`{"textInputs":{"a":"x","b":["y","z"],"c":null}}`, ""},
		{`{"imageInputs":[{"type":"url","url":"https://example.com/a.png"},{"type":"base64","base64":"aGVsbG8="}]}`, ""},
		{`"{\"textInputs\":{}}"`, ""},
		{`[]`, "inputs: must be an object"},
		{`{"textInput":{}}`, "textInput: unknown key"},
		{`{"textInputs":[]}`, "textInputs: must be an object"},
		{`{"textInputs":{"a":5}}`, "textInputs.a: must be a string"},
		{`{"textInputs":{"a":[1]}}`, "textInputs.a: must be a string"},
		{`{"textInputs":{"a":{"b":"c"}}}`, "textInputs.a: must be a string"},
		{`{"imageInputs":{"type":"url"}}`, "imageInputs: must be an array"},
		{`{"imageInputs":[{"type":"url","url":"file:///etc/passwd"}]}`, "imageInputs[0].url"},
		{`{"imageInputs":[{"type":"url","url":"javascript:alert(1)"}]}`, "imageInputs[0].url"},
		{`{"imageInputs":[{"type":"base64","base64":"not base64!"}]}`, "imageInputs[0].base64"},
		{`{"imageInputs":[{"type":"ftp","url":"ftp://x"}]}`, "imageInputs[0].type"},
		{`{"imageInputs":["https://example.com/a.png"]}`, "imageInputs[0]: must be an object"},
	}
	for _, tc := range cases {
		err := checkShape(json.RawMessage(tc.inputs))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ParseInputs(%s) = %v, want nil", tc.inputs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ParseInputs(%s) = %v, want it to mention %q", tc.inputs, err, tc.want)
		}
	}
}

// Whatever ParseInputs refuses, Validate refuses too, for any configuration:
// the early check never rejects inputs the full check would accept.
func TestParseInputsIsWeakerThanValidate(t *testing.T) {
	configs := []string{`{}`, `{"variables":{"a":{"type":0}},"images":[{}]}`,
		`{"variables":{"a":{"type":2,"multiple":true,"options":{"x":"X","y":"Y"}}}}`}
	inputs := []string{`{"textInputs":{"a":5}}`, `{"imageInputs":[{"type":"url","url":"file:///x"}]}`,
		`{"foo":1}`, `[]`, `{"textInputs":{"a":[1]}}`, `{"imageInputs":"x"}`}
	for _, c := range configs {
		cfg, err := Parse(json.RawMessage(c))
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range inputs {
			if checkShape(json.RawMessage(in)) == nil {
				continue
			}
			if _, err := cfg.Validate(json.RawMessage(in)); err == nil {
				t.Errorf("config %s: ParseInputs refuses %s but Validate accepts it", c, in)
			}
		}
	}
}

// Sizes beyond the caller's limits are refused with the field named, items
// of a multi-choice and inputs sent as a JSON string included.
func TestParseInputsLimits(t *testing.T) {
	lim := Limits{MaxTextRunes: 5, MaxURLBytes: 30}
	cases := []struct {
		inputs string
		field  string // "" = accepted
	}{
		{`{"textInputs":{"a":"ééééé"}}`, ""},
		{`{"textInputs":{"a":"éééééé"}}`, "textInputs.a"},
		{`{"textInputs":{"a":["ok","toolong"]}}`, "textInputs.a"},
		{`"{\"textInputs\":{\"a\":\"toolong\"}}"`, "textInputs.a"},
		{`{"imageInputs":[{"type":"url","url":"https://example.com/a.png"}]}`, ""},
		{`{"imageInputs":[{"type":"url","url":"https://example.com/a-much-longer-name.png"}]}`, "imageInputs[0].url"},
	}
	for _, tc := range cases {
		in, err := ParseInputs(json.RawMessage(tc.inputs), lim)
		switch {
		case tc.field == "" && (err != nil || in == nil):
			t.Errorf("ParseInputs(%s) = %v; want accepted", tc.inputs, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field+": is ")):
			t.Errorf("ParseInputs(%s) = %v; want a size error on %s", tc.inputs, err, tc.field)
		}
	}
}

// Validating parsed inputs gives what validating the raw JSON gives.
func TestValidateInputsMatchesValidate(t *testing.T) {
	cfg, err := Parse(json.RawMessage(`{"variables":{"tone":{"type":1,"options":{"warm":"","dry":""}},"topic":{"type":0}},"images":[{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{
		`{"textInputs":{"tone":"warm","topic":"x"},"imageInputs":[{"type":"url","url":"https://e.com/a.png"}]}`,
		`{"textInputs":{"tone":"loud"}}`,
		`null`,
	} {
		in, perr := ParseInputs(json.RawMessage(raw), Limits{})
		if perr != nil {
			t.Fatalf("ParseInputs(%s): %v", raw, perr)
		}
		a, aerr := cfg.Validate(json.RawMessage(raw))
		b, berr := cfg.ValidateInputs(in)
		if fmt.Sprint(a, aerr) != fmt.Sprint(b, berr) {
			t.Errorf("%s: Validate = %v, %v; ValidateInputs = %v, %v", raw, a, aerr, b, berr)
		}
	}
}
