package bpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// PromptSummary is one row of a prompt search (GET /v1/prompts/publish).
type PromptSummary struct {
	PromptID        string `json:"promptId"`
	PromptVersionID string `json:"promptVersionId"` // latest published version
	Title           string `json:"title"`
	Description     string `json:"description"`
	Slug            string `json:"slug"`
	// Model is the default model: an index in documented rows (whose table
	// is not published), a name in others.
	Model ModelRef `json:"model"`
	// Modality is "text" or "image" (video prompts are never searchable),
	// or "" when the row does not say.
	Modality Modality `json:"modality"`
	// EstimatedCredits is nil when the row does not carry it.
	EstimatedCredits *int   `json:"estimatedCredits"`
	Uses             int    `json:"uses"`
	UpVotes          int    `json:"upVotes"`
	PublishedAt      string `json:"publishedAt"`
	// Samples and Config are kept raw; Config is parsed by package schema.
	Samples json.RawMessage `json:"samples,omitempty"`
	Config  json.RawMessage `json:"configs,omitempty"` // the API spells it "configs" on search rows
	// DefaultRunOptions are the prompt's default run options, when a row
	// carries them (undocumented; read under the names other shapes use).
	DefaultRunOptions map[string]string `json:"-"`
}

// UnmarshalJSON reads a row, and the facts an undocumented shape may add.
func (p *PromptSummary) UnmarshalJSON(b []byte) error {
	type plain PromptSummary
	var row struct {
		plain
		// The price is read leniently: a row must not fail for its type.
		EstimatedCredits json.RawMessage `json:"estimatedCredits"`
	}
	if err := json.Unmarshal(b, &row); err != nil {
		return err
	}
	var extra rowFacts
	_ = json.Unmarshal(b, &extra) // best effort: a field of another type is simply not a fact
	if row.Model.Name == "" {
		row.Model.Name = extra.modelName()
	}
	row.plain.DefaultRunOptions = extra.runOptions()
	row.plain.EstimatedCredits = jsonCredits(row.EstimatedCredits)
	if row.plain.EstimatedCredits == nil {
		row.plain.EstimatedCredits = extra.price()
	}
	*p = PromptSummary(row.plain)
	return nil
}

// ModalityName returns "text", "image" or "video" for a search row's integer modality.
func ModalityName(m int) string {
	switch m {
	case 0:
		return "text"
	case 1:
		return "image"
	case 2:
		return "video"
	default:
		return "unknown"
	}
}

// PromptVersion is a prompt at one published version (GET /v1/prompts/{id} and
// GET /v1/prompt-versions/{id}).
type PromptVersion struct {
	PromptVersionID string          `json:"promptVersionId"`
	PromptID        string          `json:"promptId"`
	Title           string          `json:"title"`
	PublishedAt     string          `json:"publishedAt"`
	Config          json.RawMessage `json:"config,omitempty"`
	// InputsJTD is the legacy name of the input contract, kept when an older
	// deployment sends it instead of config.
	InputsJTD json.RawMessage `json:"inputsJTD,omitempty"`
}

// InputConfig returns the raw input configuration, preferring config and
// falling back to the legacy inputsJTD wrapped as {"inputsJTD": ...}.
func (p *PromptVersion) InputConfig() json.RawMessage {
	if len(bytes.TrimSpace(p.Config)) > 0 && !bytes.Equal(bytes.TrimSpace(p.Config), []byte("null")) {
		return p.Config
	}
	if len(bytes.TrimSpace(p.InputsJTD)) > 0 {
		wrapped, err := json.Marshal(map[string]json.RawMessage{"inputsJTD": p.InputsJTD})
		if err == nil {
			return wrapped
		}
	}
	return json.RawMessage(`{}`)
}

// VersionList is the answer of GET /v1/prompts/{id}/versions.
type VersionList struct {
	PromptID string       `json:"promptId"`
	Title    string       `json:"title"`
	Versions []VersionRef `json:"versions"`
}

// VersionRef names one published version of a prompt.
type VersionRef struct {
	PromptVersionID string `json:"promptVersionId"`
	PublishedAt     string `json:"publishedAt"`
	IsLatest        bool   `json:"isLatest,omitempty"`
}

// RunStatus is the lifecycle state of a run.
type RunStatus string

// The run statuses the API documents; succeeded and failed are final.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
)

// Final reports whether the status can no longer change.
func (s RunStatus) Final() bool { return s == RunSucceeded || s == RunFailed }

// runStatusSpellings maps spellings other API versions or proxies might use
// to the four documented statuses.
var runStatusSpellings = map[string]RunStatus{
	"queued": RunQueued, "pending": RunQueued, "created": RunQueued, "waiting": RunQueued,
	"running": RunRunning, "processing": RunRunning, "in_progress": RunRunning, "started": RunRunning,
	"succeeded": RunSucceeded, "success": RunSucceeded, "successful": RunSucceeded, "completed": RunSucceeded, "complete": RunSucceeded, "done": RunSucceeded,
	"failed": RunFailed, "failure": RunFailed, "error": RunFailed, "errored": RunFailed, "cancelled": RunFailed, "canceled": RunFailed, "timeout": RunFailed, "timed_out": RunFailed,
}

// UnmarshalJSON reads a status leniently: any case, and the common
// synonyms of the four documented statuses. Anything else unknown is kept
// as "running" (not final), so a caller keeps polling rather than stopping
// on a status it cannot read.
func (s *RunStatus) UnmarshalJSON(b []byte) error {
	var raw string
	if err := json.Unmarshal(b, &raw); err != nil {
		var n json.Number
		if json.Unmarshal(b, &n) != nil {
			return fmt.Errorf("run status %s is not a string", b)
		}
		raw = n.String()
	}
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(raw)), "-", "_")
	if st, ok := runStatusSpellings[key]; ok {
		*s = st
		return nil
	}
	*s = RunRunning
	return nil
}

// OutputType is the kind of one output item.
type OutputType string

// The output item types. Older API versions sent the numbers 0-3 instead;
// Output.UnmarshalJSON maps them.
const (
	OutputText  OutputType = "text"
	OutputImage OutputType = "image"
	OutputError OutputType = "error"
	OutputVideo OutputType = "video"
)

// legacyOutputTypes maps the numeric part types used before 2026-03.
var legacyOutputTypes = map[int]OutputType{0: OutputText, 1: OutputImage, 2: OutputError, 3: OutputVideo}

// Output is one item of a run's ordered outputs. For images and videos Data is
// a URL that expires 24 hours after generation.
type Output struct {
	Type             OutputType `json:"type"`
	Data             string     `json:"data"`
	ThoughtSignature string     `json:"thoughtSignature,omitempty"`
}

// UnmarshalJSON accepts string types and the legacy numeric ones.
func (o *Output) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type             json.RawMessage `json:"type"`
		Data             json.RawMessage `json:"data"`
		ThoughtSignature string          `json:"thoughtSignature"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	o.ThoughtSignature = raw.ThoughtSignature
	t := bytes.TrimSpace(raw.Type)
	switch {
	case len(t) == 0 || bytes.Equal(t, []byte("null")):
		o.Type = ""
	case t[0] == '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return err
		}
		o.Type = OutputType(s)
	default:
		n, err := strconv.Atoi(string(t))
		if err != nil {
			return fmt.Errorf("output type %s is neither a string nor a number", t)
		}
		lt, ok := legacyOutputTypes[n]
		if !ok {
			lt = OutputType(strconv.Itoa(n))
		}
		o.Type = lt
	}
	d := bytes.TrimSpace(raw.Data)
	switch {
	case len(d) == 0 || bytes.Equal(d, []byte("null")):
		o.Data = ""
	case d[0] == '"':
		if err := json.Unmarshal(d, &o.Data); err != nil {
			return err
		}
	default:
		// Not a string (an object from a future API version): keep its JSON text.
		o.Data = string(d)
	}
	return nil
}

// Run is a run as returned by POST /v1/runs, GET /v1/runs/{id} and the rows of
// GET /v1/runs. Single-run answers carry the cost as tokens, list rows as
// credits; use Cost to read either.
type Run struct {
	RunID           string    `json:"runId"`
	PromptVersionID string    `json:"promptVersionId,omitempty"`
	Outputs         []Output  `json:"outputs"`
	Status          RunStatus `json:"runStatus"`
	Tokens          *int      `json:"tokens,omitempty"`
	Credits         *int      `json:"credits,omitempty"`
	RunName         string    `json:"runName,omitempty"`
	CreatedAt       string    `json:"createdAt,omitempty"`
}

// Cost returns the credits the run consumed (0 while unfinished or free).
func (r *Run) Cost() int {
	switch {
	case r.Tokens != nil:
		return *r.Tokens
	case r.Credits != nil:
		return *r.Credits
	default:
		return 0
	}
}

// RunList is one page of GET /v1/runs, newest first.
type RunList struct {
	Rows    []Run `json:"rows"`
	HasMore bool  `json:"hasMore"`
}

// ListRunsParams filters GET /v1/runs. Zero values are left out of the query.
type ListRunsParams struct {
	Limit         int       // 1..50; 0 means the API default (10)
	StartingAfter string    // run id: runs created before it
	EndingBefore  string    // run id: runs created after it
	Status        RunStatus // filter on one status
	Since         int64     // Unix seconds, inclusive; 0 = unset
	Until         int64     // Unix seconds, exclusive; 0 = unset
}

// CreateRunRequest is the body of POST /v1/runs.
type CreateRunRequest struct {
	PromptVersionID string            `json:"promptVersionId"`
	Inputs          RunInputs         `json:"inputs"`
	RunModel        string            `json:"runModel,omitempty"`
	RunOptions      map[string]string `json:"runOptions,omitempty"`
}

// RunInputs are a run's inputs as the API takes them: text values are strings
// (a multi-select is one ", "-joined string) and images are given in order.
type RunInputs struct {
	TextInputs  map[string]string `json:"textInputs"`
	ImageInputs []ImageInput      `json:"imageInputs,omitempty"`
}

// ImageInput is one image given to a run: {type:"url", url} or
// {type:"base64", base64} (plain Base64 or a data: URI).
type ImageInput struct {
	Type   string `json:"type"`
	URL    string `json:"url,omitempty"`
	Base64 string `json:"base64,omitempty"`
}

// User is the account that owns the API key (GET /v1/me).
type User struct {
	Username    *string `json:"username"`
	DisplayName *string `json:"displayName"`
	UserFlags   int     `json:"userFlags"`
}

// Resources lists the models a run may use (GET /v1/resources).
type Resources struct {
	Hash   string  `json:"hash"`
	Models []Model `json:"models"`
}

// Model is one model with the run options it accepts.
type Model struct {
	Model               string      `json:"model"`
	Modality            string      `json:"modality"` // "text", "image" or "video"
	AvailableRunOptions []RunOption `json:"availableRunOptions"`
}

// RunOption is one run-option key and the values it accepts.
type RunOption struct {
	Key     string   `json:"key"`
	Options []string `json:"options"`
}

// FindModel returns the model with the given name, or nil.
func (r *Resources) FindModel(name string) *Model {
	if r == nil {
		return nil
	}
	for i := range r.Models {
		if r.Models[i].Model == name {
			return &r.Models[i]
		}
	}
	return nil
}
