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
// a BetterPrompt web link (a person pastes the page's address) that holds
// either. It returns the id, or the slug to resolve (through an
// undocumented route, so only when there is no id). A link with several
// ids, or with neither an id nor a slug, is refused with what to do instead.
func promptIDArg(value, source string) (id, slug string, err error) {
	value = strings.TrimSpace(value)
	u, perr := url.Parse(value)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if bpapi.IsSlug(value) && !uuidPattern.MatchString(value) {
			return "", value, nil
		}
		return value, "", checkID("prompt_id", value, source+", or give the prompt's slug or page link")
	}
	ids := map[string]bool{}
	for _, id := range anyUUID.FindAllString(u.Path+"?"+u.RawQuery, -1) {
		ids[strings.ToLower(id)] = true
	}
	if len(ids) == 1 {
		for id := range ids {
			return id, "", nil
		}
	}
	if last := path.Base(strings.TrimRight(u.Path, "/")); len(ids) == 0 && bpapi.IsSlug(last) {
		return "", last, nil
	}
	got := tools.Excerpt(value, 80)
	if strings.Contains(strings.ToLower(value), "bp_") {
		got = "not shown: it may hold an API key"
	}
	return "", "", tools.Invalidf("prompt_id is a link with %s in it (%s); give the prompt's id instead: find it with search_prompts, "+
		"or ask the user for the prompt's page link", idCount(len(ids)), got)
}

func idCount(n int) string {
	if n == 0 {
		return "no prompt id or slug"
	}
	return "several ids"
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
			got = "a value that looks like an API key (not shown)"
		}
		return tools.Invalidf("%s must be a UUID such as 2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01, got %s; %s", name, got, source)
	}
	return nil
}

// looksLikeKey reports whether a value pasted into an argument may be an
// API key, which must not be echoed into a result.
func looksLikeKey(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(s, "bp_") || strings.HasPrefix(s, "bearer ")
}

// resolveSlug finds the id of the prompt whose slug is slug, through the
// official CLI's skills route, which BetterPrompt does not document.
func resolveSlug(ctx context.Context, c *bpapi.Client, slug string) (string, error) {
	skill, err := c.SkillBySlug(ctx, slug)
	switch {
	case err == nil:
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
