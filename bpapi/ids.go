package bpapi

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ErrInvalidID is wrapped by the error a method returns, without sending
// anything, when an id argument (promptId, versionId, promptVersionId, runId,
// startingAfter, endingBefore) is not a UUID in its canonical 36-character
// form 8-4-4-4-12 (hex digits in either case). The error names the field.
var ErrInvalidID = errors.New("not a UUID")

// ErrEmptyQuery is wrapped by the error SearchPrompts returns, without
// sending anything, when the query is empty after trimming.
var ErrEmptyQuery = errors.New("the search query is empty")

// IsUUID reports whether s is a UUID in the canonical form the API uses:
// 36 characters, hex digits and hyphens at positions 8, 13, 18 and 23.
// Unlike uuid.Parse it refuses the urn:uuid:, braced and hyphen-less forms.
func IsUUID(s string) bool {
	// uuid.Validate also accepts 32 hex digits, {braces} and urn:uuid:;
	// of its forms only the canonical one is 36 characters long.
	return len(s) == 36 && uuid.Validate(s) == nil
}

// checkID returns an error wrapping ErrInvalidID unless id is a canonical
// UUID. The error quotes (a prefix of) the value, with the client's key
// redacted should it have been passed by mistake.
func (c *Client) checkID(field, id string) error {
	if IsUUID(id) {
		return nil
	}
	shown := c.Redact(id)
	if utf8.RuneCountInString(shown) > 40 {
		shown = string([]rune(shown)[:40]) + "…"
	}
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("betterprompt: %s is empty: %w", field, ErrInvalidID)
	}
	return fmt.Errorf("betterprompt: %s %q: %w (want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", field, shown, ErrInvalidID)
}
