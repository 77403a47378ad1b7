package fakeapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// inputSpec is the fake's own reading of a prompt version's input
// configuration (reference §8.2–§8.5, §8.10).
type inputSpec struct {
	vars       []varSpec
	imageCount int
}

type varSpec struct {
	key        string
	sel        bool
	allowEmpty bool
	optional   bool     // legacy JTD optionalProperties: may be left out
	defaults   []string // first element is the default
	options    []string // option keys (values to submit), JSON order
	multiple   bool
	min, max   int // -1 = unbounded; only for multiple
}

func (v *varSpec) hasOption(s string) bool {
	for _, o := range v.options {
		if o == s {
			return true
		}
	}
	return false
}

// kv is one member of a JSON object, in document order.
type kv struct {
	key string
	val json.RawMessage
}

// orderedObject decodes a JSON object keeping the order of its members.
func orderedObject(raw json.RawMessage) ([]kv, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not an object")
	}
	var out []kv
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		out = append(out, kv{key: tok.(string), val: val})
	}
	return out, nil
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// parseVersionSpec parses the input contract of one fixture version.
func parseVersionSpec(v Version) (*inputSpec, error) {
	if hasJSON(v.InputsJTD) {
		spec, err := parseJTD(v.InputsJTD)
		if err != nil {
			return nil, fmt.Errorf("inputsJTD: %w", err)
		}
		return spec, nil
	}
	spec, err := parseConfig(v.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return spec, nil
}

// parseConfig parses an InputMetadata config ({variables, images}); a config
// without either but with an "inputsJTD" member is read as the legacy
// contract; {} or null means "no inputs".
func parseConfig(raw json.RawMessage) (*inputSpec, error) {
	spec := &inputSpec{}
	if !hasJSON(raw) {
		return spec, nil
	}
	members, err := orderedObject(raw)
	if err != nil {
		return nil, err
	}
	get := func(name string) (json.RawMessage, bool) {
		for _, m := range members {
			if m.key == name && hasJSON(m.val) {
				return m.val, true
			}
		}
		return nil, false
	}
	varsRaw, hasVars := get("variables")
	imagesRaw, hasImages := get("images")
	if !hasVars && !hasImages {
		if jtd, ok := get("inputsJTD"); ok {
			return parseJTD(jtd)
		}
	}
	if hasVars {
		vars, err := orderedObject(varsRaw)
		if err != nil {
			return nil, fmt.Errorf("variables: %w", err)
		}
		for _, m := range vars {
			v, err := parseVariable(m.key, m.val)
			if err != nil {
				return nil, fmt.Errorf("variables.%s: %w", m.key, err)
			}
			spec.vars = append(spec.vars, v)
		}
	}
	if hasImages {
		var images []json.RawMessage
		if err := json.Unmarshal(imagesRaw, &images); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		spec.imageCount = len(images)
	} else if n, ok := get("imageCount"); ok {
		if err := json.Unmarshal(n, &spec.imageCount); err != nil || spec.imageCount < 0 {
			return nil, errors.New("imageCount is not a non-negative integer")
		}
	}
	return spec, nil
}

// parseVariable reads one variable leniently (§8.5): type 0 (or "TEXT") is
// text; any other type is a select if options is a non-empty object, else
// text. Unknown keys are ignored.
func parseVariable(key string, raw json.RawMessage) (varSpec, error) {
	v := varSpec{key: key, min: -1, max: -1}
	var f struct {
		Type          json.RawMessage `json:"type"`
		AllowEmpty    json.RawMessage `json:"allowEmpty"`
		DefaultValues json.RawMessage `json:"defaultValues"`
		Options       json.RawMessage `json:"options"`
		Multiple      json.RawMessage `json:"multiple"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return v, err
	}
	textType := false
	var n json.Number
	var s string
	switch {
	case json.Unmarshal(f.Type, &n) == nil:
		textType = n.String() == "0"
	case json.Unmarshal(f.Type, &s) == nil:
		textType = strings.EqualFold(s, "TEXT") || s == "0"
	}
	if !textType && isObject(f.Options) {
		opts, err := orderedObject(f.Options)
		if err != nil {
			return v, fmt.Errorf("options: %w", err)
		}
		for _, o := range opts {
			v.options = append(v.options, o.key)
		}
		v.sel = len(v.options) > 0
	}
	if v.sel {
		var b bool
		switch {
		case !hasJSON(f.Multiple):
		case json.Unmarshal(f.Multiple, &b) == nil:
			v.multiple = b
		case isObject(f.Multiple):
			var mm struct {
				Min *int `json:"min"`
				Max *int `json:"max"`
			}
			if err := json.Unmarshal(f.Multiple, &mm); err != nil {
				return v, fmt.Errorf("multiple: %w", err)
			}
			v.multiple = true
			if mm.Min != nil {
				v.min = *mm.Min
			}
			if mm.Max != nil {
				v.max = *mm.Max
			}
		default:
			return v, errors.New("multiple is neither a boolean nor an object")
		}
		return v, nil
	}
	_ = json.Unmarshal(f.AllowEmpty, &v.allowEmpty)
	if hasJSON(f.DefaultValues) {
		var one string
		if json.Unmarshal(f.DefaultValues, &one) == nil {
			v.defaults = []string{one}
		} else {
			var many []any
			if err := json.Unmarshal(f.DefaultValues, &many); err != nil {
				return v, errors.New("defaultValues is neither a list nor a string")
			}
			for _, d := range many {
				if s, ok := d.(string); ok {
					v.defaults = append(v.defaults, s)
				}
			}
		}
	}
	return v, nil
}

// parseJTD reads the legacy inputsJTD contract (§8.10): the properties of
// properties.textInputs are required text inputs, its optionalProperties are
// optional ones; an "enum" form is a single select and {"elements":{"enum"}}
// a multi-select; metadata.imageCount is the number of images. Per-property
// metadata may carry allowEmpty and defaultValues.
func parseJTD(raw json.RawMessage) (*inputSpec, error) {
	spec := &inputSpec{}
	if !isObject(raw) {
		return nil, errors.New("not an object")
	}
	type jtdForm struct {
		Properties         json.RawMessage `json:"properties"`
		OptionalProperties json.RawMessage `json:"optionalProperties"`
		Enum               []string        `json:"enum"`
		Elements           *struct {
			Enum []string `json:"enum"`
		} `json:"elements"`
		Metadata struct {
			ImageCount    *int            `json:"imageCount"`
			AllowEmpty    bool            `json:"allowEmpty"`
			DefaultValues json.RawMessage `json:"defaultValues"`
		} `json:"metadata"`
	}
	var root jtdForm
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	if root.Metadata.ImageCount != nil {
		if *root.Metadata.ImageCount < 0 {
			return nil, errors.New("metadata.imageCount is negative")
		}
		spec.imageCount = *root.Metadata.ImageCount
	}
	var textInputs json.RawMessage
	for _, container := range []json.RawMessage{root.Properties, root.OptionalProperties} {
		if !isObject(container) {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(container, &m); err != nil {
			return nil, err
		}
		if ti, ok := m["textInputs"]; ok {
			textInputs = ti
		}
	}
	if textInputs == nil {
		return spec, nil
	}
	var ti jtdForm
	if err := json.Unmarshal(textInputs, &ti); err != nil {
		return nil, fmt.Errorf("textInputs: %w", err)
	}
	for i, container := range []json.RawMessage{ti.Properties, ti.OptionalProperties} {
		if !hasJSON(container) {
			continue
		}
		props, err := orderedObject(container)
		if err != nil {
			return nil, fmt.Errorf("textInputs: %w", err)
		}
		for _, p := range props {
			var f jtdForm
			if err := json.Unmarshal(p.val, &f); err != nil {
				return nil, fmt.Errorf("textInputs.%s: %w", p.key, err)
			}
			v := varSpec{key: p.key, min: -1, max: -1, optional: i == 1}
			switch {
			case len(f.Enum) > 0:
				v.sel, v.options = true, f.Enum
			case f.Elements != nil && len(f.Elements.Enum) > 0:
				v.sel, v.multiple, v.options = true, true, f.Elements.Enum
			default:
				v.allowEmpty = f.Metadata.AllowEmpty
				if hasJSON(f.Metadata.DefaultValues) {
					_ = json.Unmarshal(f.Metadata.DefaultValues, &v.defaults)
				}
			}
			spec.vars = append(spec.vars, v)
		}
	}
	return spec, nil
}

// resolvedInputs is the outcome of a successful validation.
type resolvedInputs struct {
	text       map[string]string   // every variable's effective value (multi-selects joined with ", ")
	selections map[string][]string // multi-select choices
}

// validationError is a 422 message.
type validationError string

func (e validationError) Error() string { return string(e) }

func invalid(format string, args ...any) error {
	return validationError(fmt.Sprintf(format, args...))
}

// validateInputs applies reference §8.8 to textInputs (nil = {}) and
// imageInputs.
func (spec *inputSpec) validateInputs(text map[string]json.RawMessage, images []json.RawMessage) (resolvedInputs, error) {
	res := resolvedInputs{text: map[string]string{}, selections: map[string][]string{}}
	for i := range spec.vars {
		v := &spec.vars[i]
		raw, present := text[v.key]
		if present && !hasJSON(raw) {
			present = false // null counts as missing
		}
		if v.sel {
			if !present {
				return res, invalid("Missing required input: %s", v.key)
			}
			choices, err := v.parseSelect(raw)
			if err != nil {
				return res, err
			}
			res.text[v.key] = strings.Join(choices, ", ")
			if v.multiple {
				res.selections[v.key] = choices
			}
			continue
		}
		if !present {
			switch {
			case len(v.defaults) > 0:
				res.text[v.key] = v.defaults[0]
			case v.optional:
			default:
				return res, invalid("Missing required input: %s", v.key)
			}
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return res, invalid("Input '%s' must be a string", v.key)
		}
		if s == "" && !v.allowEmpty {
			switch {
			case len(v.defaults) > 0:
				s = v.defaults[0]
			case v.optional:
				continue // an empty optional legacy input is left out
			default:
				return res, invalid("Input '%s' must not be empty", v.key)
			}
		}
		res.text[v.key] = s
	}
	if len(images) != spec.imageCount {
		return res, invalid("Image input count doesn't match the prompt's imageCount (expected %d, got %d)", spec.imageCount, len(images))
	}
	for i, img := range images {
		if msg := checkImage(img); msg != "" {
			return res, invalid("Invalid image input %d: %s", i+1, msg)
		}
	}
	return res, nil
}

// parseSelect checks a select value: a string (for multi-selects, one option
// key or several joined by commas, §8.9) or, for multi-selects, a JSON array
// of option keys.
func (v *varSpec) parseSelect(raw json.RawMessage) ([]string, error) {
	var choices []string
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if !v.multiple {
			if !v.hasOption(s) {
				return nil, invalid("Invalid option '%s' for input '%s'", s, v.key)
			}
			return []string{s}, nil
		}
		parts, bad, ok := splitMulti(s, v)
		if !ok {
			return nil, invalid("Invalid option '%s' for input '%s'", bad, v.key)
		}
		choices = parts
	} else {
		var arr []json.RawMessage
		if !v.multiple || json.Unmarshal(raw, &arr) != nil {
			return nil, invalid("Input '%s' must be a string", v.key)
		}
		for _, item := range arr {
			var c string
			if json.Unmarshal(item, &c) != nil {
				return nil, invalid("Input '%s' must be a list of strings", v.key)
			}
			if !v.hasOption(c) {
				return nil, invalid("Invalid option '%s' for input '%s'", c, v.key)
			}
			choices = append(choices, c)
		}
	}
	seen := map[string]bool{}
	for _, c := range choices {
		if seen[c] {
			return nil, invalid("Duplicate option '%s' for input '%s'", c, v.key)
		}
		seen[c] = true
	}
	minimum := max(v.min, 1)
	if v.min == 0 {
		minimum = 0
	}
	if len(choices) < minimum {
		return nil, invalid("Input '%s' needs at least %d option(s), got %d", v.key, minimum, len(choices))
	}
	if v.max >= 0 && len(choices) > v.max {
		return nil, invalid("Input '%s' accepts at most %d option(s), got %d", v.key, v.max, len(choices))
	}
	return choices, nil
}

// splitMulti splits a ", "-joined multi-select string by matching option
// keys (which may contain commas): the whole string is tried as one option
// first, then the comma-separated pieces are grouped, longest group first,
// so that every group (trimmed) is an option key. It returns the choices
// and true, or the first piece that cannot be matched and false.
func splitMulti(s string, v *varSpec) ([]string, string, bool) {
	whole := strings.TrimSpace(s)
	if whole == "" {
		return nil, "", true
	}
	if v.hasOption(whole) {
		return []string{whole}, "", true
	}
	pieces := strings.Split(s, ",")
	failed := make([]bool, len(pieces)+1)
	var walk func(i int) ([]string, bool)
	walk = func(i int) ([]string, bool) {
		if i == len(pieces) {
			return nil, true
		}
		if failed[i] {
			return nil, false
		}
		for j := len(pieces); j > i; j-- {
			cand := strings.TrimSpace(strings.Join(pieces[i:j], ","))
			if !v.hasOption(cand) {
				continue
			}
			if rest, ok := walk(j); ok {
				return append([]string{cand}, rest...), true
			}
		}
		failed[i] = true
		return nil, false
	}
	if out, ok := walk(0); ok {
		return out, "", true
	}
	// Report the first piece that starts no option.
	for i := 0; i < len(pieces); {
		j := len(pieces)
		for ; j > i; j-- {
			if v.hasOption(strings.TrimSpace(strings.Join(pieces[i:j], ","))) {
				break
			}
		}
		if j == i {
			return nil, strings.TrimSpace(pieces[i]), false
		}
		i = j
	}
	return nil, whole, false
}

// checkImage validates one image input object; "" means valid.
func checkImage(raw json.RawMessage) string {
	if !isObject(raw) {
		return "must be an object with a type"
	}
	var img struct {
		Type   *string `json:"type"`
		URL    any     `json:"url"`
		Base64 any     `json:"base64"`
	}
	if err := json.Unmarshal(raw, &img); err != nil || img.Type == nil {
		return "must be an object with a type"
	}
	switch *img.Type {
	case "url":
		s, ok := img.URL.(string)
		if !ok || s == "" {
			return "url must be a string"
		}
		u, err := url.Parse(s)
		if err != nil || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) || u.Host == "" {
			return "url must be an http or https URL"
		}
		return ""
	case "base64":
		s, ok := img.Base64.(string)
		if !ok || s == "" {
			return "base64 must be a non-empty string"
		}
		if strings.HasPrefix(s, "data:") {
			comma := strings.IndexByte(s, ',')
			if comma < 0 {
				return "invalid data URL"
			}
			meta := s[len("data:"):comma]
			if !strings.HasPrefix(meta, "image/") || !strings.HasSuffix(meta, ";base64") {
				return "a data URL must be data:image/<format>;base64,..."
			}
			s = s[comma+1:]
		}
		if s == "" {
			return "base64 must be a non-empty string"
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			if _, err := base64.RawStdEncoding.DecodeString(s); err != nil {
				return "base64 is not valid Base64"
			}
		}
		return ""
	default:
		return fmt.Sprintf("unknown type %q (want \"url\" or \"base64\")", *img.Type)
	}
}
