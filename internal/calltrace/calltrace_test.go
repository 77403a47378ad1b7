package calltrace

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

func TestArgumentsReplaceInlineImages(t *testing.T) {
	img := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 1, 2, 3}, 100) // 700 bytes
	sum := sha256.Sum256(img)
	want := `{"bytes":700,"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	b64 := base64.StdEncoding.EncodeToString(img)
	long := strings.Repeat("word", 100) // 400 characters, base64 by accident
	tests := []struct {
		name, in, want string
	}{
		{"base64 image input", `{"inputs":{"imageInputs":[{"type":"base64","base64":"` + b64 + `"}]}}`,
			`{"inputs":{"imageInputs":[{"base64":` + want + `,"type":"base64"}]}}`},
		{"data URL", `{"image":"data:image/png;base64,` + b64 + `"}`, `{"image":` + want + `}`},
		{"a URL stays", `{"url":"https://example.com/a.png"}`, `{"url":"https://example.com/a.png"}`},
		{"text stays", `{"q":"a cold email, please"}`, `{"q":"a cold email, please"}`},
		{"a short base64-looking word stays", `{"q":"abcd"}`, `{"q":"abcd"}`},
		{"a long word is taken for data", `{"q":"` + long + `"}`, ""},
		{"numbers and nulls stay", `{"n":3,"x":null,"b":true}`, `{"b":true,"n":3,"x":null}`},
		{"not JSON", `{"q":`, `{"unreadable_bytes":5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Arguments(json.RawMessage(tt.in)))
			if tt.want == "" {
				if strings.Contains(got, long) {
					t.Errorf("kept %s", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Arguments(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestCountRequest(t *testing.T) {
	CountRequest(context.Background()) // untraced: nothing to count, no panic
	ctx, n := WithCounter(context.Background())
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { CountRequest(context.WithoutCancel(ctx)) }) // a detached request counts too
	}
	wg.Wait()
	if n.Load() != 10 {
		t.Errorf("counted %d, want 10", n.Load())
	}
}

func TestWriterWritesOneLinePerEntry(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = w.Write(Entry{Tool: "search_prompts", Outcome: "ok"}) })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var e Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Tool != "search_prompts" {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}

// An image the server accepts (a data: URL whose Base64 has no padding) or
// refuses only for its line breaks (Base64 wrapped as the base64 tool
// writes it) is still inline data: the trace holds its size and hash, never
// the image itself.
func TestArgumentsReplaceUnpaddedAndWrappedImages(t *testing.T) {
	img := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 1, 2, 3, 4}, 100)
	raw := base64.RawStdEncoding.EncodeToString(img[:799]) // padded, it would end "=="
	var wrapped strings.Builder
	std := base64.StdEncoding.EncodeToString(img)
	for i := 0; i < len(std); i += 76 {
		wrapped.WriteString(std[i:min(i+76, len(std))] + "\n")
	}
	for name, in := range map[string]string{
		"unpadded data URL":    `{"image":"data:image/png;base64,` + raw + `"}`,
		"undecodable data URL": `{"image":"data:image/png;base64,` + raw + `!"}`,
		"wrapped Base64":       `{"inputs":{"imageInputs":[{"type":"base64","base64":` + string(mustJSON(t, wrapped.String())) + `}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			got := string(Arguments(json.RawMessage(in)))
			if strings.Contains(got, raw[:100]) || strings.Contains(got, std[:76]) || !strings.Contains(got, `"sha256"`) {
				t.Errorf("Arguments kept the image: %.300s", got)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
