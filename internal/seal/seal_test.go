package seal

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSealOpen(t *testing.T) {
	type state struct{ Tool, Args string }
	s := New([]byte("shared secret"))
	sealed, err := s.Seal(state{"run_prompt", "abc"}, time.Minute)
	if err != nil || strings.Contains(sealed, "run_prompt") {
		t.Fatalf("sealed %q, %v", sealed, err)
	}
	var got state
	if err := New([]byte("shared secret")).Open(sealed, &got); err != nil || got != (state{"run_prompt", "abc"}) {
		t.Fatalf("another replica with the same secret: %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"another key": func() string { x, _ := New([]byte("other")).Seal(state{}, time.Minute); return x }(),
		"tampered":    sealed[:len(sealed)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(sealed, "AA")],
		"not sealed":  "hello",
		"empty":       "",
	} {
		if err := s.Open(bad, &got); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	late := New([]byte("shared secret"))
	late.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if err := late.Open(sealed, &got); !errors.Is(err, ErrExpired) {
		t.Errorf("after its time limit: %v, want ErrExpired", err)
	}
	if r := New(nil); r.Open(sealed, &got) == nil {
		t.Error("a random key opened a state sealed with the shared secret")
	}
}
