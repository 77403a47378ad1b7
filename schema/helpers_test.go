package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"
	jsv "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bpmcp/bpmcp/bpapi"
)

// namedConfig is one prompt configuration used by the tests.
type namedConfig struct {
	name string          // golden file name without .json
	raw  json.RawMessage // what Parse is given
}

// exampleConfigs returns the twelve §11 configurations of the API reference,
// copied into testdata/configs.
func exampleConfigs(t testing.TB) []namedConfig {
	t.Helper()
	files, err := filepath.Glob("testdata/configs/*.json")
	if err != nil || len(files) != 12 {
		t.Fatalf("want the 12 example configs in testdata/configs, got %d (%v)", len(files), err)
	}
	var out []namedConfig
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, namedConfig{strings.TrimSuffix(filepath.Base(f), ".json"), b})
	}
	return out
}

// catalogueConfigs returns every version of every fixture in the shared prompt
// catalogue (../testdata/catalogue), as the tools read them: config, or the
// legacy inputsJTD wrapped as {"inputsJTD": ...}.
func catalogueConfigs(t testing.TB) []namedConfig {
	t.Helper()
	files, err := filepath.Glob("../testdata/catalogue/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []namedConfig
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fixture struct {
			Slug     string                `json:"slug"`
			Versions []bpapi.PromptVersion `json:"versions"`
		}
		if err := json.Unmarshal(b, &fixture); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		slug := fixture.Slug
		if slug == "" {
			slug = strings.TrimSuffix(filepath.Base(f), ".json")
		}
		for _, v := range fixture.Versions {
			id := v.PromptVersionID
			if len(id) > 8 {
				id = id[:8]
			}
			out = append(out, namedConfig{"catalogue-" + slug + "-" + id, v.InputConfig()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// mustParse parses a config or fails the test.
func mustParse(t testing.TB, raw string) *Config {
	t.Helper()
	c, err := Parse(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("Parse(%s): %v", raw, err)
	}
	return c
}

// compile compiles a generated schema with the independent validator,
// asserting formats, so that "format": "uri" means what it says.
func compile(t testing.TB, s *jsonschema.Schema) *jsv.Schema {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal schema: %v", err)
	}
	doc, err := jsv.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, b)
	}
	c := jsv.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem://inputs.json", doc); err != nil {
		t.Fatalf("add schema: %v\n%s", err, b)
	}
	sch, err := c.Compile("mem://inputs.json")
	if err != nil {
		t.Fatalf("compile schema: %v\n%s", err, b)
	}
	return sch
}

// schemaAccepts reports whether the compiled schema accepts the JSON document.
func schemaAccepts(t testing.TB, sch *jsv.Schema, doc []byte) (bool, error) {
	t.Helper()
	v, err := jsv.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("input is not JSON: %v\n%s", err, doc)
	}
	err = sch.Validate(v)
	return err == nil, err
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
