package fakeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Prompt is one catalogue fixture: a published prompt with its versions and
// what its runs produce. The JSON format is described in testdata/README.md.
type Prompt struct {
	// PromptID is the published prompt's UUID.
	PromptID string `json:"promptId"`
	// Title, Description and Slug are shown in search rows; Title is also
	// the runName of list rows.
	Title       string `json:"title"`
	Description string `json:"description"`
	Slug        string `json:"slug"`
	// Modality is "text", "image" or "video" (video is never searchable).
	Modality string `json:"modality"`
	// Model is the default run model, a model name from GET /v1/resources.
	Model string `json:"model"`
	// ModelIndex is the integer model index shown in search rows.
	ModelIndex int `json:"modelIndex"`
	// RunOptions are the prompt's default run options (a legacy nested
	// "image" key is allowed and ignored).
	RunOptions map[string]any `json:"runOptions"`
	// EstimatedCredits is reserved when a run is created and shown in search rows.
	EstimatedCredits int `json:"estimatedCredits"`
	// Credits is what a finished run finally costs.
	Credits int `json:"credits"`
	// Uses and UpVotes are copied to search rows.
	Uses    int `json:"uses"`
	UpVotes int `json:"upVotes"`
	// DurationMs is how long a run takes, before Options.TimeScale.
	DurationMs int `json:"durationMs"`
	// Fail makes every run end "failed" (with an error output).
	Fail bool `json:"fail"`
	// Outputs is what a run produces, in order.
	Outputs []Output `json:"outputs"`
	// Samples is copied verbatim to search rows.
	Samples json.RawMessage `json:"samples,omitempty"`
	// Versions lists the published versions, newest first.
	Versions []Version `json:"versions"`
}

// Output is one output item a fixture's runs produce. Text and error items
// carry Data; image and video items carry File ("png" or "mp4"), and the
// fake serves real bytes for them at an expiring URL.
type Output struct {
	// Type is "text", "image", "video" or "error".
	Type string `json:"type"`
	// Data is the text of a text or error item ({{inputKey}} placeholders
	// are replaced by the run's input values).
	Data string `json:"data,omitempty"`
	// File is "png" for an image item and "mp4" for a video item.
	File string `json:"file,omitempty"`
	// ThoughtSignature is sent with a text item when set.
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

// Version is one published version of a fixture prompt. It carries either
// Config (the current contract) or InputsJTD (the legacy contract).
type Version struct {
	// PromptVersionID is the version's UUID.
	PromptVersionID string `json:"promptVersionId"`
	// PublishedAt is an ISO 8601 time, served verbatim.
	PublishedAt string `json:"publishedAt"`
	// Config is the input configuration ({variables, images}), served as
	// "config".
	Config json.RawMessage `json:"config,omitempty"`
	// InputsJTD is the legacy input contract, served as "inputsJTD" in
	// place of "config".
	InputsJTD json.RawMessage `json:"inputsJTD,omitempty"`
}

// LoadCatalogue reads every *.json file at the root of fsys (other files and
// subdirectories are skipped) as one [Prompt] each, in file-name order, and
// validates the result with [ValidateCatalogue]. Errors name the file.
func LoadCatalogue(fsys fs.FS) ([]Prompt, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("fakeapi: read catalogue: %w", err)
	}
	var prompts []Prompt
	var files []string
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".json" {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("fakeapi: %s: %w", e.Name(), err)
		}
		p, err := decodePrompt(data)
		if err != nil {
			return nil, fmt.Errorf("fakeapi: %s: %w", e.Name(), err)
		}
		prompts = append(prompts, p)
		files = append(files, e.Name())
	}
	if err := validateCatalogue(prompts, files); err != nil {
		return nil, err
	}
	return prompts, nil
}

// LoadCatalogueDir is [LoadCatalogue] on the directory dir.
func LoadCatalogueDir(dir string) ([]Prompt, error) {
	return LoadCatalogue(os.DirFS(dir))
}

// ValidateCatalogue checks prompts the way [LoadCatalogue] does: required
// fields, UUIDs, unique ids and slugs, a model of the prompt's modality in
// /v1/resources with valid default run options, parseable input
// configurations, and well-formed outputs. [New] panics on a catalogue that
// fails it.
func ValidateCatalogue(prompts []Prompt) error {
	return validateCatalogue(prompts, nil)
}

var (
	promptKeys  = []string{"promptId", "title", "description", "slug", "modality", "model", "modelIndex", "runOptions", "estimatedCredits", "credits", "uses", "upVotes", "durationMs", "fail", "outputs", "samples", "versions"}
	versionKeys = []string{"promptVersionId", "publishedAt", "config", "inputsJTD"}
	outputKeys  = []string{"type", "data", "file", "thoughtSignature"}
)

// decodePrompt decodes one fixture, rejecting unknown keys (so that a typo in
// a fixture fails loudly) except those starting with "_" (comments).
func decodePrompt(data []byte) (Prompt, error) {
	var p Prompt
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return p, fmt.Errorf("invalid JSON: %w", err)
	}
	if err := checkKeys("", top, promptKeys); err != nil {
		return p, err
	}
	var raw struct {
		Outputs  []map[string]json.RawMessage `json:"outputs"`
		Versions []map[string]json.RawMessage `json:"versions"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return p, fmt.Errorf("invalid fixture: %w", err)
	}
	for i, o := range raw.Outputs {
		if err := checkKeys(fmt.Sprintf("outputs[%d].", i), o, outputKeys); err != nil {
			return p, err
		}
	}
	for i, v := range raw.Versions {
		if err := checkKeys(fmt.Sprintf("versions[%d].", i), v, versionKeys); err != nil {
			return p, err
		}
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("invalid fixture: %w", err)
	}
	return p, nil
}

func checkKeys(prefix string, obj map[string]json.RawMessage, known []string) error {
	for k := range obj {
		if strings.HasPrefix(k, "_") {
			continue
		}
		ok := false
		for _, n := range known {
			if k == n {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("unknown field %q", prefix+k)
		}
	}
	return nil
}

func validateCatalogue(prompts []Prompt, files []string) error {
	name := func(i int) string {
		if files != nil {
			return files[i]
		}
		if prompts[i].Slug != "" {
			return fmt.Sprintf("prompt %d (%s)", i, prompts[i].Slug)
		}
		return fmt.Sprintf("prompt %d", i)
	}
	seen := map[string]string{} // id or slug -> owner
	claim := func(kind, id string, i int) error {
		k := kind + ":" + strings.ToLower(id)
		if other, dup := seen[k]; dup {
			return fmt.Errorf("fakeapi: %s: %s %q already used by %s", name(i), kind, id, other)
		}
		seen[k] = name(i)
		return nil
	}
	for i := range prompts {
		if err := validatePrompt(&prompts[i]); err != nil {
			return fmt.Errorf("fakeapi: %s: %w", name(i), err)
		}
		p := &prompts[i]
		if err := claim("promptId", p.PromptID, i); err != nil {
			return err
		}
		if err := claim("slug", p.Slug, i); err != nil {
			return err
		}
		for _, v := range p.Versions {
			if err := claim("promptVersionId", v.PromptVersionID, i); err != nil {
				return err
			}
		}
	}
	return nil
}

func validatePrompt(p *Prompt) error {
	if !isUUID(p.PromptID) {
		return fmt.Errorf("promptId %q is not a UUID", p.PromptID)
	}
	if strings.TrimSpace(p.Title) == "" {
		return errors.New("title is empty")
	}
	if strings.TrimSpace(p.Slug) == "" {
		return errors.New("slug is empty")
	}
	switch p.Modality {
	case "text", "image", "video":
	default:
		return fmt.Errorf("modality %q is not text, image or video", p.Modality)
	}
	m, ok := fixtureResources.model(p.Model)
	if !ok {
		return fmt.Errorf("model %q is not a model of /v1/resources", p.Model)
	}
	if m.Modality != p.Modality {
		return fmt.Errorf("model %q is a %s model, the prompt is %s", p.Model, m.Modality, p.Modality)
	}
	for k, v := range p.RunOptions {
		if k == "image" {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("runOptions.%s is not a string", k)
		}
		if msg := m.checkOption(k, s); msg != "" {
			return errors.New("runOptions: " + msg)
		}
	}
	if p.EstimatedCredits < 0 || p.Credits < 0 || p.DurationMs < 0 || p.Uses < 0 || p.UpVotes < 0 {
		return errors.New("estimatedCredits, credits, durationMs, uses and upVotes must not be negative")
	}
	if len(p.Outputs) == 0 && !p.Fail {
		return errors.New("outputs is empty")
	}
	for i, o := range p.Outputs {
		switch o.Type {
		case "text", "error":
			if o.File != "" {
				return fmt.Errorf("outputs[%d]: a %s item has no file", i, o.Type)
			}
		case "image":
			if o.File != "png" {
				return fmt.Errorf("outputs[%d]: an image item needs \"file\": \"png\"", i)
			}
		case "video":
			if o.File != "mp4" {
				return fmt.Errorf("outputs[%d]: a video item needs \"file\": \"mp4\"", i)
			}
		default:
			return fmt.Errorf("outputs[%d]: type %q is not text, image, video or error", i, o.Type)
		}
	}
	if len(p.Samples) > 0 && !json.Valid(p.Samples) {
		return errors.New("samples is not valid JSON")
	}
	if len(p.Versions) == 0 {
		return errors.New("versions is empty")
	}
	var prev time.Time
	for i, v := range p.Versions {
		if !isUUID(v.PromptVersionID) {
			return fmt.Errorf("versions[%d]: promptVersionId %q is not a UUID", i, v.PromptVersionID)
		}
		t, err := time.Parse(time.RFC3339Nano, v.PublishedAt)
		if err != nil {
			return fmt.Errorf("versions[%d]: publishedAt %q is not an ISO 8601 time", i, v.PublishedAt)
		}
		if i > 0 && t.After(prev) {
			return fmt.Errorf("versions[%d]: versions must be newest first", i)
		}
		prev = t
		if hasJSON(v.Config) && hasJSON(v.InputsJTD) {
			return fmt.Errorf("versions[%d]: has both config and inputsJTD", i)
		}
		if _, err := parseVersionSpec(v); err != nil {
			return fmt.Errorf("versions[%d]: %w", i, err)
		}
	}
	return nil
}

// hasJSON reports whether raw holds a value other than null.
func hasJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// isUUID reports whether s has the canonical 8-4-4-4-12 hex form (any
// version nibble, either case), the form the API's ids have.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
