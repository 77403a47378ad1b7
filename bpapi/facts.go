package bpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
)

// Modality is a prompt's type: "text", "image" or "video", or "" when a row
// does not say. It reads the integer of search rows (0 text, 1 image, 2
// video) and the names that /v1/resources and the skills routes use.
type Modality string

// UnmarshalJSON reads an integer or a name; anything else (null too) is "".
func (m *Modality) UnmarshalJSON(b []byte) error {
	*m = ""
	if n, ok := jsonInt(b); ok {
		*m = Modality(ModalityName(n))
		if *m == "unknown" {
			*m = ""
		}
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s = strings.ToLower(strings.TrimSpace(s)); s {
		case "text", "image", "video":
			*m = Modality(s)
		}
	}
	return nil
}

// jsonInt reads a JSON number that is a whole number, or a string holding
// one; null and anything else are not.
func jsonInt(b []byte) (int, bool) {
	var n json.Number
	if json.Unmarshal(b, &n) != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return 0, false
		}
		n = json.Number(strings.TrimSpace(s))
	}
	if i, err := n.Int64(); err == nil && i >= -1<<31 && i < 1<<31 {
		return int(i), true
	}
	if f, err := n.Float64(); err == nil && f == math.Trunc(f) && f >= -1<<31 && f < 1<<31 {
		return int(f), true
	}
	return 0, false
}

// jsonCredits reads a price: a whole or fractional number (rounded up: an
// estimate is a ceiling), or a string holding one; null and anything else
// are no price.
func jsonCredits(b []byte) *int {
	var n json.Number
	if json.Unmarshal(b, &n) != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
		n = json.Number(strings.TrimSpace(s))
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<31 || math.IsNaN(f) {
		return nil
	}
	c := int(math.Ceil(f))
	return &c
}

// ModelRef is a prompt's default model as a row gives it: search rows give
// an integer index whose table is not published, and other shapes may give
// the model's name, as /v1/resources and runModel spell it.
type ModelRef struct {
	Index *int   // the integer index, shown as-is
	Name  string // the model's name, when the row gives one
}

// UnmarshalJSON reads an integer, a numeric string or a name; anything else
// (null too) leaves the reference empty.
func (r *ModelRef) UnmarshalJSON(b []byte) error {
	*r = ModelRef{}
	if n, ok := jsonInt(b); ok {
		r.Index = &n
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s = strings.TrimSpace(s); s != "" && len(s) <= 100 {
			r.Name = s
		}
	}
	return nil
}

// MarshalJSON writes the name when there is one, else the index, else null.
func (r ModelRef) MarshalJSON() ([]byte, error) {
	switch {
	case r.Name != "":
		return json.Marshal(r.Name)
	case r.Index != nil:
		return json.Marshal(*r.Index)
	}
	return []byte("null"), nil
}

// rowFacts are what an undocumented row shape may add about a prompt: its
// default model by name, its default run options and its price. None is
// documented for the rows this package reads, so each is read when present
// under any of the names the API's other shapes use, and ignored otherwise.
type rowFacts struct {
	DefaultModel      string                     `json:"defaultModel"`
	RunModel          string                     `json:"runModel"`
	DefaultRunOptions map[string]json.RawMessage `json:"defaultRunOptions"`
	RunOptions        map[string]json.RawMessage `json:"runOptions"`
	DefaultOptions    map[string]json.RawMessage `json:"defaultOptions"`
	Pricing           *struct {
		EstimatedCredits json.RawMessage `json:"estimatedCredits"`
		Credits          json.RawMessage `json:"credits"`
	} `json:"pricing"`
}

// modelName returns the first model name the row gives.
func (f *rowFacts) modelName() string {
	for _, s := range []string{f.DefaultModel, f.RunModel} {
		if s = strings.TrimSpace(s); s != "" && len(s) <= 100 {
			return s
		}
	}
	return ""
}

// Bounds on default run options read from a row: models take a handful of
// short options, and anything beyond is not shown.
const (
	maxRowOptions     = 16
	maxRowOptionBytes = 100
)

// runOptions returns the first run-option map the row gives, with string
// and number values as strings; other values (null, a legacy nested
// "image" object) and oversized ones are dropped. It is nil when the row
// gives none.
func (f *rowFacts) runOptions() map[string]string {
	for _, m := range []map[string]json.RawMessage{f.DefaultRunOptions, f.RunOptions, f.DefaultOptions} {
		if m == nil {
			continue
		}
		out := make(map[string]string, min(len(m), maxRowOptions))
		for k, raw := range m {
			var s string
			var n json.Number
			switch {
			case len(out) >= maxRowOptions || len(k) > maxRowOptionBytes || bytes.Equal(bytes.TrimSpace(raw), []byte("null")):
			case json.Unmarshal(raw, &s) == nil && len(s) <= maxRowOptionBytes:
				out[k] = s
			case json.Unmarshal(raw, &n) == nil:
				out[k] = n.String()
			}
		}
		return out
	}
	return nil
}

// price returns the estimate under pricing, if the row has one.
func (f *rowFacts) price() *int {
	if f.Pricing == nil {
		return nil
	}
	if c := jsonCredits(f.Pricing.EstimatedCredits); c != nil {
		return c
	}
	return jsonCredits(f.Pricing.Credits)
}
