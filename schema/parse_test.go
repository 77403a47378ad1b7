package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	one, two, three := 1, 2, 3
	tests := []struct {
		name string
		raw  string
		want *Config
	}{
		{"nil", ``, &Config{}},
		{"null", `null`, &Config{}},
		{"empty", `{}`, &Config{}},
		{"spaces", " \n ", &Config{}},
		{"text", `{"variables":{"topic":{"type":0,"description":"What"}}}`,
			&Config{Variables: []Variable{{Key: "topic", Kind: KindText, Description: "What"}}}},
		{"type as float, string, TEXT", `{"variables":{"a":{"type":0.0},"b":{"type":"0"},"c":{"type":"TEXT","options":{"x":"X"}}}}`,
			&Config{Variables: []Variable{{Key: "a"}, {Key: "b"}, {Key: "c"}}}},
		{"select numbering 2, 1, SELECT, missing", `{"variables":{"a":{"type":2,"options":{"x":"X"}},"b":{"type":1,"options":{"x":"X"}},"c":{"type":"SELECT","options":{"x":"X"}},"d":{"options":{"x":"X"}}}}`,
			&Config{Variables: []Variable{
				{Key: "a", Kind: KindSelect, Options: []Option{{"x", "X"}}},
				{Key: "b", Kind: KindSelect, Options: []Option{{"x", "X"}}},
				{Key: "c", Kind: KindSelect, Options: []Option{{"x", "X"}}},
				{Key: "d", Kind: KindSelect, Options: []Option{{"x", "X"}}}}}},
		{"select without options is text", `{"variables":{"a":{"type":2,"options":{}},"b":{"type":2},"c":{"type":2,"options":"x"}}}`,
			&Config{Variables: []Variable{{Key: "a"}, {Key: "b"}, {Key: "c"}}}},
		{"options keep JSON order", `{"variables":{"s":{"type":2,"options":{"z":"Z","a":"A","m":"M"}}}}`,
			&Config{Variables: []Variable{{Key: "s", Kind: KindSelect, Options: []Option{{"z", "Z"}, {"a", "A"}, {"m", "M"}}}}}},
		{"options as array, missing labels", `{"variables":{"s":{"type":2,"options":["b","a","b"]},"t":{"type":2,"options":{"x":null,"y":"","z":3}}}}`,
			&Config{Variables: []Variable{
				{Key: "s", Kind: KindSelect, Options: []Option{{"b", "b"}, {"a", "a"}}},
				{Key: "t", Kind: KindSelect, Options: []Option{{"x", "x"}, {"y", "y"}, {"z", "3"}}}}}},
		{"duplicate keys: first position, last value", `{"variables":{"a":{"type":0},"b":{"type":0},"a":{"type":0,"description":"last"}}}`,
			&Config{Variables: []Variable{{Key: "a", Description: "last"}, {Key: "b"}}}},
		{"multiple forms", `{"variables":{
			"t":{"type":2,"multiple":true,"options":{"x":"X"}},
			"e":{"type":2,"multiple":{},"options":{"x":"X"}},
			"b":{"type":2,"multiple":{"min":1.0,"max":"3"},"options":{"x":"X","y":"Y","z":"Z"}},
			"f":{"type":2,"multiple":false,"options":{"x":"X"}},
			"n":{"type":2,"multiple":null,"options":{"x":"X"}}}}`,
			&Config{Variables: []Variable{
				{Key: "t", Kind: KindSelect, Multiple: true, Options: []Option{{"x", "X"}}},
				{Key: "e", Kind: KindSelect, Multiple: true, Options: []Option{{"x", "X"}}},
				{Key: "b", Kind: KindSelect, Multiple: true, Min: &one, Max: &three, Options: []Option{{"x", "X"}, {"y", "Y"}, {"z", "Z"}}},
				{Key: "f", Kind: KindSelect, Options: []Option{{"x", "X"}}},
				{Key: "n", Kind: KindSelect, Options: []Option{{"x", "X"}}}}}},
		{"bounds normalized", `{"variables":{
			"swap":{"type":2,"multiple":{"min":3,"max":1},"options":{"x":"X","y":"Y","z":"Z"}},
			"zero":{"type":2,"multiple":{"max":0},"options":{"x":"X"}},
			"cap":{"type":2,"multiple":{"min":5},"options":{"x":"X","y":"Y"}},
			"junk":{"type":2,"multiple":{"min":-1,"max":1.5},"options":{"x":"X"}}}}`,
			&Config{Variables: []Variable{
				{Key: "swap", Kind: KindSelect, Multiple: true, Min: &one, Max: &three, Options: []Option{{"x", "X"}, {"y", "Y"}, {"z", "Z"}}},
				{Key: "zero", Kind: KindSelect, Multiple: true, Options: []Option{{"x", "X"}}},
				{Key: "cap", Kind: KindSelect, Multiple: true, Min: &two, Options: []Option{{"x", "X"}, {"y", "Y"}}},
				{Key: "junk", Kind: KindSelect, Multiple: true, Options: []Option{{"x", "X"}}}}}},
		{"defaults", `{"variables":{"a":{"type":0,"defaultValues":["x","y"]},"b":{"type":0,"defaultValues":"bare"},"c":{"type":0,"defaultValues":[]},"d":{"type":0,"defaultValues":[""]},"e":{"type":0,"defaultValues":[null,5]}}}`,
			&Config{Variables: []Variable{
				{Key: "a", Defaults: []string{"x", "y"}},
				{Key: "b", Defaults: []string{"bare"}},
				{Key: "c"},
				{Key: "d", Defaults: []string{""}, AllowEmpty: true},
				{Key: "e", Defaults: []string{"5"}}}}},
		{"allowEmpty, unknown keys, missing description", `{"variables":{"a":{"type":0,"allowEmpty":true,"foo":[1,{}]},"b":"not an object"},"extra":1}`,
			&Config{Variables: []Variable{{Key: "a", AllowEmpty: true}, {Key: "b"}}}},
		{"images", `{"variables":{},"images":[{"description":"first"},{},"third",7]}`,
			&Config{Images: []Image{{"first"}, {}, {"third"}, {"7"}}}},
		{"images without variables", `{"images":[{"description":"only"}]}`, &Config{Images: []Image{{"only"}}}},
		{"imageCount larger than images", `{"images":[{"description":"d"}],"imageCount":3}`, &Config{Images: []Image{{"d"}, {}, {}}}},
		{"imageCount smaller than images", `{"images":[{"description":"d"},{}],"imageCount":1}`, &Config{Images: []Image{{"d"}, {}}}},
		{"imageCount alone", `{"imageCount":2.0}`, &Config{Images: []Image{{}, {}}}},
		{"images as a count", `{"variables":{},"images":2}`, &Config{Images: []Image{{}, {}}}},
		{"double encoded", `"{\"variables\":{\"a\":{\"type\":0}}}"`, &Config{Variables: []Variable{{Key: "a"}}}},
		{"encoded four times", nested(`{"images":[{}]}`, 4), &Config{Images: []Image{{}}}},
		{"inputMetadata wrapper", `{"inputMetadata":{"variables":{"a":{"type":0}},"images":[{}]}}`,
			&Config{Variables: []Variable{{Key: "a"}}, Images: []Image{{}}}},
		{"inputsJTD", `{"inputsJTD":{"properties":{"textInputs":{"properties":{"req":{"type":"string","metadata":{"description":"R"}}},"optionalProperties":{"opt":{"type":"string"},"optd":{"metadata":{"defaultValues":["d"],"allowEmpty":true}}}}},"metadata":{"imageCount":1}}}`,
			&Config{Legacy: true, Images: []Image{{}}, Variables: []Variable{
				{Key: "req", Description: "R"},
				{Key: "opt", Optional: true, Defaults: []string{""}},
				{Key: "optd", Defaults: []string{"d"}, AllowEmpty: true}}}},
		{"inputsJTD enums", `{"inputsJTD":{"properties":{"textInputs":{"properties":{"one":{"enum":["a","b"]},"many":{"elements":{"enum":["a","b"]}}}}}}}`,
			&Config{Legacy: true, Variables: []Variable{
				{Key: "one", Kind: KindSelect, Options: []Option{{"a", "a"}, {"b", "b"}}},
				{Key: "many", Kind: KindSelect, Multiple: true, Options: []Option{{"a", "a"}, {"b", "b"}}}}}},
		{"inputsJTD double encoded, textInputs optional", `{"inputsJTD":"{\"optionalProperties\":{\"textInputs\":{\"properties\":{\"a\":{}}}},\"metadata\":{\"imageCount\":2}}"}`,
			&Config{Legacy: true, Variables: []Variable{{Key: "a"}}, Images: []Image{{}, {}}}},
		{"bare JTD", `{"properties":{"textInputs":{"properties":{"a":{}}}}}`, &Config{Legacy: true, Variables: []Variable{{Key: "a"}}}},
		{"empty inputsJTD", `{"inputsJTD":{}}`, &Config{Legacy: true}},
		{"variables win over inputsJTD", `{"variables":{"a":{"type":0}},"inputsJTD":{"properties":{"textInputs":{"properties":{"b":{}}}}}}`,
			&Config{Variables: []Variable{{Key: "a"}}}},
		{"variables not an object", `{"variables":[{"key":"a"}],"images":[]}`, &Config{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			normalizeEmpty(got)
			normalizeEmpty(tc.want)
			if !reflect.DeepEqual(got, tc.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.want)
				t.Errorf("Parse =\n %s\nwant\n %s", gj, wj)
			}
		})
	}
}

// nested encodes s as a JSON string n times.
func nested(s string, n int) string {
	for range n {
		b, _ := json.Marshal(s)
		s = string(b)
	}
	return s
}

// normalizeEmpty makes empty and nil slices compare equal.
func normalizeEmpty(c *Config) {
	if len(c.Variables) == 0 {
		c.Variables = nil
	}
	if len(c.Images) == 0 {
		c.Images = nil
	}
	for i := range c.Variables {
		if len(c.Variables[i].Options) == 0 {
			c.Variables[i].Options = nil
		}
		if len(c.Variables[i].Defaults) == 0 {
			c.Variables[i].Defaults = nil
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`[]`, "prompt config must be a JSON object, got an array"},
		{`42`, "prompt config must be a JSON object, got number 42"},
		{`"just text"`, "prompt config is a string that is not valid JSON"},
		{`"[1]"`, "prompt config must be a JSON object, got an array"},
		{`{"variables":`, "prompt config is not valid JSON"},
		{`{} {}`, "prompt config is not valid JSON"},
		{`{"imageCount":-1}`, "imageCount must be a whole number from 0 to 100, got number -1"},
		{`{"imageCount":1e9}`, "imageCount must be a whole number from 0 to 100"},
		{`{"images":[],"imageCount":"many"}`, `imageCount must be a whole number from 0 to 100, got the string "many"`},
		{`{"inputsJTD":[1]}`, "inputsJTD must be a JSON object, got an array"},
		{nested(`{}`, 6), "nested too deeply"},
	}
	for _, tc := range tests {
		c, err := Parse(json.RawMessage(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, %v; want error containing %q", tc.raw, c, err, tc.want)
		}
	}
}

func TestVariableHelpers(t *testing.T) {
	two := 2
	tests := []struct {
		v        Variable
		required bool
		def      string
		hasDef   bool
		lo, hi   int
	}{
		{Variable{Kind: KindText}, true, "", false, 0, -1},
		{Variable{Kind: KindText, Defaults: []string{"d", "e"}}, false, "d", true, 0, -1},
		{Variable{Kind: KindText, Optional: true, Defaults: []string{""}}, false, "", false, 0, -1},
		{Variable{Kind: KindSelect, Defaults: []string{"x"}}, true, "", false, 1, 1},
		{Variable{Kind: KindSelect, Multiple: true}, true, "", false, 1, -1},
		{Variable{Kind: KindSelect, Multiple: true, Max: &two}, true, "", false, 1, 2},
	}
	for i, tc := range tests {
		if got := tc.v.Required(); got != tc.required {
			t.Errorf("%d: Required = %v", i, got)
		}
		if d, ok := tc.v.Default(); d != tc.def || ok != tc.hasDef {
			t.Errorf("%d: Default = %q, %v", i, d, ok)
		}
		if lo, hi := tc.v.ItemBounds(); lo != tc.lo || hi != tc.hi {
			t.Errorf("%d: ItemBounds = %d, %d", i, lo, hi)
		}
	}
	if KindText.String() != "text" || KindSelect.String() != "select" || Kind(9).String() != "kind(9)" {
		t.Error("Kind.String")
	}
	amb := Variable{Kind: KindSelect, Multiple: true, Options: []Option{{"Warm, friendly", ""}, {"b", ""}}}
	if !amb.JoinAmbiguous() || (Variable{Kind: KindSelect, Options: amb.Options}).JoinAmbiguous() {
		t.Error("JoinAmbiguous")
	}
	var nilCfg *Config
	if nilCfg.Variable("x") != nil || nilCfg.InputSchema(nil) == nil || len(nilCfg.Example()) != 1 {
		t.Error("nil Config")
	}
	if _, err := nilCfg.Validate(nil); err != nil {
		t.Errorf("nil Config Validate: %v", err)
	}
}

func TestHumanize(t *testing.T) {
	for in, want := range map[string]string{
		"Output_language":     "Output language",
		"customerType":        "Customer type",
		"company_name":        "Company name",
		"SQL_Query":           "SQL query",
		"":                    "Text input",
		"__":                  "Text input",
		"ключ-значение":       "Ключ значение",
		"my key":              "My key",
		"Body_fat_percentage": "Body fat percentage",
	} {
		if got := humanize(in); got != want {
			t.Errorf("humanize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := exampleText("SQL_Query"); got != "Example SQL query" {
		t.Errorf("exampleText = %q", got)
	}
}
