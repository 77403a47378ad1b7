package fakeapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

const goodFixture = `{
  "promptId": "11111111-1111-4111-8111-111111111111",
  "title": "Haiku Writer", "description": "Three lines about anything", "slug": "haiku-writer",
  "modality": "text", "model": "gpt-5", "modelIndex": 52, "runOptions": {"reasoningEffort": "low", "image": {"quality": 0}},
  "estimatedCredits": 10, "credits": 9, "uses": 1, "upVotes": 0, "durationMs": 100, "fail": false,
  "_comment": "keys starting with an underscore are ignored",
  "outputs": [{"type": "text", "data": "An old silent pond"}],
  "samples": {},
  "versions": [
    {"promptVersionId": "22222222-2222-4222-8222-222222222222", "publishedAt": "2026-01-02T00:00:00.000Z",
     "config": {"variables": {"topic": {"type": 0}}, "images": []}},
    {"promptVersionId": "33333333-3333-4333-8333-333333333333", "publishedAt": "2025-01-02T00:00:00.000Z",
     "config": {}}
  ]
}`

// variant returns goodFixture with old replaced by new (which must occur).
func variant(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(goodFixture, old) {
		t.Fatalf("fixture lacks %q", old)
	}
	return strings.Replace(goodFixture, old, new, 1)
}

func TestLoadCatalogue(t *testing.T) {
	fsys := fstest.MapFS{
		"haiku-writer.json": {Data: []byte(goodFixture)},
		"README.md":         {Data: []byte("# not a fixture")},
		"sub/other.json":    {Data: []byte("not even JSON")},
	}
	prompts, err := LoadCatalogue(fsys)
	if err != nil || len(prompts) != 1 {
		t.Fatalf("%d prompts, %v", len(prompts), err)
	}
	p := prompts[0]
	if p.Slug != "haiku-writer" || p.Model != "gpt-5" || p.ModelIndex != 52 || len(p.Versions) != 2 || p.Outputs[0].Data != "An old silent pond" || p.RunOptions["reasoningEffort"] != "low" {
		t.Fatalf("prompt %+v", p)
	}
	if len(catalogue) < 21 {
		t.Fatalf("testdata catalogue has %d prompts", len(catalogue))
	}
	if _, err := LoadCatalogueDir("does/not/exist"); err == nil {
		t.Fatal("missing directory accepted")
	}
}

func TestLoadCatalogueErrors(t *testing.T) {
	second := strings.NewReplacer(
		"11111111-1111-4111-8111-111111111111", "44444444-4444-4444-8444-444444444444",
		"22222222-2222-4222-8222-222222222222", "55555555-5555-4555-8555-555555555555",
		"33333333-3333-4333-8333-333333333333", "66666666-6666-4666-8666-666666666666",
		`"haiku-writer"`, `"haiku-writer-2"`,
	).Replace(goodFixture)
	cases := []struct {
		name  string
		files map[string]string
		msg   string
	}{
		{"invalid JSON", map[string]string{"a.json": `{"promptId":`}, "invalid JSON"},
		{"unknown field", map[string]string{"a.json": variant(t, `"uses": 1`, `"usez": 1`)}, `unknown field "usez"`},
		{"unknown output field", map[string]string{"a.json": variant(t, `{"type": "text", "data"`, `{"type": "text", "text"`)}, `outputs[0].text`},
		{"unknown version field", map[string]string{"a.json": variant(t, `"publishedAt": "2026`, `"published": "x", "publishedAt": "2026`)}, `versions[0].published`},
		{"bad promptId", map[string]string{"a.json": variant(t, `"11111111-1111-4111-8111-111111111111"`, `"p1"`)}, "promptId"},
		{"no slug", map[string]string{"a.json": variant(t, `"slug": "haiku-writer"`, `"slug": ""`)}, "slug"},
		{"bad modality", map[string]string{"a.json": variant(t, `"modality": "text"`, `"modality": "audio"`)}, "modality"},
		{"unknown model", map[string]string{"a.json": variant(t, `"model": "gpt-5"`, `"model": "gpt-9"`)}, `model "gpt-9"`},
		{"model of another modality", map[string]string{"a.json": variant(t, `"model": "gpt-5"`, `"model": "sora-2"`)}, "video model"},
		{"bad default option", map[string]string{"a.json": variant(t, `"reasoningEffort": "low"`, `"reasoningEffort": "turbo"`)}, "runOptions"},
		{"no versions", map[string]string{"a.json": variant(t, `"versions": [`, `"versions": [], "_old": [`)}, "versions is empty"},
		{"versions oldest first", map[string]string{"a.json": variant(t, `"2025-01-02T00:00:00.000Z"`, `"2027-01-02T00:00:00.000Z"`)}, "newest first"},
		{"bad publishedAt", map[string]string{"a.json": variant(t, `"2025-01-02T00:00:00.000Z"`, `"last year"`)}, "publishedAt"},
		{"bad version id", map[string]string{"a.json": variant(t, `"22222222-2222-4222-8222-222222222222"`, `"v1"`)}, "promptVersionId"},
		{"image output without png", map[string]string{"a.json": variant(t, `{"type": "text", "data": "An old silent pond"}`, `{"type": "image", "file": "jpg"}`)}, "png"},
		{"unknown output type", map[string]string{"a.json": variant(t, `{"type": "text"`, `{"type": "audio"`)}, "audio"},
		{"variables not an object", map[string]string{"a.json": variant(t, `"variables": {"topic": {"type": 0}}`, `"variables": [1]`)}, "variables"},
		{"config and inputsJTD", map[string]string{"a.json": variant(t, `"config": {}`, `"config": {}, "inputsJTD": {"metadata": {"imageCount": 1}}`)}, "both config and inputsJTD"},
		{"duplicate promptId", map[string]string{"a.json": goodFixture, "b.json": variant(t, `"22222222-2222-4222-8222-222222222222"`, `"77777777-7777-4777-8777-777777777777"`)}, "already used by a.json"},
		{"duplicate version id", map[string]string{"a.json": goodFixture, "b.json": strings.Replace(second, "55555555-5555-4555-8555-555555555555", "22222222-2222-4222-8222-222222222222", 1)}, "promptVersionId"},
		{"duplicate slug", map[string]string{"a.json": goodFixture, "b.json": strings.Replace(second, `"haiku-writer-2"`, `"haiku-writer"`, 1)}, "slug"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range c.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			_, err := LoadCatalogue(fsys)
			if err == nil {
				t.Fatal("accepted")
			}
			last := "a.json"
			if len(c.files) > 1 {
				last = "b.json"
			}
			if !strings.Contains(err.Error(), last) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q should name %s and say %q", err, last, c.msg)
			}
		})
	}
	// The two distinct fixtures load together.
	if _, err := LoadCatalogue(fstest.MapFS{"a.json": {Data: []byte(goodFixture)}, "b.json": {Data: []byte(second)}}); err != nil {
		t.Fatal(err)
	}
}

func TestNewPanicsOnBadCatalogue(t *testing.T) {
	var p Prompt
	if err := json.Unmarshal([]byte(goodFixture), &p); err != nil {
		t.Fatal(err)
	}
	p.Model = "nope"
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "nope") {
			t.Fatalf("recovered %v", r)
		}
	}()
	New(Options{Catalogue: []Prompt{p}})
}

// TestInlineCatalogue runs a hand-written prompt through the fake, without
// testdata: the legacy inputsJTD enum forms, and a config with an explicit
// imageCount.
func TestInlineCatalogue(t *testing.T) {
	var legacy, counted Prompt
	_ = json.Unmarshal([]byte(goodFixture), &legacy)
	legacy.Versions = []Version{{
		PromptVersionID: "22222222-2222-4222-8222-222222222222",
		PublishedAt:     "2026-01-02T00:00:00.000Z",
		InputsJTD: json.RawMessage(`{"properties": {"textInputs": {
			"properties": {"tone": {"enum": ["calm", "loud"]}, "tags": {"elements": {"enum": ["a", "b"]}}},
			"optionalProperties": {"note": {"type": "string", "metadata": {"defaultValues": ["none"]}}}}}}`),
	}}
	_ = json.Unmarshal([]byte(goodFixture), &counted)
	counted.PromptID, counted.Slug = "44444444-4444-4444-8444-444444444444", "counted"
	counted.Versions = []Version{{
		PromptVersionID: "55555555-5555-4555-8555-555555555555",
		PublishedAt:     "2026-01-02T00:00:00.000Z",
		Config:          json.RawMessage(`{"variables": {"s": {"type": "SELECT", "options": {"x": "X"}}, "t": {"type": 1, "options": {}}}, "imageCount": 2}`),
	}}
	h := start(t, func(o *Options) { o.Catalogue = []Prompt{legacy, counted} })
	for _, c := range []struct {
		body   map[string]any
		status int
		msg    string
	}{
		{runBody("22222222-2222-4222-8222-222222222222", map[string]any{"tone": "calm", "tags": "a, b"}), 200, ""},
		{runBody("22222222-2222-4222-8222-222222222222", map[string]any{"tone": "quiet", "tags": "a"}), 422, "Invalid option 'quiet'"},
		{runBody("22222222-2222-4222-8222-222222222222", map[string]any{"tone": "calm"}), 422, "Missing required input: tags"},
		{runBody("55555555-5555-4555-8555-555555555555", map[string]any{"s": "x", "t": "free text"}, urlImage("https://e.x/1.png"), urlImage("https://e.x/2.png")), 200, ""},
		{runBody("55555555-5555-4555-8555-555555555555", map[string]any{"s": "x", "t": "free text"}), 422, "(expected 2, got 0)"},
		{runBody("55555555-5555-4555-8555-555555555555", map[string]any{"s": "y", "t": "free"}, urlImage("https://e.x/1.png"), urlImage("https://e.x/2.png")), 422, "Invalid option 'y'"},
	} {
		r := h.call("POST", "/runs", c.body)
		if c.status == 200 {
			expect(t, r, 200, "SUCCESS", "")
		} else {
			expect(t, r, c.status, "VALIDATION_ERROR", c.msg)
		}
	}
	ri := h.s.Runs(TestKey)[0]
	if ri.TextInputs["note"] != "none" || strings.Join(ri.Selections["tags"], "|") != "a|b" {
		t.Fatalf("legacy run %+v", ri)
	}
}
