package bpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Skill is a published prompt as the official CLI's skills routes show it
// (GET /v1/skills and /v1/skills/{name}; undocumented, reference §7.11).
// Older and newer row shapes both fit; the facts beyond the prompt's
// identity are read when a row carries them and left empty otherwise.
type Skill struct {
	// SkillID is the prompt's id.
	SkillID string `json:"skillId"`
	// LatestPromptVersionID is the prompt's latest version (newer shape).
	LatestPromptVersionID string `json:"latestPromptVersionId"`
	// Name is the prompt's slug.
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`
	// Modality is read from "modality" or "type", when present.
	Modality Modality `json:"modality"`
	// Model is the default model, when present.
	Model ModelRef `json:"model"`
	// EstimatedCredits is the price, when present (top level, or under
	// "pricing", which the route may add when asked with pricing=true).
	EstimatedCredits *int `json:"estimatedCredits"`
	// DefaultRunOptions are the prompt's default run options, when present.
	DefaultRunOptions map[string]string `json:"-"`
}

// UnmarshalJSON reads a row, and the facts an undocumented shape may add.
func (s *Skill) UnmarshalJSON(b []byte) error {
	type plain Skill
	var row struct {
		plain
		// The price is read leniently: a row must not fail for its type.
		EstimatedCredits json.RawMessage `json:"estimatedCredits"`
	}
	if err := json.Unmarshal(b, &row); err != nil {
		return err
	}
	var extra struct {
		rowFacts
		Type Modality `json:"type"`
	}
	_ = json.Unmarshal(b, &extra) // best effort: a field of another type is simply not a fact
	if row.Modality == "" {
		row.Modality = extra.Type
	}
	if row.Model.Name == "" {
		row.Model.Name = extra.modelName()
	}
	row.plain.EstimatedCredits = jsonCredits(row.EstimatedCredits)
	if row.plain.EstimatedCredits == nil {
		row.plain.EstimatedCredits = extra.price()
	}
	row.plain.DefaultRunOptions = extra.runOptions()
	*s = Skill(row.plain)
	return nil
}

// slugPattern is what a prompt's slug looks like (lower-case words joined
// by hyphens), so that nothing else is sent as a path segment.
var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// IsSlug reports whether s has the form of a prompt's slug.
func IsSlug(s string) bool { return len(s) <= 200 && slugPattern.MatchString(s) }

// SkillBySlug reads a published prompt by its slug through the CLI's
// undocumented route. Callers must expect it to fail in ways the documented
// routes do not (404 for a route that is gone, another row shape).
func (c *Client) SkillBySlug(ctx context.Context, slug string) (*Skill, error) {
	if !IsSlug(slug) {
		return nil, fmt.Errorf("betterprompt: slug %q: %w (want lower-case words joined by hyphens)", slug, ErrInvalidID)
	}
	var out Skill
	// pricing=true is the CLI's own flag for the price; a route that
	// ignores it answers the same row without one.
	q := url.Values{"pricing": {"true"}}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/skills/" + url.PathEscape(slug), query: q, out: &out}); err != nil {
		return nil, err
	}
	if !IsUUID(out.SkillID) {
		return nil, fmt.Errorf("betterprompt: the skills route answered for slug %q without a prompt id", slug)
	}
	return &out, nil
}

// SearchSkills searches published prompts of one type ("text", "image" or
// "video") through the official CLI's undocumented route (GET
// /v1/skills?q=&type=), the only search that finds video prompts. The CLI
// requires a query of at least 3 characters. Rows without a prompt id are
// dropped. The result is never nil.
func (c *Client) SearchSkills(ctx context.Context, query, typ string) ([]Skill, error) {
	q := strings.TrimSpace(query)
	if q == "" {
		return nil, fmt.Errorf("betterprompt: search skills: %w", ErrEmptyQuery)
	}
	var out struct {
		Rows []Skill `json:"rows"`
	}
	params := url.Values{"q": {q}}
	if typ != "" {
		params.Set("type", typ)
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/skills", query: params, out: &out}); err != nil {
		return nil, err
	}
	rows := make([]Skill, 0, len(out.Rows))
	for _, r := range out.Rows {
		if IsUUID(r.SkillID) {
			rows = append(rows, r)
		}
	}
	return rows, nil
}
