package bwapi

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Account is the account that owns the key (GET /account).
type Account struct {
	Username string  `json:"username"`
	Credits  float64 `json:"credits"`
	// Subscription is nil when the account has none.
	Subscription *Subscription `json:"subscription"`
}

// Subscription is an account's plan.
type Subscription struct {
	Status  string `json:"status"` // e.g. "active", "canceled"
	Plan    string `json:"plan"`
	EndDate string `json:"endDate"`
}

// Active reports whether the subscription allows using the API.
func (s *Subscription) Active() bool {
	return s != nil && strings.EqualFold(strings.TrimSpace(s.Status), "active")
}

// Model is one model version that can generate (GET /models).
type Model struct {
	// ID is what a generation sends as model_version_id.
	ID         int64   `json:"id"`
	Name       string  `json:"name"`       // the version's name, e.g. "v6.5"
	ModelName  string  `json:"model_name"` // the parent model
	BaseModel  string  `json:"base_model"` // "Pony", "Illustrious", …
	Type       string  `json:"type"`
	Filename   string  `json:"filename"`
	CoverImage *string `json:"cover_image"`
	NSFW       bool    `json:"nsfw"`
}

// GenerateRequest starts a generation (POST /generate). Only Prompt is
// known to be needed; the documentation gives no defaults or ranges, so
// every other field is sent only when set and the API decides.
type GenerateRequest struct {
	Prompt         string   `json:"prompt"`
	NegativePrompt string   `json:"negative_prompt,omitempty"`
	ModelVersionID int64    `json:"model_version_id,omitempty"`
	Width          int      `json:"width,omitempty"`
	Height         int      `json:"height,omitempty"`
	Steps          int      `json:"steps,omitempty"`
	CFGScale       *float64 `json:"cfg_scale,omitempty"`
	Sampler        string   `json:"sampler,omitempty"`
	// Seed is undocumented in the current API (the legacy page has it).
	Seed *int64 `json:"seed,omitempty"`
}

// Status is a generation's state. The documented ones are below; another
// value is kept as it came.
type Status string

// The documented statuses; Succeeded and Failed are final.
const (
	Queued     Status = "queued"
	Processing Status = "processing"
	Succeeded  Status = "succeeded"
	Failed     Status = "failed"
)

// Final reports whether the status can no longer change.
func (s Status) Final() bool { return s == Succeeded || s == Failed }

// Generation is a generation's state (GET /generate/{id}, and what the 201
// of POST /generate says). Fields the documentation types loosely are read
// leniently, so that one odd field never hides a finished generation.
type Generation struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// QueuePosition is set only while queued.
	QueuePosition *int `json:"-"`
	// Output is set only when succeeded.
	Output *Output `json:"output,omitempty"`
	// Error is set only when failed: the message, or the JSON it came as.
	Error string `json:"-"`
}

// UnmarshalJSON reads a generation; queue_position and error are read
// whatever their type.
func (g *Generation) UnmarshalJSON(b []byte) error {
	type plain Generation
	var row struct {
		plain
		QueuePosition json.RawMessage `json:"queue_position"`
		Error         json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &row); err != nil {
		return err
	}
	*g = Generation(row.plain)
	if n, err := json.Number(scalar(row.QueuePosition)).Int64(); err == nil && n >= 0 && n < 1<<31 {
		p := int(n)
		g.QueuePosition = &p
	}
	if s := scalar(row.Error); s != "" {
		g.Error = s
	} else if len(row.Error) > 0 && string(row.Error) != "null" {
		g.Error = excerpt(row.Error)
	}
	return nil
}

// Output is a finished generation's images and seed.
type Output struct {
	Images []Image `json:"images"`
	// Seed is the seed as the API wrote it (it may not fit 64 bits); ""
	// when absent or not a number.
	Seed json.Number `json:"-"`
}

// UnmarshalJSON reads the output; the seed is kept as written.
func (o *Output) UnmarshalJSON(b []byte) error {
	var row struct {
		Images []Image         `json:"images"`
		Seed   json.RawMessage `json:"seed"`
	}
	if err := json.Unmarshal(b, &row); err != nil {
		return err
	}
	o.Images = row.Images
	o.Seed = ""
	if s := scalar(row.Seed); s != "" {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			o.Seed = json.Number(s)
		}
	}
	return nil
}

// Image is one generated image (WebP; the URL's lifetime is undocumented).
type Image struct {
	URL string `json:"url"`
	ID  string `json:"id"`
}

// idOf reads a generation id from a 201 body whose shape is undocumented:
// "id", "generation_id", "generationId" or "job_id", at the top level or
// under "data" or "generation". Numbers are accepted as well as strings.
func idOf(body []byte) (id string, status Status) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return "", ""
	}
	for _, obj := range []map[string]json.RawMessage{top, nested(top, "data"), nested(top, "generation")} {
		if obj == nil {
			continue
		}
		for _, k := range []string{"id", "generation_id", "generationId", "job_id", "jobId"} {
			if s := scalar(obj[k]); s != "" {
				return s, Status(scalar(obj["status"]))
			}
		}
	}
	return "", ""
}

func nested(m map[string]json.RawMessage, key string) map[string]json.RawMessage {
	var out map[string]json.RawMessage
	if json.Unmarshal(m[key], &out) != nil {
		return nil
	}
	return out
}

// scalar returns a JSON string or number as text, "" otherwise.
func scalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
