package betterprompt

import (
	"regexp"
	"strings"

	"github.com/bpmcp/bpmcp/tools"
)

// uuidPattern is the canonical 8-4-4-4-12 form, the only one the API takes.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

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
