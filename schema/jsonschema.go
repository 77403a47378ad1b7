package schema

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/invopop/jsonschema"

	"github.com/bpmcp/bpmcp/bpapi"
)

// urlPattern is what an image URL must match: http(s), a host name (no user
// info, no IPv6 literal), an optional numeric port, no whitespace. Validate
// uses the same expression, so the schema and Validate agree.
const urlPattern = `^https?://[^\s/?#@:\[\]]+(?::[0-9]*)?(?:[/?#]\S*)?$`

// base64Pattern is what a base64 image must match: non-empty standard Base64
// (padded or not), optionally after a data:image/<format>;base64, prefix.
const base64Pattern = `^(?:data:image/[A-Za-z0-9.+-]+;base64,)?(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)$`

// InputSchema returns the JSON Schema (draft 2020-12) of a run's `inputs`
// argument:
//
//	{"textInputs": {<key>: ...}, "imageInputs": [{"type":"url","url":...} | {"type":"base64","base64":...}, ...]}
//
// textInputs has one property per variable in config order; required are the
// text variables without a default and every select. A single select is a
// string enum of the option values; a multi-select an array of them with
// uniqueItems and the count bounds. Labels that differ from their values are
// listed in the description, since an enum cannot carry them. An empty
// description is generated from the key ("Output_language" -> "Output
// language"); the author's descriptions are cut at 2000 characters.
// imageInputs is present only when the prompt takes images; it then has
// exactly that many items, each a URL or Base64 image, and its description
// lists what each position must show.
//
// The root carries "$schema"; clear Version before embedding the schema in
// another one. model is accepted so that callers need not care whether the
// inputs depend on the run model; today they do not, and nil is fine.
func (c *Config) InputSchema(model *bpapi.Model) *jsonschema.Schema {
	_ = model
	if c == nil {
		c = &Config{}
	}
	text := &jsonschema.Schema{
		Type:                 "object",
		Properties:           jsonschema.NewProperties(),
		AdditionalProperties: jsonschema.FalseSchema,
	}
	for i := range c.Variables {
		v := &c.Variables[i]
		if _, dup := text.Properties.Get(v.Key); dup {
			continue
		}
		text.Properties.Set(v.Key, variableSchema(v))
		if v.Required() {
			text.Required = append(text.Required, v.Key)
		}
	}
	root := &jsonschema.Schema{
		Version:              jsonschema.Version,
		Type:                 "object",
		Properties:           jsonschema.NewProperties(),
		AdditionalProperties: jsonschema.FalseSchema,
	}
	root.Properties.Set("textInputs", text)
	if len(text.Required) > 0 {
		root.Required = append(root.Required, "textInputs")
	}
	if n := len(c.Images); n > 0 {
		root.Properties.Set("imageInputs", &jsonschema.Schema{
			Type:        "array",
			MinItems:    ptr(uint64(n)),
			MaxItems:    ptr(uint64(n)),
			Items:       imageItemSchema(),
			Description: imagesDescription(c.Images),
		})
		root.Required = append(root.Required, "imageInputs")
	}
	return root
}

func variableSchema(v *Variable) *jsonschema.Schema {
	desc := v.Description
	if strings.TrimSpace(desc) == "" {
		desc = humanize(v.Key)
	}
	desc = truncateRunes(desc, maxDescriptionRunes)
	if v.Kind != KindSelect {
		s := &jsonschema.Schema{Type: "string", Description: desc}
		if !v.AllowEmpty {
			s.MinLength = ptr(uint64(1))
		}
		if d, ok := v.Default(); ok {
			s.Default = d
		}
		return s
	}
	desc = sentence(desc, labelList(v.Options))
	enum := make([]any, len(v.Options))
	for i, o := range v.Options {
		enum[i] = o.Value
	}
	if !v.Multiple {
		return &jsonschema.Schema{Type: "string", Enum: enum, Description: desc}
	}
	lo, hi := v.ItemBounds()
	s := &jsonschema.Schema{
		Type:        "array",
		Items:       &jsonschema.Schema{Type: "string", Enum: enum},
		UniqueItems: true,
		MinItems:    ptr(uint64(lo)),
		Description: desc,
	}
	if hi >= 0 {
		s.MaxItems = ptr(uint64(hi))
	}
	return s
}

// imageItemSchema is the schema of one image: a URL or Base64 data.
func imageItemSchema() *jsonschema.Schema {
	urlProps := jsonschema.NewProperties()
	urlProps.Set("type", &jsonschema.Schema{Const: "url"})
	urlProps.Set("url", &jsonschema.Schema{
		Type:        "string",
		Format:      "uri",
		Pattern:     urlPattern,
		Description: "Public http(s) URL of the image",
	})
	b64Props := jsonschema.NewProperties()
	b64Props.Set("type", &jsonschema.Schema{Const: "base64"})
	b64Props.Set("base64", &jsonschema.Schema{
		Type:        "string",
		Pattern:     base64Pattern,
		Description: "Base64 image data, plain or as a data URI such as data:image/png;base64,... (at most 20 MiB decoded)",
	})
	return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
		{Type: "object", Properties: urlProps, AdditionalProperties: jsonschema.FalseSchema, Required: []string{"type", "url"}},
		{Type: "object", Properties: b64Props, AdditionalProperties: jsonschema.FalseSchema, Required: []string{"type", "base64"}},
	}}
}

// imagesDescription lists what each image must show, in order.
func imagesDescription(imgs []Image) string {
	described := false
	for _, img := range imgs {
		described = described || strings.TrimSpace(img.Description) != ""
	}
	switch {
	case !described:
		return "Exactly " + plural(len(imgs), "image") + "."
	case len(imgs) == 1:
		return "Exactly 1 image: " + truncateRunes(strings.TrimSpace(imgs[0].Description), maxDescriptionRunes)
	}
	return "Exactly " + plural(len(imgs), "image") + ", in this order: " + imageList(imgs)
}

// imageList renders "1: desc; 2: desc".
func imageList(imgs []Image) string {
	var b strings.Builder
	for i, img := range imgs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(": ")
		d := strings.TrimSpace(img.Description)
		if d == "" {
			d = "any image"
		}
		b.WriteString(truncateRunes(d, maxDescriptionRunes/4))
	}
	return b.String()
}

// RunOptionsSchema returns the JSON Schema of a run's runOptions for model: an
// object whose properties are the model's option keys, each an enum of its
// values. It is nil when model is nil or has no run options.
func (c *Config) RunOptionsSchema(model *bpapi.Model) *jsonschema.Schema {
	if model == nil || len(model.AvailableRunOptions) == 0 {
		return nil
	}
	s := &jsonschema.Schema{
		Version:              jsonschema.Version,
		Type:                 "object",
		Properties:           jsonschema.NewProperties(),
		AdditionalProperties: jsonschema.FalseSchema,
		Description:          "Run options of model " + model.Model + "; omit one to use the prompt's default.",
	}
	for _, ro := range runOptions(model) {
		enum := make([]any, len(ro.Options))
		for i, o := range ro.Options {
			enum[i] = o
		}
		s.Properties.Set(ro.Key, &jsonschema.Schema{Type: "string", Enum: enum})
	}
	return s
}

// runOptions returns a model's run options that accept at least one value,
// the first of each key only, with duplicate values removed.
func runOptions(model *bpapi.Model) []bpapi.RunOption {
	var out []bpapi.RunOption
	seen := map[string]bool{}
	for _, ro := range model.AvailableRunOptions {
		if seen[ro.Key] {
			continue
		}
		seen[ro.Key] = true
		var vals []string
		dup := map[string]bool{}
		for _, o := range ro.Options {
			if !dup[o] {
				dup[o] = true
				vals = append(vals, o)
			}
		}
		if len(vals) > 0 {
			out = append(out, bpapi.RunOption{Key: ro.Key, Options: vals})
		}
	}
	return out
}

// labelList renders a select's options for a description when some label
// differs from its value: `Send the value, not its label: "x" (X (Twitter)),
// "threads" (Threads).`;
// it is "" when every label equals its value (the enum says it all).
func labelList(opts []Option) string {
	differ := false
	for _, o := range opts {
		if o.Label != o.Value {
			differ = true
			break
		}
	}
	if !differ {
		return ""
	}
	return "Send the value, not its label: " + optionList(opts) + "."
}

// optionList renders `"friendly" (Friendly), "formal" (Formal)`; a label equal
// to its value is not repeated.
func optionList(opts []Option) string {
	var b strings.Builder
	n := 0
	for _, o := range opts {
		n += len(o.Value) + len(o.Label) + 8
	}
	b.Grow(n)
	for i, o := range opts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(o.Value))
		if o.Label != o.Value {
			b.WriteString(" (")
			b.WriteString(truncateRunes(o.Label, 200))
			b.WriteString(")")
		}
	}
	return b.String()
}

// sentence appends extra to desc as a new sentence.
func sentence(desc, extra string) string {
	desc = strings.TrimRightFunc(desc, unicode.IsSpace)
	switch {
	case extra == "":
		return desc
	case desc == "":
		return extra
	}
	if r, _ := utf8.DecodeLastRuneInString(desc); !strings.ContainsRune(".!?:", r) {
		desc += "."
	}
	return desc + " " + extra
}

// humanize turns a key such as "Output_language" or "customerType" into
// "Output language" / "Customer type".
func humanize(key string) string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	runes := []rune(key)
	for i, r := range runes {
		switch {
		case r == '_' || r == '-' || unicode.IsSpace(r):
			flush()
		case unicode.IsUpper(r) && i > 0 && unicode.IsLower(runes[i-1]):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	if len(words) == 0 {
		return "Text input"
	}
	for i := range words {
		if i > 0 && !isAllUpper(words[i]) {
			words[i] = strings.ToLower(words[i])
		}
	}
	s := strings.Join(words, " ")
	r, n := utf8.DecodeRuneInString(s)
	return truncateRunes(string(unicode.ToUpper(r))+s[n:], 200)
}

func isAllUpper(s string) bool {
	return len(s) > 1 && strings.ToUpper(s) == s && strings.ToLower(s) != s
}

// truncateRunes cuts s to at most n runes, ending with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// truncate cuts s to at most n bytes for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func ptr[T any](v T) *T { return &v }
