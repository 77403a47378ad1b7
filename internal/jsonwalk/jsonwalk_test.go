package jsonwalk

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStrings(t *testing.T) {
	var v any
	if err := json.Unmarshal([]byte(`{"a":"x","b":["y",1,null,{"c":"z","d":true}],"e":"keep"}`), &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(Strings(v, func(s string) any {
		if s == "keep" {
			return s
		}
		return strings.ToUpper(s)
	}))
	if want := `{"a":"X","b":["Y",1,null,{"c":"Z","d":true}],"e":"keep"}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	if got := Strings("s", func(s string) any { return len(s) }); got != 1 {
		t.Errorf("a bare string: %v", got)
	}
}
