package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bpmcp/bpmcp/bpapi"
)

// MaxImageBytes bounds the decoded size of one Base64 image.
const MaxImageBytes = 20 << 20

var (
	urlRE        = regexp.MustCompile(urlPattern)
	dataPrefixRE = regexp.MustCompile(`^data:image/[A-Za-z0-9.+-]+;base64,`)
)

// FieldError is one problem with one field of a run's inputs or run options.
type FieldError struct {
	// Field is the path of the field relative to the tool argument, e.g.
	// "textInputs.tone", `textInputs["my key"]`, "imageInputs[1].url" (indexes
	// count from 0) or "runOptions.size".
	Field string
	// Message says what is wrong and what to send instead.
	Message string
}

// Error returns "field: message".
func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists every problem found in a run's inputs or options.
type ValidationError struct {
	Errors []FieldError
}

// Error joins the field errors with "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// maxFieldErrors bounds the problems listed in one ValidationError; more are
// summarized in a last entry, so that a pathological input cannot produce a
// huge message.
const maxFieldErrors = 100

// collector gathers field errors.
type collector struct {
	errs    []FieldError
	dropped int
}

func (c *collector) add(field, format string, args ...any) {
	if len(c.errs) >= maxFieldErrors {
		c.dropped++
		return
	}
	c.errs = append(c.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// count is the number of problems found so far.
func (c *collector) count() int { return len(c.errs) + c.dropped }

func (c *collector) err() error {
	if c.count() == 0 {
		return nil
	}
	errs := c.errs
	if c.dropped > 0 {
		errs = append(errs, FieldError{Message: fmt.Sprintf("and %d more problems", c.dropped)})
	}
	return &ValidationError{Errors: errs}
}

// Validate checks a run's `inputs` argument (raw JSON; null or empty means {})
// against the config and returns the inputs to send: text values as strings
// with defaults filled in, multi-selects joined with [MultiSelectSeparator] in
// the order given, images as given. On failure the error is a
// [*ValidationError] listing every problem, and the returned inputs are empty.
//
// Validate accepts exactly what [Config.InputSchema] accepts, except that it
// is more lenient in these documented ways (the schema asks for the canonical
// form):
//
//   - a multi-select may be a single string: one option value, or option values
//     joined with ", " (split by matching the known values, so values that
//     contain commas work);
//   - textInputs or imageInputs may be null, meaning absent, and imageInputs
//     may be [] for a prompt that takes no images;
//   - inputs may be a JSON string containing the JSON object.
//
// It is stricter in one: a Base64 image may not exceed [MaxImageBytes] once
// decoded.
func (c *Config) Validate(inputs json.RawMessage) (bpapi.RunInputs, error) {
	var errs collector
	root, ok := decodeInputs(inputs, &errs)
	if !ok {
		return bpapi.RunInputs{}, errs.err()
	}
	return c.validate(root)
}

// ValidateInputs is Validate for inputs parsed by ParseInputs.
func (c *Config) ValidateInputs(in *Inputs) (bpapi.RunInputs, error) {
	if in == nil {
		return c.Validate(nil)
	}
	return c.validate(in.root)
}

func (c *Config) validate(root jvalue) (bpapi.RunInputs, error) {
	if c == nil {
		c = &Config{}
	}
	var errs collector
	out := bpapi.RunInputs{TextInputs: make(map[string]string, len(c.Variables))}
	for _, k := range root.otherKeys(func(k string) bool { return k == "textInputs" || k == "imageInputs" }) {
		valid := []string{"textInputs"}
		if len(c.Images) > 0 {
			valid = append(valid, "imageInputs")
		}
		hint := ""
		if k == "runModel" || k == "runOptions" || k == "promptVersionId" {
			hint = " (" + k + " is a separate argument of the run, next to inputs)"
		}
		errs.add(k, "unknown key%s; inputs takes only %s%s", didYouMean(k, valid), quoteList(valid), hint)
	}
	text, _ := root.get("textInputs")
	c.validateText(text, out.TextInputs, &errs)
	images, _ := root.get("imageInputs")
	out.ImageInputs = c.validateImages(images, &errs)
	if err := errs.err(); err != nil {
		return bpapi.RunInputs{}, err
	}
	return out, nil
}

// decodeInputs reads the inputs object.
func decodeInputs(raw json.RawMessage, errs *collector) (jvalue, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return jvalue{kind: jObject}, true
	}
	v, err := parseJSON(raw)
	if err != nil {
		errs.add("inputs", "is not valid JSON (%v)", err)
		return jvalue{}, false
	}
	if v.kind == jString && strings.HasPrefix(strings.TrimSpace(v.str), "{") {
		// lenient: the object encoded as a JSON string
		if inner, err := parseJSON([]byte(v.str)); err == nil {
			v = inner
		}
	}
	switch v.kind {
	case jNull:
		return jvalue{kind: jObject}, true
	case jObject:
		return v, true
	}
	errs.add("inputs", `must be an object {"textInputs": {...}}, got %s`, v.describe())
	return jvalue{}, false
}

func (c *Config) validateText(raw jvalue, out map[string]string, errs *collector) {
	switch raw.kind {
	case jObject, jInvalid, jNull:
	default:
		errs.add("textInputs", "must be an object mapping input keys to string values, got %s", raw.describe())
		return
	}
	for i := range c.Variables {
		v := &c.Variables[i]
		if c.Variable(v.Key) != v {
			continue // a duplicate key: the first one rules
		}
		val, present := raw.get(v.Key)
		if s, ok := validateVariable(v, val, present, errs); ok {
			out[v.Key] = s
		}
	}
	c.reportUnknownKeys(raw, errs)
}

// validateVariable checks one variable's value (present says whether the
// key was given) and returns what to send; ok is false when nothing is
// sent for it (left out, or a problem was reported).
func validateVariable(v *Variable, val jvalue, present bool, errs *collector) (string, bool) {
	field := textField(v.Key)
	switch {
	case !present && v.Kind == KindText:
		if d, ok := v.Default(); ok {
			return d, true
		}
		if v.Required() { // an Optional one is left out of the run
			errs.add(field, "required text input is missing%s", aboutVariable(v))
		}
		return "", false
	case !present:
		errs.add(field, "required select is missing; %s", choiceHint(v))
		return "", false
	case v.Kind == KindText:
		return validateTextValue(v, field, val, errs)
	case !v.Multiple:
		s, ok := val.str, val.kind == jString
		switch {
		case !ok:
			errs.add(field, "must be one option value as a string, got %s; %s", val.describe(), choiceHint(v))
		case !hasOption(v, s):
			errs.add(field, "%s", badOption(v, s))
		default:
			return s, true
		}
		return "", false
	}
	items, ok := multiItems(v, field, val, errs)
	return strings.Join(items, MultiSelectSeparator), ok
}

// validateTextValue checks the value of a text variable.
func validateTextValue(v *Variable, field string, val jvalue, errs *collector) (string, bool) {
	s, ok := val.str, val.kind == jString
	switch {
	case !ok:
		errs.add(field, "must be a string, got %s%s", val.describe(), stringHint(val))
	case s == "" && !v.AllowEmpty:
		if d, ok := v.Default(); ok {
			errs.add(field, "must not be empty; omit the key to use the default %s", quote(d))
		} else if !v.Required() {
			errs.add(field, "must not be empty; omit the key to leave this optional input out")
		} else {
			errs.add(field, "must not be empty%s", aboutVariable(v))
		}
	default:
		return s, true
	}
	return "", false
}

// reportUnknownKeys reports the text inputs the prompt does not take.
func (c *Config) reportUnknownKeys(raw jvalue, errs *collector) {
	var keys []string
	for i := range c.Variables {
		keys = append(keys, c.Variables[i].Key)
	}
	for _, k := range raw.otherKeys(func(k string) bool { return c.Variable(k) != nil }) {
		if len(keys) == 0 {
			errs.add(textField(k), "unknown key; this prompt takes no text inputs, send \"textInputs\": {}")
		} else {
			errs.add(textField(k), "unknown key%s; valid keys: %s", didYouMean(k, keys), quoteList(keys))
		}
	}
}

// multiItems reads and checks a multi-select value; ok is false when any
// problem was reported.
func multiItems(v *Variable, field string, val jvalue, errs *collector) ([]string, bool) {
	before := errs.count()
	var items []string
	switch val.kind {
	case jString:
		items = splitJoined(val.str, v.Options)
	case jArray:
		items = make([]string, len(val.members))
		for i, el := range val.members {
			if el.val.kind != jString {
				errs.add(field+"["+strconv.Itoa(i)+"]", "must be an option value as a string, got %s", el.val.describe())
				continue
			}
			items[i] = el.val.str
		}
		if errs.count() > before {
			return nil, false
		}
	default:
		errs.add(field, "must be an array of option values, got %s; %s", val.describe(), choiceHint(v))
		return nil, false
	}
	for i, it := range items {
		itemField := field + "[" + strconv.Itoa(i) + "]"
		if !hasOption(v, it) {
			errs.add(itemField, "%s", badOption(v, it))
		} else if j := slices.Index(items, it); j < i {
			errs.add(itemField, "%s is chosen twice (also at [%d]); list each option once", quote(it), j)
		}
	}
	lo, hi := v.ItemBounds()
	switch {
	case len(items) < lo:
		errs.add(field, "choose at least %s, got %d; %s", plural(lo, "option"), len(items), choiceHint(v))
	case hi >= 0 && len(items) > hi:
		errs.add(field, "choose at most %s, got %d", plural(hi, "option"), len(items))
	}
	return items, errs.count() == before
}

// splitJoined reads the lenient string form of a multi-select: one option
// value, or values joined with commas. It matches the known values, so a
// value that itself contains a comma is kept whole; when no split into known
// values exists it falls back to splitting on every comma (and the unknown
// pieces are reported by the caller).
func splitJoined(s string, opts []Option) []string {
	valid := make(map[string]bool, len(opts))
	for _, o := range opts {
		valid[o.Value] = true
	}
	if valid[s] {
		return []string{s}
	}
	if strings.TrimSpace(s) == "" {
		return []string{}
	}
	if strings.Count(s, ",") <= 256 {
		failed := map[int]bool{}
		if items, ok := segment(s, 0, valid, failed); ok {
			return items
		}
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// segment splits s[start:] at commas into known values, preferring the
// longest first piece; failed memoizes the starts that cannot be split.
func segment(s string, start int, valid map[string]bool, failed map[int]bool) ([]string, bool) {
	if failed[start] {
		return nil, false
	}
	for end := len(s); end > start; {
		piece := s[start:end]
		match := ""
		if valid[piece] {
			match = piece
		} else if t := strings.TrimSpace(piece); valid[t] {
			match = t
		}
		if match != "" {
			if end == len(s) {
				return []string{match}, true
			}
			if rest, ok := segment(s, end+1, valid, failed); ok {
				return append([]string{match}, rest...), true
			}
		}
		end = strings.LastIndexByte(s[start:end], ',')
		if end < 0 {
			break
		}
		end += start
	}
	failed[start] = true
	return nil, false
}

func hasOption(v *Variable, s string) bool {
	for _, o := range v.Options {
		if o.Value == s {
			return true
		}
	}
	return false
}

// badOption explains why s is not an option of v and what to send instead.
func badOption(v *Variable, s string) string {
	for _, o := range v.Options {
		if o.Label == s && o.Label != o.Value {
			return fmt.Sprintf("use the value %s, not the label %s", quote(o.Value), quote(s))
		}
	}
	for _, o := range v.Options {
		if strings.EqualFold(o.Value, s) {
			return fmt.Sprintf("values are case-sensitive: use %s, not %s", quote(o.Value), quote(s))
		}
	}
	for _, o := range v.Options {
		if strings.EqualFold(o.Label, s) {
			return fmt.Sprintf("use the value %s, not the label %s", quote(o.Value), quote(s))
		}
	}
	return fmt.Sprintf("must be one of %s; got %s", optionList(v.Options), quote(s))
}

// choiceHint says what a select takes.
func choiceHint(v *Variable) string {
	if !v.Multiple {
		return "choose one of " + optionList(v.Options)
	}
	lo, hi := v.ItemBounds()
	n := fmt.Sprintf("at least %d", lo)
	switch {
	case hi == lo:
		n = fmt.Sprintf("exactly %d", lo)
	case hi >= 0:
		n = fmt.Sprintf("%d to %d", lo, hi)
	}
	return fmt.Sprintf("send an array of %s of %s", n, optionList(v.Options))
}

// aboutVariable returns " (description)" for error messages.
func aboutVariable(v *Variable) string {
	d := strings.TrimSpace(v.Description)
	if d == "" {
		return ""
	}
	return " (" + truncate(d, 200) + ")"
}

// stringHint suggests the string form of a number or boolean.
func stringHint(v jvalue) string {
	if v.kind != jNumber && v.kind != jBool {
		return ""
	}
	return fmt.Sprintf("; send it as %s", quote(v.str))
}

func (c *Config) validateImages(raw jvalue, errs *collector) []bpapi.ImageInput {
	n := len(c.Images)
	items := raw.elems()
	if !raw.isNull() && raw.kind != jArray {
		if n == 0 {
			errs.add("imageInputs", "unknown key; this prompt takes no images, leave imageInputs out")
		} else {
			errs.add("imageInputs", "must be an array of exactly %s (%s), got %s", plural(n, "image"), imageList(c.Images), raw.describe())
		}
		return nil
	}
	switch {
	case n == 0 && len(items) > 0:
		errs.add("imageInputs", "this prompt takes no images, got %d; leave imageInputs out", len(items))
		return nil
	case len(items) != n:
		errs.add("imageInputs", "expected exactly %s (%s), got %d", plural(n, "image"), imageList(c.Images), len(items))
	}
	var out []bpapi.ImageInput
	for i, it := range items {
		if img, ok := validateImage("imageInputs["+strconv.Itoa(i)+"]", it.val, errs); ok {
			out = append(out, img)
		}
	}
	return out
}

// validateImage checks one {type:url,url} or {type:base64,base64} item.
func validateImage(field string, raw jvalue, errs *collector) (bpapi.ImageInput, bool) {
	const shape = `{"type":"url","url":"https://..."} or {"type":"base64","base64":"..."}`
	if raw.kind != jObject {
		errs.add(field, "must be an object %s, got %s", shape, raw.describe())
		return bpapi.ImageInput{}, false
	}
	t, _ := raw.get("type")
	typ := t.str
	if t.kind != jString || (typ != "url" && typ != "base64") {
		errs.add(field+".type", `must be "url" or "base64", got %s; each image is %s`, t.describe(), shape)
		return bpapi.ImageInput{}, false
	}
	before := errs.count()
	for _, k := range raw.otherKeys(func(k string) bool { return k == "type" || k == typ }) {
		errs.add(field+"."+k, "unknown key for a %s image; it takes only \"type\" and %s", typ, quote(typ))
	}
	val, present := raw.get(typ)
	s, isStr := val.str, val.kind == jString
	var msg string
	switch {
	case !present:
		msg = "is required for a " + typ + " image"
	case !isStr:
		msg = "must be a string, got " + val.describe()
	case typ == "url":
		msg = checkURL(s)
	default:
		msg = checkBase64(s)
	}
	if msg != "" {
		errs.add(field+"."+typ, "%s", msg)
	}
	if errs.count() > before {
		return bpapi.ImageInput{}, false
	}
	if typ == "url" {
		return bpapi.ImageInput{Type: "url", URL: s}, true
	}
	return bpapi.ImageInput{Type: "base64", Base64: s}, true
}

// checkURL returns why s is not an acceptable image URL, or "".
func checkURL(s string) string {
	switch {
	case s == "":
		return "must not be empty; give an absolute http(s) URL"
	case !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://"):
		return fmt.Sprintf("must be an absolute URL starting with https:// or http://, got %s", quote(s))
	case !urlRE.MatchString(s):
		return fmt.Sprintf("must be an http(s) URL with a host name and no spaces, got %s", quote(s))
	}
	if _, err := url.Parse(s); err != nil {
		return fmt.Sprintf("is not a valid URL (%v)", unwrapURLError(err))
	}
	return ""
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// checkBase64 returns why s is not acceptable Base64 image data, or "". It
// accepts what base64.StdEncoding or base64.RawStdEncoding decode, without
// line breaks, after an optional data:image/<format>;base64, prefix.
func checkBase64(s string) string {
	payload := s
	if strings.HasPrefix(s, "data:") {
		loc := dataPrefixRE.FindStringIndex(s)
		if loc == nil {
			return "a data URI must start with data:image/<format>;base64, (e.g. data:image/png;base64,...)"
		}
		payload = s[loc[1]:]
	}
	if payload == "" {
		return "must not be empty; give the image's Base64 data"
	}
	body := strings.TrimRight(payload, "=")
	pad := len(payload) - len(body)
	if len(body)/4*3 > MaxImageBytes {
		return fmt.Sprintf("image is too large: at most %d MiB decoded; give a URL instead", MaxImageBytes>>20)
	}
	for i := 0; i < len(body); i++ {
		if !isBase64Char(body[i]) {
			what := "character " + strconv.QuoteRune(rune(body[i]))
			if body[i] == '\n' || body[i] == '\r' {
				what = "line break"
			}
			return fmt.Sprintf("is not valid Base64: unexpected %s at offset %d (standard alphabet A-Z a-z 0-9 + /, no line breaks)", what, len(s)-len(payload)+i)
		}
	}
	switch rem := len(body) % 4; {
	case rem == 1, pad > 0 && pad != 4-rem, pad > 2:
		return "is not valid Base64: wrong length or padding"
	}
	return ""
}

func isBase64Char(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '+' || b == '/'
}

// ValidateRunOptions checks run options against model's available options:
// every key must be one of the model's and every value among its values. A
// nil model accepts anything (the API decides). The error is a
// [*ValidationError] naming each bad key.
func (c *Config) ValidateRunOptions(model *bpapi.Model, opts map[string]string) error {
	if model == nil || len(opts) == 0 {
		return nil
	}
	var errs collector
	avail := runOptions(model)
	var keys []string
	for _, ro := range avail {
		keys = append(keys, ro.Key)
	}
	for _, k := range sortedKeys(opts) {
		field := "runOptions." + k
		i := slices.IndexFunc(avail, func(ro bpapi.RunOption) bool { return ro.Key == k })
		switch {
		case i >= 0 && slices.Contains(avail[i].Options, opts[k]):
		case i >= 0:
			errs.add(field, "must be one of %s; got %s", quoteList(avail[i].Options), quote(opts[k]))
		case len(keys) == 0:
			errs.add(field, "model %s takes no run options; leave runOptions out", model.Model)
		default:
			errs.add(field, "model %s has no run option %s%s; valid keys: %s", model.Model, quote(k), didYouMean(k, keys), quoteList(keys))
		}
	}
	return errs.err()
}

// textField returns the field path of a text input key.
func textField(key string) string {
	if isIdent(key) {
		return "textInputs." + key
	}
	return "textInputs[" + strconv.Quote(key) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || b == '_' || i > 0 && ('0' <= b && b <= '9' || b == '-')) {
			return false
		}
	}
	return true
}

// quote quotes a value for a message, cutting long ones.
func quote(s string) string {
	return strconv.Quote(truncate(s, 120))
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

// didYouMean suggests the closest valid key: `; did you mean "tone"?`.
func didYouMean(k string, valid []string) string {
	best, bestD := "", 3
	for _, v := range valid {
		d := editDistance(strings.ToLower(k), strings.ToLower(v), bestD)
		if d < bestD || (strings.EqualFold(k, v) && d == 0) {
			best, bestD = v, d
		}
	}
	if best == "" || best == k {
		return ""
	}
	return "; did you mean " + quote(best) + "?"
}

// editDistance is the Levenshtein distance of a and b, or limit when it is
// at least limit.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= limit || -d >= limit || len(ra) > 64 || len(rb) > 64 {
		return limit
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(rb)], limit)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
