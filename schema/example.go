package schema

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Example returns one valid `inputs` object for the config:
// {"textInputs": {...}, "imageInputs": [...]} (imageInputs only when the
// prompt takes images). Required text gets a value derived from its key
// ("Example company name"); optional text is left out so that its default
// applies; a select gets its first option; a multi-select (as an array) the
// fewest first options it allows, at least one; each image an example URL.
func (c *Config) Example() map[string]any {
	if c == nil {
		c = &Config{}
	}
	text := map[string]any{}
	for i := range c.Variables {
		v := &c.Variables[i]
		if _, done := text[v.Key]; done || !v.Required() {
			continue
		}
		switch {
		case v.Kind == KindText:
			text[v.Key] = exampleText(v.Key)
		case len(v.Options) == 0:
			text[v.Key] = "" // a hand-built select without options cannot be satisfied
		case !v.Multiple:
			text[v.Key] = v.Options[0].Value
		default:
			lo, hi := v.ItemBounds()
			n := max(lo, 1)
			if hi >= 0 {
				n = min(n, hi)
			}
			n = min(n, len(v.Options))
			items := make([]string, n)
			for j := range items {
				items[j] = v.Options[j].Value
			}
			text[v.Key] = items
		}
	}
	ex := map[string]any{"textInputs": text}
	if len(c.Images) > 0 {
		imgs := make([]any, len(c.Images))
		for i := range imgs {
			imgs[i] = map[string]any{"type": "url", "url": "https://example.com/image-" + strconv.Itoa(i+1) + ".png"}
		}
		ex["imageInputs"] = imgs
	}
	return ex
}

// exampleText returns "Example <key in words>".
func exampleText(key string) string {
	h := humanize(key)
	if r, n := utf8.DecodeRuneInString(h); n > 0 && !isAllUpper(strings.Fields(h)[0]) {
		h = string(unicode.ToLower(r)) + h[n:]
	}
	return "Example " + h
}
