package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bpapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGoldenSchemas pins the schema agents see for every example config and
// every catalogue fixture version. Run `go test ./schema -update` after an
// intended change and review the diff.
func TestGoldenSchemas(t *testing.T) {
	cases := append(exampleConfigs(t), catalogueConfigs(t)...)
	for _, m := range goldenModels(t) {
		if len(m.AvailableRunOptions) > 0 {
			cases = append(cases, namedConfig{name: "runoptions-" + m.Model})
		}
	}
	want := map[string]bool{}
	for _, tc := range cases {
		want[tc.name+".json"] = true
		t.Run(tc.name, func(t *testing.T) {
			var s any
			if strings.HasPrefix(tc.name, "runoptions-") {
				m := findModel(goldenModels(t), strings.TrimPrefix(tc.name, "runoptions-"))
				s = (&Config{}).RunOptionsSchema(m)
			} else {
				c, err := Parse(tc.raw)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				is := c.InputSchema(nil)
				compile(t, is) // a valid draft 2020-12 schema
				s = is
			}
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			checkGolden(t, filepath.Join("testdata", "golden", tc.name+".json"), got)
		})
	}
	// Golden files whose source is gone are stale.
	files, _ := filepath.Glob("testdata/golden/*.json")
	for _, f := range files {
		if want[filepath.Base(f)] {
			continue
		}
		if *update {
			if err := os.Remove(f); err != nil {
				t.Error(err)
			}
			continue
		}
		t.Errorf("%s has no source config any more; run go test ./schema -update to remove it", f)
	}
}

// goldenModels are the models of the API reference's /v1/resources fixture
// (§10.4), copied into testdata/resources.json.
func goldenModels(t testing.TB) []bpapi.Model {
	t.Helper()
	b, err := os.ReadFile("testdata/resources.json")
	if err != nil {
		t.Fatal(err)
	}
	var res bpapi.Resources
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res.Models
}

func findModel(models []bpapi.Model, name string) *bpapi.Model {
	return (&bpapi.Resources{Models: models}).FindModel(name)
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test ./schema -update to create it", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated schema; run go test ./schema -update if the change is intended\n%s", path, lineDiff(want, got))
	}
}

// lineDiff shows the first differing lines of two texts with some context.
func lineDiff(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	var b strings.Builder
	from := max(0, i-3)
	for j := from; j < i; j++ {
		fmt.Fprintf(&b, "  %4d   %s\n", j+1, wl[j])
	}
	for j := i; j < min(len(wl), i+6); j++ {
		fmt.Fprintf(&b, "  %4d - %s\n", j+1, wl[j])
	}
	for j := i; j < min(len(gl), i+6); j++ {
		fmt.Fprintf(&b, "  %4d + %s\n", j+1, gl[j])
	}
	fmt.Fprintf(&b, "  (golden %d lines, generated %d lines)", len(wl), len(gl))
	return b.String()
}
