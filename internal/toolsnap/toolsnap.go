// Package toolsnap checks each tool of a tools/list answer against a
// snapshot file, so that every change to what hosts and agents see is
// reviewed as a diff. It is used by tests.
package toolsnap

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Check compares each tool of result (a tools/list result, as sent) with
// dir/<name>.snap, rewriting the files when update is set. A snapshot whose
// tool is gone is reported too: removing a tool is reviewed as well.
func Check(t *testing.T, dir string, result []byte, update bool, updateCmd string) {
	t.Helper()
	var list struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(result, &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, raw := range list.Tools {
		var tool struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &tool); err != nil || tool.Name == "" {
			t.Fatalf("a tool without a name: %s", raw)
		}
		seen[tool.Name+".snap"] = true
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('\n')
		path := filepath.Join(dir, tool.Name+".snap")
		if update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run %s to create it)", err, updateCmd)
			continue
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s differs from %s; review the change and run %s.\n got: %s", tool.Name, path, updateCmd, buf.Bytes())
		}
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if !seen[f.Name()] {
			t.Errorf("%s has no tool any more; delete it if that is intended", filepath.Join(dir, f.Name()))
		}
	}
}
