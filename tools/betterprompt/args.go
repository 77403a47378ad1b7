package betterprompt

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/bpmcp/bpmcp/tools"
)

// uuidPattern is the canonical 8-4-4-4-12 form, the only one the API takes.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// anyUUID finds UUIDs inside a longer text, such as a web link.
var anyUUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// promptIDArg reads a prompt_id argument: a prompt id, or a BetterPrompt web
// link that holds one (a person pastes the page's address), from which the
// id is taken. A link with no id in it, or with several, is refused with
// what to do instead.
func promptIDArg(value, source string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(value))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return value, checkID("prompt_id", value, source)
	}
	ids := map[string]bool{}
	for _, id := range anyUUID.FindAllString(u.Path+"?"+u.RawQuery, -1) {
		ids[strings.ToLower(id)] = true
	}
	if len(ids) != 1 {
		got := tools.Excerpt(value, 80)
		if strings.Contains(strings.ToLower(value), "bp_") {
			got = "not shown: it may hold an API key"
		}
		return "", tools.Invalidf("prompt_id is a link with %s in it (%s); give the prompt's id instead: find it with search_prompts, "+
			"or ask the user for the prompt's page link that ends with its id", idCount(len(ids)), got)
	}
	for id := range ids {
		return id, nil
	}
	return "", nil // unreachable: ids has one entry
}

func idCount(n int) string {
	if n == 0 {
		return "no prompt id"
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
