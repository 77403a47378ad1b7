package schema

import (
	"encoding/json"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and a config
// it accepts must give a schema that marshals to valid JSON and an Example
// that Validate accepts. A normal test run only runs the seeds; fuzz with
//
//	go test -run=^$ -fuzz=FuzzParse -fuzztime=60s ./schema/
func FuzzParse(f *testing.F) {
	for _, nc := range exampleConfigs(f) {
		f.Add([]byte(nc.raw))
	}
	for _, nc := range catalogueConfigs(f) {
		f.Add([]byte(nc.raw))
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"{}"`, `"\"{}\""`, `{"imageCount":3}`, `{"images":2}`,
		`{"variables":{"a":{"type":2,"multiple":{"min":9,"max":2},"options":{"x":"X"}}}}`,
		`{"variables":{"a":{"type":2,"multiple":{"min":0},"options":{"":""}}}}`,
		`{"variables":{"a":{"type":"SELECT","options":["x","x"]},"a":7}}`,
		`{"inputsJTD":{"properties":{"textInputs":{"properties":{"a":{"enum":[]}},"optionalProperties":{"a":{}}}},"metadata":{"imageCount":1.0}}}`,
		`{"variables":{"a":{"type":2,"multiple":{"max":1e400},"options":{"x":"X"}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse(raw)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with an error")
			}
			return
		}
		b, err := json.Marshal(cfg.InputSchema(nil))
		if err != nil || !json.Valid(b) {
			t.Fatalf("InputSchema does not marshal: %v", err)
		}
		ex, err := json.Marshal(cfg.Example())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Validate(ex); err != nil {
			t.Fatalf("Validate(Example()) = %v\nconfig: %q\nexample: %s", err, raw, ex)
		}
		// Validate must not panic on arbitrary inputs either.
		_, _ = cfg.Validate(raw)
	})
}

// FuzzValidate feeds arbitrary inputs to Validate for a config with every kind
// of variable and images.
func FuzzValidate(f *testing.F) {
	cfg, err := Parse(json.RawMessage(`{"variables":{"t":{"type":0},"d":{"type":0,"defaultValues":["x"]},"s":{"type":2,"options":{"a":"A","b, c":"B"}},"m":{"type":2,"multiple":{"min":1,"max":2},"options":{"a":"A","b, c":"B","d":"D"}}},"images":[{},{}]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"textInputs":{"t":"x","s":"a","m":"a, b, c"},"imageInputs":[{"type":"url","url":"https://a.b/c"},{"type":"base64","base64":"QUJD"}]}`))
	f.Add([]byte(`{"textInputs":{"m":[1,"a","a"]},"imageInputs":[{"type":"base64","base64":"data:image/png;base64,===="}]}`))
	f.Add([]byte(`"{\"textInputs\":{}}"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := cfg.Validate(raw)
		if err == nil && len(in.ImageInputs) != 2 {
			t.Fatalf("accepted %d images", len(in.ImageInputs))
		}
	})
}
