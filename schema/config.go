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
	"fmt"
	"math"
	"slices"
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
	root, err := parseRoot(raw)
	if err != nil {
		return nil, err
	}
	cfg, counts, err := parseBody(root)
	if err != nil {
		return nil, err
	}
	if err := cfg.applyImageCounts(append(counts, root.field("imageCount"))); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseRoot reads the config's top object, unwrapping JSON strings and an
// inputMetadata wrapper.
func parseRoot(raw json.RawMessage) (jvalue, error) {
	root, err := parseJSON(raw)
	if err != nil {
		return jvalue{}, fmt.Errorf("prompt config is not valid JSON: %v", err)
	}
	root, err = unwrapObject(root, "prompt config")
	if err != nil {
		return jvalue{}, err
	}
	if inner, ok := root.get("inputMetadata"); ok && !has(root, "variables") && !has(root, "images") {
		if m, err := unwrapObject(inner, "inputMetadata"); err == nil {
			root = m
		}
	}
	return root, nil
}

// parseBody reads the variables and images of either format, and the
// explicit image counts found on the way (the largest of them and
// len(images) wins).
func parseBody(root jvalue) (cfg *Config, counts []jvalue, err error) {
	cfg = &Config{}
	vars, hasVars := root.get("variables")
	imgs, hasImgs := root.get("images")
	if hasVars || hasImgs {
		if hasVars {
			cfg.Variables = parseVariables(vars)
		}
		if imgs.kind == jNumber || imgs.kind == jString {
			counts = append(counts, imgs) // "images": 2 read as a count
		} else {
			cfg.Images = parseImages(imgs)
		}
		return cfg, counts, nil
	}
	jtd, legacy := root, false
	if j, ok := root.get("inputsJTD"); ok && !j.isNull() {
		if jtd, err = unwrapObject(j, "inputsJTD"); err != nil {
			return nil, nil, err
		}
		legacy = true
	}
	if legacy || isJTD(jtd) {
		cfg.Legacy = true
		cfg.Variables = parseJTDVariables(jtd)
		counts = append(counts, jtd.field("metadata").field("imageCount"))
		if legacy {
			counts = append(counts, jtd.field("imageCount"))
		}
	}
	return cfg, counts, nil
}

// applyImageCounts grows the images to the largest explicit count.
func (cfg *Config) applyImageCounts(counts []jvalue) error {
	for _, n := range counts {
		if n.isNull() {
			continue
		}
		count, ok := readCount(n)
		if !ok || count > MaxImageCount {
			return fmt.Errorf("prompt config: imageCount must be a whole number from 0 to %d, got %s", MaxImageCount, n.describe())
		}
		for len(cfg.Images) < count {
			cfg.Images = append(cfg.Images, Image{})
		}
	}
	return nil
}

// unwrapObject returns v, which must be a JSON object or a JSON string
// containing one (up to maxUnwrap times).
func unwrapObject(v jvalue, what string) (jvalue, error) {
	for range maxUnwrap {
		if v.kind != jString {
			break
		}
		inner, err := parseJSON([]byte(v.str))
		if err != nil {
			return jvalue{}, fmt.Errorf("%s is a string that is not valid JSON: %v", what, err)
		}
		v = inner
	}
	switch v.kind {
	case jObject:
		return v, nil
	case jString:
		return jvalue{}, fmt.Errorf("%s is a JSON string nested too deeply", what)
	}
	return jvalue{}, fmt.Errorf("%s must be a JSON object, got %s", what, v.describe())
}

func has(v jvalue, key string) bool {
	_, ok := v.get(key)
	return ok
}

func parseVariables(vars jvalue) []Variable {
	if vars.kind != jObject {
		return nil
	}
	members := vars.ordered()
	out := make([]Variable, 0, len(members))
	for _, m := range members {
		v := Variable{Key: m.key, Kind: KindText}
		rv := m.val
		if rv.kind != jObject {
			out = append(out, v) // not an object: a plain text input
			continue
		}
		v.Description = readString(rv.field("description"))
		v.Options = readOptions(rv.field("options"))
		if !isTextType(rv.field("type")) && len(v.Options) > 0 {
			v.Kind = KindSelect
			v.Multiple, v.Min, v.Max = readMultiple(rv.field("multiple"))
			normalizeBounds(&v)
		} else {
			v.Options = nil
			v.Defaults = readDefaults(rv.field("defaultValues"))
			v.AllowEmpty = readBool(rv.field("allowEmpty")) || (len(v.Defaults) > 0 && v.Defaults[0] == "")
		}
		out = append(out, v)
	}
	return out
}

// isTextType reports whether a variable's type says TEXT (0).
func isTextType(t jvalue) bool {
	s := t.str
	switch t.kind {
	case jString:
		s = strings.TrimSpace(s)
		if strings.EqualFold(s, "text") {
			return true
		}
	case jNumber:
	default:
		return false
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == 0
}

func readString(v jvalue) string {
	if v.kind != jString {
		return ""
	}
	return v.str
}

func readBool(v jvalue) bool {
	switch v.kind {
	case jBool:
		return v.str == "true"
	case jString:
		return strings.EqualFold(strings.TrimSpace(v.str), "true")
	}
	return false
}

// readScalar returns a string, or the JSON text of a number or boolean.
func readScalar(v jvalue) (string, bool) {
	switch v.kind {
	case jString, jNumber, jBool:
		return v.str, true
	}
	return "", false
}

func readDefaults(v jvalue) []string {
	if s, ok := readScalar(v); ok {
		return []string{s}
	}
	var out []string
	for _, el := range v.elems() {
		if s, ok := readScalar(el.val); ok {
			out = append(out, s)
		}
	}
	return out
}

// readOptions reads an options object (value -> label) in document order, or
// an array of values.
func readOptions(v jvalue) []Option {
	switch v.kind {
	case jObject:
		members := v.ordered()
		opts := make([]Option, 0, len(members))
		for _, m := range members {
			label, _ := readScalar(m.val)
			if label == "" {
				label = m.key
			}
			opts = append(opts, Option{Value: m.key, Label: label})
		}
		return opts
	case jArray:
		var opts []Option
		for _, el := range v.elems() {
			s, ok := readScalar(el.val)
			if ok && !slices.ContainsFunc(opts, func(o Option) bool { return o.Value == s }) {
				opts = append(opts, Option{Value: s, Label: s})
			}
		}
		return opts
	}
	return nil
}

func readMultiple(v jvalue) (multi bool, lo, hi *int) {
	if v.kind == jObject {
		if n, ok := v.get("min"); ok {
			lo = readBound(n)
		}
		if n, ok := v.get("max"); ok {
			hi = readBound(n)
		}
		return true, lo, hi
	}
	return readBool(v), nil, nil
}

// readBound reads a non-negative whole number (possibly a float or a numeric
// string); anything else is nil.
func readBound(v jvalue) *int {
	n, ok := readCount(v)
	if !ok {
		return nil
	}
	return &n
}

// readCount reads a whole number from 0 to maxBound (possibly written as a
// float or a numeric string).
func readCount(v jvalue) (int, bool) {
	if v.kind != jNumber && v.kind != jString {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v.str), 64)
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

func parseImages(v jvalue) []Image {
	imgs := make([]Image, 0, len(v.elems()))
	for _, el := range v.elems() {
		if s, ok := readScalar(el.val); ok {
			imgs = append(imgs, Image{Description: s})
			continue
		}
		imgs = append(imgs, Image{Description: readString(el.val.field("description"))})
	}
	return imgs
}

// isJTD reports whether an object looks like a bare JTD input contract.
func isJTD(v jvalue) bool {
	return has(v, "properties") || has(v, "optionalProperties") || has(v, "metadata")
}

// parseJTDVariables maps inputsJTD's textInputs properties to variables:
// properties are required, optionalProperties Optional.
func parseJTDVariables(jtd jvalue) []Variable {
	var text jvalue
	for _, container := range []string{"properties", "optionalProperties"} {
		if ti, ok := jtd.field(container).get("textInputs"); ok {
			text = ti
			break
		}
	}
	var vars []Variable
	for _, container := range []string{"properties", "optionalProperties"} {
		props := text.field(container)
		if props.kind != jObject {
			continue
		}
		for _, m := range props.ordered() {
			if !slices.ContainsFunc(vars, func(v Variable) bool { return v.Key == m.key }) {
				vars = append(vars, jtdVariable(m, container == "optionalProperties"))
			}
		}
	}
	return vars
}

func jtdVariable(m jmember, optional bool) Variable {
	v := Variable{Key: m.key, Kind: KindText}
	md := m.val.field("metadata")
	v.Description = readString(md.field("description"))
	if v.Description == "" {
		v.Description = readString(m.val.field("description"))
	}
	if opts := readOptions(m.val.field("enum")); len(opts) > 0 && m.val.field("enum").kind == jArray {
		v.Kind, v.Options = KindSelect, opts
		return v
	}
	if opts := readOptions(m.val.field("elements").field("enum")); len(opts) > 0 && m.val.field("elements").field("enum").kind == jArray {
		v.Kind, v.Options, v.Multiple = KindSelect, opts, true
		return v
	}
	v.Defaults = readDefaults(md.field("defaultValues"))
	v.AllowEmpty = readBool(md.field("allowEmpty"))
	if optional && len(v.Defaults) == 0 {
		v.Optional, v.Defaults = true, []string{""}
	}
	return v
}
