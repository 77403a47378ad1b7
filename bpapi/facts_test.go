package bpapi

import (
	"encoding/json"
	"maps"
	"testing"
)

// Rows are read whichever way the API spells what it knows about a prompt:
// documented search rows give an index and an integer modality; other
// shapes may give names, default run options and a price elsewhere.
func TestRowFactsAreReadLeniently(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		row       string
		modality  Modality
		index     *int
		model     string
		credits   *int
		runOption map[string]string
	}{
		{name: "documented search row", row: `{"model":50,"modality":0,"estimatedCredits":150}`,
			modality: "text", index: ptr(50), credits: ptr(150)},
		{name: "names instead of numbers", row: `{"model":"gpt-image-1","modality":"image","estimatedCredits":60}`,
			modality: "image", model: "gpt-image-1", credits: ptr(60)},
		{name: "numeric strings", row: `{"model":"52","modality":"1"}`, index: ptr(52), modality: "image"},
		{name: "null is unknown, not 0", row: `{"model":null,"modality":null,"estimatedCredits":null}`},
		{name: "a price of another type", row: `{"estimatedCredits":"400"}`, credits: ptr(400)},
		{name: "a fractional price is rounded up", row: `{"estimatedCredits":12.5}`, credits: ptr(13)},
		{name: "a price that is no number", row: `{"estimatedCredits":{"x":1}}`},
		{name: "null options are dropped", row: `{"defaultRunOptions":{"seconds":null,"size":"720x1280"}}`,
			runOption: map[string]string{"size": "720x1280"}},
		{name: "video index", row: `{"modality":2}`, modality: "video"},
		{name: "unknown modality", row: `{"modality":7}`},
		{name: "default model and options",
			row:   `{"model":51,"defaultModel":"gpt-5","defaultRunOptions":{"reasoningEffort":"low","image":{"quality":0},"seconds":4}}`,
			index: ptr(51), model: "gpt-5", runOption: map[string]string{"reasoningEffort": "low", "seconds": "4"}},
		{name: "runOptions spelling", row: `{"runModel":"sora-2","runOptions":{"size":"720x1280"}}`,
			model: "sora-2", runOption: map[string]string{"size": "720x1280"}},
		{name: "price under pricing", row: `{"pricing":{"estimatedCredits":400}}`, credits: ptr(400)},
		{name: "fields of other types are not facts", row: `{"model":{"x":1},"modality":[1],"runOptions":"fast","pricing":3}`},
		{name: "no estimate is not free", row: `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p PromptSummary
			if err := json.Unmarshal([]byte(tc.row), &p); err != nil {
				t.Fatalf("search row: %v", err)
			}
			check(t, "search row", p.Modality, p.Model, p.EstimatedCredits, p.DefaultRunOptions, tc.modality, tc.index, tc.model, tc.credits, tc.runOption)
			var s Skill
			if err := json.Unmarshal([]byte(tc.row), &s); err != nil {
				t.Fatalf("skill row: %v", err)
			}
			check(t, "skill row", s.Modality, s.Model, s.EstimatedCredits, s.DefaultRunOptions, tc.modality, tc.index, tc.model, tc.credits, tc.runOption)
		})
	}
}

func check(t *testing.T, what string, m Modality, ref ModelRef, credits *int, opts map[string]string,
	wantM Modality, wantIndex *int, wantModel string, wantCredits *int, wantOpts map[string]string) {
	t.Helper()
	if m != wantM {
		t.Errorf("%s: modality %q, want %q", what, m, wantM)
	}
	if !samePtr(ref.Index, wantIndex) || ref.Name != wantModel {
		t.Errorf("%s: model %+v, want index %v name %q", what, ref, deref(wantIndex), wantModel)
	}
	if !samePtr(credits, wantCredits) {
		t.Errorf("%s: credits %v, want %v", what, deref(credits), deref(wantCredits))
	}
	if !maps.Equal(opts, wantOpts) {
		t.Errorf("%s: run options %v, want %v", what, opts, wantOpts)
	}
}

func TestSkillTypeGivesModality(t *testing.T) {
	t.Parallel()
	for _, row := range []string{`{"skillId":"x","type":"video"}`, `{"skillId":"x","modality":null,"type":"video"}`} {
		var s Skill
		if err := json.Unmarshal([]byte(row), &s); err != nil || s.Modality != "video" {
			t.Errorf("%s: skill %+v, %v", row, s, err)
		}
	}
}

// A row with a price of an unexpected type still decodes, so that one odd
// row cannot fail a whole search or a slug lookup.
func TestOddPriceKeepsTheRow(t *testing.T) {
	t.Parallel()
	for _, row := range []string{`"400"`, `12.5`, `true`, `[1]`} {
		var out struct {
			Rows []Skill `json:"rows"`
		}
		if err := json.Unmarshal([]byte(`{"rows":[{"skillId":"x","name":"n","estimatedCredits":`+row+`}]}`), &out); err != nil || len(out.Rows) != 1 {
			t.Errorf("skills with price %s: %v", row, err)
		}
		var rows []PromptSummary
		if err := json.Unmarshal([]byte(`[{"promptId":"x","estimatedCredits":`+row+`}]`), &rows); err != nil || len(rows) != 1 {
			t.Errorf("search row with price %s: %v", row, err)
		}
	}
}

func TestModelRefRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ref  ModelRef
		want string
	}{{ModelRef{Name: "gpt-5", Index: ptr(3)}, `"gpt-5"`}, {ModelRef{Index: ptr(50)}, `50`}, {ModelRef{}, `null`}} {
		b, err := json.Marshal(tc.ref)
		if err != nil || string(b) != tc.want {
			t.Errorf("marshal %+v = %s, %v; want %s", tc.ref, b, err, tc.want)
		}
	}
}

func samePtr(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
