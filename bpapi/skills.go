package bpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Skill is a published prompt as the official CLI's skills routes show it
// (GET /v1/skills/{name}; undocumented, reference §7.11). Only the fields
// that identify the prompt are read; older and newer row shapes both fit.
type Skill struct {
	// SkillID is the prompt's id.
	SkillID string `json:"skillId"`
	// LatestPromptVersionID is the prompt's latest version (newer shape).
	LatestPromptVersionID string `json:"latestPromptVersionId"`
	// Name is the prompt's slug.
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`
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
	if err := c.do(ctx, request{method: http.MethodGet, path: "/skills/" + url.PathEscape(slug), out: &out}); err != nil {
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
