package betterprompt

import (
	"context"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/tools"
)

// uuidPattern is the canonical 8-4-4-4-12 form, the only one the API takes.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// anyUUID finds UUIDs inside a longer text, such as a web link.
var anyUUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// promptIDArg reads a prompt_id argument: a prompt id, a prompt's slug, or
// the link to a prompt's page on betterprompt.me (a person pastes the
// page's address) that holds either. It returns the id, or the slug to
// resolve (through an undocumented route). A link on another site, with
// several ids, or with both an id and a slug that may disagree, is refused
// with what to do instead; the value is echoed only when it cannot hold a
// key.
func promptIDArg(value, source string) (id, slug string, err error) {
	value = strings.TrimSpace(value)
	u, perr := url.Parse(value)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if bpapi.IsSlug(value) && !uuidPattern.MatchString(value) {
			return "", value, nil
		}
		return value, "", checkID("prompt_id", value, source+", or give the prompt's slug or page link")
	}
	if host := strings.ToLower(u.Hostname()); host != "betterprompt.me" && !strings.HasSuffix(host, ".betterprompt.me") {
		return "", "", tools.Invalidf("prompt_id is a link to %s, not to a prompt's page on betterprompt.me (%s); give the prompt's id, "+
			"slug or page link", shown(u.Hostname(), 60), shown(value, 80))
	}
	pathIDs, queryIDs := uuidsIn(u.Path), uuidsIn(u.RawQuery)
	last := path.Base(strings.TrimRight(u.Path, "/"))
	switch {
	case len(pathIDs) == 1:
		for id := range pathIDs {
			return id, "", nil
		}
	case len(pathIDs) == 0 && bpapi.IsSlug(last) && len(queryIDs) == 0:
		return "", last, nil
	case len(pathIDs) == 0 && !bpapi.IsSlug(last) && len(queryIDs) == 1:
		for id := range queryIDs {
			return id, "", nil
		}
	}
	what := "no prompt id or slug"
	if len(pathIDs)+len(queryIDs) > 0 {
		what = "more than one way to name the prompt (several ids, or an id beside a slug)"
	}
	return "", "", tools.Invalidf("prompt_id is a link with %s in it (%s); give the prompt's id instead: find it with search_prompts, "+
		"or ask the user for the prompt's page link", what, shown(value, 80))
}

// uuidsIn returns the distinct UUIDs in s, lower-cased.
func uuidsIn(s string) map[string]bool {
	ids := map[string]bool{}
	for _, id := range anyUUID.FindAllString(s, -1) {
		ids[strings.ToLower(id)] = true
	}
	return ids
}

// shown quotes at most n runes of an argument for an error message, or says
// it is not shown when it may hold an API key.
func shown(value string, n int) string {
	if looksLikeKey(value) {
		return "not shown: it may hold an API key"
	}
	return tools.Excerpt(value, n)
}

// checkID refuses an id that is not a canonical UUID, naming the tool that
// hands out valid ones.
func checkID(name, value, source string) error {
	if value == "" {
		return tools.Invalidf("%s is required; %s", name, source)
	}
	if !uuidPattern.MatchString(value) {
		got := tools.Excerpt(value, 40)
		if looksLikeKey(value) {
			got = "a value that may hold an API key (not shown)"
		}
		return tools.Invalidf("%s must be a UUID such as 2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01, got %s; %s", name, got, source)
	}
	return nil
}

// looksLikeKey reports whether a value pasted into an argument may hold an
// API key (anywhere in it, in any case, percent-encoded or not), which
// must not be echoed into a result.
func looksLikeKey(s string) bool {
	for range 3 { // %255F decodes to %5F, then to _
		low := strings.ToLower(s)
		if strings.Contains(low, "bp_") || strings.Contains(low, "bearer") {
			return true
		}
		decoded, err := url.PathUnescape(s)
		if err != nil || decoded == s {
			break
		}
		s = decoded
	}
	return strings.Contains(strings.ToLower(s), "%5f") // an escape that did not decode cleanly
}

// resolveSlug finds the id of the prompt whose slug is slug, through the
// official CLI's skills route, which BetterPrompt does not document.
func (d *Toolset) resolveSlug(ctx context.Context, c *bpapi.Client, slug string) (string, error) {
	skill, err := c.SkillBySlug(ctx, slug)
	switch {
	case err == nil:
		d.facts.learn(skill.SkillID, factsOfSkill(*skill))
		return skill.SkillID, nil
	case bpapi.IsNotFound(err):
		return "", tools.Failf(err, "No published prompt has the slug %q. Find the prompt with search_prompts, or ask the user "+
			"for the link to its page.", slug)
	case bpapi.IsUnauthorized(err), bpapi.IsPaymentRequired(err):
		return "", err // the key's problem, worded as for any call
	}
	return "", tools.Failf(err, "The slug %q could not be looked up: slugs are read through a route BetterPrompt does not "+
		"document, which did not answer as expected (%s). Give the prompt's id, or the link to its page that ends with "+
		"the id, instead.", slug, briefError(err))
}
