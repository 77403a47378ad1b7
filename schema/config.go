// Package schema turns a BetterPrompt prompt's input configuration into a
// precise JSON Schema for agents, and validates a run's inputs locally before
// any credits are spent.
//
// A prompt version carries its input contract as `config` (the backend's
// InputMetadata shape: `variables` and `images`) or, on older deployments, as a
// legacy `inputsJTD`. [Parse] reads either leniently into a [Config];
// [Config.InputSchema] describes the `inputs` argument of a run as JSON Schema
// (draft 2020-12); [Config.Validate] checks an agent's `inputs` against the
// same rules, reports every problem at once as a [*ValidationError], and
// returns the normalized [bpapi.RunInputs] to send, with defaults filled in and
// multi-select values joined with [MultiSelectSeparator].
//
// The schema and Validate agree on what they accept, with a few documented
// exceptions where Validate is more lenient (see [Config.Validate]).
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MultiSelectSeparator joins the values of a multi-select into the single
// string the API takes (§8.9 of the API reference: the backend's default
// separator). It is the only place the wire format is decided.
const MultiSelectSeparator = ", "

// MaxImageCount bounds the number of images a configuration may ask for;
// Parse rejects an explicit imageCount above it.
const MaxImageCount = 100

// maxDescriptionRunes bounds the descriptions copied into schemas, which are
// sent to models; longer ones are cut and end with "…".
const maxDescriptionRunes = 2000

// maxBound caps min/max of a multi-select; larger values are ignored.
const maxBound = 1 << 20

// maxUnwrap is how many times a config encoded as a JSON string inside a JSON
// string is unwrapped.
const maxUnwrap = 4

// Kind is the kind of a prompt variable.
type Kind int

// The variable kinds. Images are not variables: they are [Config.Images].
const (
	KindText   Kind = iota // free-form text
	KindSelect             // one (or, with Multiple, several) of fixed options
)

// String returns "text" or "select".
func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindSelect:
		return "select"
	default:
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Option is one choice of a select: Value is what a run sends, Label what a
// person is shown. Parse sets Label to Value when the config gives no label.
type Option struct {
	Value string
	Label string
}

// Variable is one text input of a prompt, sent under Key in
// inputs.textInputs.
type Variable struct {
	Key         string
	Kind        Kind
	Description string // may be empty
	// AllowEmpty lets a text input be "". Parse also sets it when the
	// default is "".
	AllowEmpty bool
	// Defaults are the text defaults; the first element is the default,
	// sent when the run does not give the variable. A text variable with a
	// default is not required.
	Defaults []string
	// Optional marks a text variable that is left out of the run when not
	// given (a legacy inputsJTD optionalProperties member without a
	// default). Parse gives it Defaults [""], what the prompt then sees,
	// but that default is never sent.
	Optional bool
	// Options are a select's choices in the order of the config's JSON
	// object.
	Options []Option
	// Multiple makes a select accept several options. Min and Max bound their
	// number when the config gives them (multiple: {min, max}).
	Multiple bool
	Min, Max *int
}

// Required reports whether a run must give the variable: a select always, a
// text input only when it has no default and is not Optional.
func (v Variable) Required() bool {
	return v.Kind == KindSelect || (len(v.Defaults) == 0 && !v.Optional)
}

// Default returns the value sent for a text variable the run does not give,
// and whether there is one (none for selects, required text and Optional
// text).
func (v Variable) Default() (string, bool) {
	if v.Kind != KindText || len(v.Defaults) == 0 || v.Optional {
		return "", false
	}
	return v.Defaults[0], true
}

// ItemBounds returns how many options a multi-select takes: at least Min (1
// when Min is not given) and at most Max (-1 when there is no upper bound).
// A single select returns 1, 1; a text variable 0, -1.
func (v Variable) ItemBounds() (lo, hi int) {
	switch {
	case v.Kind != KindSelect:
		return 0, -1
	case !v.Multiple:
		return 1, 1
	}
	lo, hi = 1, -1
	if v.Min != nil {
		lo = *v.Min
	}
	if v.Max != nil {
		hi = *v.Max
	}
	return lo, hi
}

// JoinAmbiguous reports whether a multi-select has an option value containing
// [MultiSelectSeparator], so that the joined wire string cannot be split back
// unambiguously by the server. Callers may want to log a warning.
func (v Variable) JoinAmbiguous() bool {
	if v.Kind != KindSelect || !v.Multiple {
		return false
	}
	for _, o := range v.Options {
		if strings.Contains(o.Value, MultiSelectSeparator) {
			return true
		}
	}
	return false
}

// Image is one image a run must send, in order.
type Image struct {
	Description string // what the image must show; may be empty
}

// Config is a prompt's input contract: its text variables in config order and
// the images a run must send (exactly len(Images)).
type Config struct {
	Variables []Variable
	Images    []Image
	// Legacy is true when the config came from a legacy inputsJTD.
	Legacy bool
}

// Variable returns the variable with the given key, or nil.
func (c *Config) Variable(key string) *Variable {
	if c == nil {
		return nil
	}
	for i := range c.Variables {
		if c.Variables[i].Key == key {
			return &c.Variables[i]
		}
	}
	return nil
}

// Parse reads a prompt's input configuration leniently. It accepts:
//
//   - the InputMetadata shape {"variables": {...}, "images": [...]}, optionally
//     wrapped as {"inputMetadata": {...}}, with an optional "imageCount" that
//     adds images (with empty descriptions) when it exceeds len(images);
//   - when neither variables nor images is present, a legacy "inputsJTD"
//     (or a bare JTD document): properties.textInputs.properties become
//     required text variables and optionalProperties Optional ones (left out
//     of the run when not given; see [Variable.Optional]); a JTD "enum"
//     becomes a select, {"elements": {"enum": [...]}} a multi-select,
//     per-property metadata may carry description, allowEmpty and
//     defaultValues; metadata.imageCount gives that many images;
//   - a config encoded as a JSON string containing JSON.
//
// Variable rules: type 0 (also 0.0, "0", "text") is text; any other type is a
// select when options is a non-empty object (or an array of strings), else
// text. multiple: true is an unbounded multi-select, an object {min?, max?} a
// bounded one; anything else a single select. defaultValues may be an array
// of strings or one bare string. Unknown keys are ignored everywhere; numbers
// may be floats. Bounds are normalized so that the contract can be met:
// negative, fractional or absurd bounds and max 0 are ignored, swapped min and
// max are swapped back, and min is capped at the number of options. Duplicate
// JSON keys keep the position of the first and the value of the last, as
// JavaScript does.
//
// nil, empty or "null" input gives an empty Config. A config that is not a
// JSON object is an error. Parse never panics.
func Parse(raw json.RawMessage) (*Config, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return &Config{}, nil
	}
	members, err := unwrapObject(raw, "prompt config")
	if err != nil {
		return nil, err
	}
	if inner, ok := lookup(members, "inputMetadata"); ok && !has(members, "variables") && !has(members, "images") {
		if m, err := unwrapObject(inner, "inputMetadata"); err == nil {
			members = m
		}
	}
	cfg := &Config{}
	vars, hasVars := lookup(members, "variables")
	imgs, hasImgs := lookup(members, "images")
	// Explicit image counts, in increasing precedence; the largest of them
	// and len(images) wins.
	var counts []json.RawMessage
	switch {
	case hasVars || hasImgs:
		if hasVars {
			cfg.Variables = parseVariables(vars)
		}
		if hasImgs {
			if _, isNum := readScalar(imgs); isNum {
				counts = append(counts, imgs) // "images": 2 read as a count
			} else {
				cfg.Images = parseImages(imgs)
			}
		}
	default:
		jtd, legacy := members, false
		if j, ok := lookup(members, "inputsJTD"); ok && !isNull(j) {
			m, err := unwrapObject(j, "inputsJTD")
			if err != nil {
				return nil, err
			}
			jtd, legacy = m, true
		}
		if legacy || isJTD(jtd) {
			cfg.Legacy = true
			cfg.Variables = parseJTDVariables(jtd)
			if md, ok := lookup(jtd, "metadata"); ok {
				mm, _ := objectMembers(md)
				if n, ok := lookup(mm, "imageCount"); ok {
					counts = append(counts, n)
				}
			}
			if n, ok := lookup(jtd, "imageCount"); ok && legacy {
				counts = append(counts, n)
			}
		}
	}
	if n, ok := lookup(members, "imageCount"); ok {
		counts = append(counts, n)
	}
	for _, n := range counts {
		if isNull(n) {
			continue
		}
		count, ok := readCount(n)
		if !ok || count > MaxImageCount {
			return nil, fmt.Errorf("prompt config: imageCount must be a whole number from 0 to %d, got %s", MaxImageCount, truncate(string(bytes.TrimSpace(n)), 40))
		}
		for len(cfg.Images) < count {
			cfg.Images = append(cfg.Images, Image{})
		}
	}
	return cfg, nil
}

// member is one key of a JSON object, with its raw value.
type member struct {
	key string
	val json.RawMessage
}

// objectMembers decodes a JSON object into its members in document order.
// Duplicate keys keep the first position and the last value.
func objectMembers(raw json.RawMessage) ([]member, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, false
		}
		dup := false
		for i := range out {
			if out[i].key == key {
				out[i].val, dup = val, true
				break
			}
		}
		if !dup {
			out = append(out, member{key, val})
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false // trailing data after the object
	}
	return out, true
}

// unwrapObject returns the members of raw, which must be a JSON object or a
// JSON string containing one (up to maxUnwrap times).
func unwrapObject(raw json.RawMessage, what string) ([]member, error) {
	for range maxUnwrap + 1 {
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%s is not valid JSON: %v", what, err)
			}
			raw = json.RawMessage(s)
			continue
		}
		if !json.Valid(raw) {
			var v any
			err := json.Unmarshal(raw, &v)
			if err == nil {
				err = errors.New("invalid JSON")
			}
			return nil, fmt.Errorf("%s is not valid JSON: %v", what, err)
		}
		if m, ok := objectMembers(raw); ok {
			return m, nil
		}
		return nil, fmt.Errorf("%s must be a JSON object, got %s", what, describeJSON(raw))
	}
	return nil, fmt.Errorf("%s is a JSON string nested too deeply", what)
}

func lookup(ms []member, key string) (json.RawMessage, bool) {
	for _, m := range ms {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

func has(ms []member, key string) bool {
	_, ok := lookup(ms, key)
	return ok
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// rawVariable holds the fields of one variable; anything else is ignored.
type rawVariable struct {
	Type          json.RawMessage `json:"type"`
	Description   json.RawMessage `json:"description"`
	AllowEmpty    json.RawMessage `json:"allowEmpty"`
	DefaultValues json.RawMessage `json:"defaultValues"`
	Options       json.RawMessage `json:"options"`
	Multiple      json.RawMessage `json:"multiple"`
}

func parseVariables(raw json.RawMessage) []Variable {
	members, ok := objectMembers(raw)
	if !ok {
		return nil
	}
	vars := make([]Variable, 0, len(members))
	for _, m := range members {
		var rv rawVariable
		v := Variable{Key: m.key, Kind: KindText}
		if json.Unmarshal(m.val, &rv) != nil {
			vars = append(vars, v) // not an object: a plain text input
			continue
		}
		v.Description = readString(rv.Description)
		v.Options = readOptions(rv.Options)
		if !isTextType(rv.Type) && len(v.Options) > 0 {
			v.Kind = KindSelect
			v.Multiple, v.Min, v.Max = readMultiple(rv.Multiple)
			normalizeBounds(&v)
		} else {
			v.Options = nil
			v.Defaults = readDefaults(rv.DefaultValues)
			v.AllowEmpty = readBool(rv.AllowEmpty) || (len(v.Defaults) > 0 && v.Defaults[0] == "")
		}
		vars = append(vars, v)
	}
	return vars
}

// isTextType reports whether a variable's type says TEXT (0).
func isTextType(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		s = strings.TrimSpace(s)
		if strings.EqualFold(s, "text") {
			return true
		}
		raw = json.RawMessage(s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return err == nil && f == 0
}

func readString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func readBool(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.EqualFold(strings.TrimSpace(s), "true")
	}
	return false
}

// readScalar returns a string or the JSON text of a number or boolean.
func readScalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '{', '[', 'n':
		return "", false
	default:
		return string(raw), true
	}
}

func readDefaults(raw json.RawMessage) []string {
	if s, ok := readScalar(raw); ok {
		return []string{s}
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var out []string
	for _, it := range items {
		if s, ok := readScalar(it); ok {
			out = append(out, s)
		}
	}
	return out
}

// readOptions reads an options object (value -> label) in document order, or
// an array of values.
func readOptions(raw json.RawMessage) []Option {
	if members, ok := objectMembers(raw); ok {
		opts := make([]Option, 0, len(members))
		for _, m := range members {
			label, _ := readScalar(m.val)
			if label == "" {
				label = m.key
			}
			opts = append(opts, Option{Value: m.key, Label: label})
		}
		return opts
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var opts []Option
	seen := map[string]bool{}
	for _, it := range items {
		if s, ok := readScalar(it); ok && !seen[s] {
			seen[s] = true
			opts = append(opts, Option{Value: s, Label: s})
		}
	}
	return opts
}

func readMultiple(raw json.RawMessage) (multi bool, lo, hi *int) {
	if members, ok := objectMembers(raw); ok {
		if v, ok := lookup(members, "min"); ok {
			lo = readBound(v)
		}
		if v, ok := lookup(members, "max"); ok {
			hi = readBound(v)
		}
		return true, lo, hi
	}
	return readBool(raw), nil, nil
}

// readBound reads a non-negative whole number (possibly a float or a numeric
// string); anything else is nil.
func readBound(raw json.RawMessage) *int {
	n, ok := readCount(raw)
	if !ok || n > maxBound {
		return nil
	}
	return &n
}

// readCount reads a whole number from 0 to maxBound (possibly written as a
// float or a numeric string).
func readCount(raw json.RawMessage) (int, bool) {
	s, ok := readScalar(raw)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f > maxBound {
		return 0, false
	}
	return int(f), true
}

// normalizeBounds makes a multi-select's bounds satisfiable.
func normalizeBounds(v *Variable) {
	if !v.Multiple {
		return
	}
	if v.Max != nil && *v.Max == 0 {
		v.Max = nil
	}
	if v.Min != nil && v.Max != nil && *v.Min > *v.Max {
		v.Min, v.Max = v.Max, v.Min
	}
	if v.Min != nil && *v.Min > len(v.Options) {
		n := len(v.Options)
		v.Min = &n
	}
}

func parseImages(raw json.RawMessage) []Image {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	imgs := make([]Image, 0, len(items))
	for _, it := range items {
		if s, ok := readScalar(it); ok {
			imgs = append(imgs, Image{Description: s})
			continue
		}
		var ri struct {
			Description json.RawMessage `json:"description"`
		}
		_ = json.Unmarshal(it, &ri)
		imgs = append(imgs, Image{Description: readString(ri.Description)})
	}
	return imgs
}

// isJTD reports whether members look like a bare JTD input contract.
func isJTD(ms []member) bool {
	return has(ms, "properties") || has(ms, "optionalProperties") || has(ms, "metadata")
}

// parseJTDVariables maps inputsJTD's textInputs properties to text variables:
// properties are required, optionalProperties optional with the default "".
func parseJTDVariables(jtd []member) []Variable {
	var text []member
	for _, container := range []string{"properties", "optionalProperties"} {
		props, ok := lookup(jtd, container)
		if !ok {
			continue
		}
		pm, _ := objectMembers(props)
		if ti, ok := lookup(pm, "textInputs"); ok {
			text, _ = objectMembers(ti)
			break
		}
	}
	var vars []Variable
	for _, container := range []string{"properties", "optionalProperties"} {
		props, ok := lookup(text, container)
		if !ok {
			continue
		}
		members, _ := objectMembers(props)
		for _, m := range members {
			if slicesContainsKey(vars, m.key) {
				continue
			}
			vars = append(vars, jtdVariable(m, container == "optionalProperties"))
		}
	}
	return vars
}

func slicesContainsKey(vars []Variable, key string) bool {
	for _, v := range vars {
		if v.Key == key {
			return true
		}
	}
	return false
}

func jtdVariable(m member, optional bool) Variable {
	v := Variable{Key: m.key, Kind: KindText}
	var rp struct {
		Enum        json.RawMessage `json:"enum"`
		Description json.RawMessage `json:"description"`
		Elements    struct {
			Enum json.RawMessage `json:"enum"`
		} `json:"elements"`
		Metadata struct {
			Description   json.RawMessage `json:"description"`
			AllowEmpty    json.RawMessage `json:"allowEmpty"`
			DefaultValues json.RawMessage `json:"defaultValues"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(m.val, &rp)
	v.Description = readString(rp.Metadata.Description)
	if v.Description == "" {
		v.Description = readString(rp.Description)
	}
	if opts := readOptions(rp.Enum); len(opts) > 0 {
		v.Kind, v.Options = KindSelect, opts
		return v
	}
	if opts := readOptions(rp.Elements.Enum); len(opts) > 0 {
		v.Kind, v.Options, v.Multiple = KindSelect, opts, true
		return v
	}
	v.Defaults = readDefaults(rp.Metadata.DefaultValues)
	v.AllowEmpty = readBool(rp.Metadata.AllowEmpty)
	if optional && len(v.Defaults) == 0 {
		v.Optional, v.Defaults = true, []string{""}
	}
	return v
}
