package schema

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The property tests generate random configurations (as JSON, so that Parse
// is exercised too) and random inputs, valid and near-valid, and check that
// the generated schema, compiled by an independent validator, and Validate
// agree on every pair. The generator is seeded, so runs are deterministic.

const (
	propConfigs   = 600
	propInputsPer = 30
)

func TestPropertySchemaAgreesWithValidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260301, 42))
	var pairs, accepted, failures int
	for range propConfigs {
		rawCfg := randomConfig(rng)
		cfg, err := Parse(rawCfg)
		if err != nil {
			t.Fatalf("Parse(%s): %v", rawCfg, err)
		}
		sch := compile(t, cfg.InputSchema(nil))
		checkExample(t, cfg)
		for range propInputsPer {
			in := validInputs(rng, cfg)
			if rng.IntN(100) < 60 {
				for range 1 + rng.IntN(2) {
					mutate(rng, cfg, in)
				}
			}
			doc := mustJSON(t, in)
			got, verr := cfg.Validate(doc)
			sok, serr := schemaAccepts(t, sch, doc)
			pairs++
			if verr == nil {
				accepted++
				checkNormalized(t, cfg, in, got.TextInputs, rawCfg, doc)
			}
			if (verr == nil) != sok {
				failures++
				t.Errorf("disagreement\nconfig: %s\ninputs: %s\nValidate: %v\nschema:   %v", rawCfg, doc, verr, serr)
				if failures > 10 {
					t.FailNow()
				}
			}
		}
	}
	t.Logf("%d config/input pairs checked: %d accepted, %d rejected by both", pairs, accepted, pairs-accepted)
	if accepted < pairs/4 || pairs-accepted < pairs/4 {
		t.Errorf("unbalanced generator: %d of %d accepted", accepted, pairs)
	}
}

// TestPropertyLenientMultiSelect checks the lenient string form of
// multi-selects separately: wherever the options make joined strings
// unambiguous (no comma in an option, no empty option), sending the
// ", "-joined string (or "," without spaces) gives the same outcome and the
// same normalized value as the canonical array.
func TestPropertyLenientMultiSelect(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var pairs int
	for range propConfigs {
		cfg, err := Parse(randomConfig(rng))
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			in := validInputs(rng, cfg)
			if rng.IntN(2) == 0 {
				mutate(rng, cfg, in)
			}
			text, _ := in["textInputs"].(map[string]any)
			lenientIn := cloneInputs(in)
			lenientText, _ := lenientIn["textInputs"].(map[string]any)
			changed := false
			for _, v := range cfg.Variables {
				items, isArr := text[v.Key].([]any)
				if !v.Multiple || !isArr || ambiguousJoin(v) {
					continue
				}
				strs := make([]string, 0, len(items))
				for _, it := range items {
					s, ok := it.(string)
					if !ok || strings.TrimSpace(s) != s || s == "" {
						strs = nil // not expressible as a joined string
						break
					}
					strs = append(strs, s)
				}
				if strs == nil {
					continue
				}
				sep := MultiSelectSeparator
				if rng.IntN(2) == 0 {
					sep = ","
				}
				lenientText[v.Key] = strings.Join(strs, sep)
				changed = true
			}
			if !changed {
				continue
			}
			pairs++
			a, aerr := cfg.Validate(mustJSON(t, in))
			b, berr := cfg.Validate(mustJSON(t, lenientIn))
			if (aerr == nil) != (berr == nil) || (aerr == nil && !mapsEqual(a.TextInputs, b.TextInputs)) {
				t.Errorf("array and string forms differ\narray:  %s -> %v %v\nstring: %s -> %v %v",
					mustJSON(t, in), a.TextInputs, aerr, mustJSON(t, lenientIn), b.TextInputs, berr)
			}
		}
	}
	t.Logf("%d array/string pairs checked", pairs)
	if pairs < 500 {
		t.Errorf("only %d pairs", pairs)
	}
}

// ambiguousJoin reports whether joined strings of v's options can be read in
// more than one way: an option contains a comma, or is "" (the joined form of
// both [] and [""]).
func ambiguousJoin(v Variable) bool {
	for _, o := range v.Options {
		if strings.Contains(o.Value, ",") || o.Value == "" {
			return true
		}
	}
	return false
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkNormalized checks Validate's output for accepted inputs: given values
// as sent (multi-selects joined), defaults for missing text, nothing for
// missing Optional text.
func checkNormalized(t *testing.T, cfg *Config, in map[string]any, out map[string]string, rawCfg, doc []byte) {
	t.Helper()
	text, _ := in["textInputs"].(map[string]any)
	want := map[string]string{}
	for _, v := range cfg.Variables {
		switch given := text[v.Key].(type) {
		case string:
			want[v.Key] = given
		case []any:
			s := make([]string, len(given))
			for i := range given {
				s[i] = given[i].(string)
			}
			want[v.Key] = strings.Join(s, MultiSelectSeparator)
		case nil:
			if d, ok := v.Default(); ok {
				want[v.Key] = d
			}
		}
	}
	if !mapsEqual(want, out) {
		t.Errorf("normalized textInputs = %v, want %v\nconfig: %s\ninputs: %s", out, want, rawCfg, doc)
	}
}

// ---- random configurations ----

var (
	keyPool = []string{"topic", "Tone", "tone", "my key", "ключ", "emoji🎉", "a.b", "x-y", "", `q"uote`,
		"Output_language", "customerType", "1st", "line\nbreak", "k", "Body_fat_percentage", "<tag>&"}
	optionPool = []string{"a", "b", "c", "Warm, friendly", "x, y", "Tone", "tone", "with space", "ünï", "",
		"1", "a,b", "Formal", "LinkedIn", "linkedin", "UPPER", "Sedentary (desk job, little exercise)"}
	labelPool = []string{"A", "Label", "LinkedIn", "b", "X (Twitter)", "Meta (Facebook & Instagram)", "ünï label", "", "Tone"}
	textPool  = []string{"hello", "ünïcødé ✓", "a\nb", " ", "0", "null", "<b>&</b>", "30 minutes", strings.Repeat("x", 300), "Warm, friendly"}
	descPool  = []string{"", "What the episode is about", "Pick 1 to 3", "Line one\nLine two | pipe", strings.Repeat("long ", 600)}
)

// ordered writes a JSON object with members in the given order.
func ordered(kv ...any) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv[i].(string))
		b.Write(k)
		b.WriteByte(':')
		switch v := kv[i+1].(type) {
		case json.RawMessage:
			b.Write(v)
		default:
			j, _ := json.Marshal(v)
			b.Write(j)
		}
	}
	b.WriteByte('}')
	return b.String()
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

func randomConfig(rng *rand.Rand) json.RawMessage {
	keys := slices.Clone(keyPool)
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	nVars := rng.IntN(7)
	nImages := rng.IntN(4)
	if rng.IntN(10) == 0 {
		return randomJTD(rng, keys[:nVars], nImages)
	}
	var vars []any
	for _, k := range keys[:nVars] {
		var v string
		if rng.IntN(5) < 3 {
			v = randomTextVar(rng)
		} else {
			v = randomSelectVar(rng)
		}
		vars = append(vars, k, json.RawMessage(v))
	}
	var top []any
	if nVars > 0 || rng.IntN(2) == 0 {
		top = append(top, "variables", json.RawMessage(ordered(vars...)))
	}
	var imgs []any
	for range nImages {
		imgs = append(imgs, map[string]any{"description": pick(rng, descPool), "extra": 1})
	}
	switch rng.IntN(6) {
	case 0: // count only
		if nImages > 0 {
			top = append(top, "imageCount", nImages)
		}
	case 1: // a larger explicit count next to the list
		top = append(top, "images", imgs, "imageCount", float64(nImages+1))
	default:
		if imgs == nil {
			imgs = []any{}
		}
		top = append(top, "images", imgs)
	}
	top = append(top, "unknownTopLevel", true)
	return json.RawMessage(ordered(top...))
}

func randomTextVar(rng *rand.Rand) string {
	kv := []any{"type", pick(rng, []any{0, 0.0, "0", "TEXT"})}
	if d := pick(rng, descPool); d != "" || rng.IntN(2) == 0 {
		kv = append(kv, "description", d)
	}
	switch rng.IntN(5) {
	case 0:
		kv = append(kv, "defaultValues", []string{})
	case 1:
		kv = append(kv, "defaultValues", []string{pick(rng, textPool), "second"})
	case 2:
		kv = append(kv, "defaultValues", pick(rng, textPool))
	case 3:
		kv = append(kv, "defaultValues", []string{""})
	}
	if rng.IntN(3) == 0 {
		kv = append(kv, "allowEmpty", rng.IntN(2) == 0)
	}
	if rng.IntN(8) == 0 { // options on a text variable are ignored
		kv = append(kv, "options", map[string]string{"a": "A"})
	}
	return ordered(kv...)
}

func randomSelectVar(rng *rand.Rand) string {
	vals := slices.Clone(optionPool)
	rng.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	var opts []any
	for _, v := range vals[:1+rng.IntN(5)] {
		label := v
		if rng.IntN(3) > 0 {
			label = pick(rng, labelPool)
		}
		opts = append(opts, v, label)
	}
	kv := []any{"type", pick(rng, []any{2, 1, 2.0, "SELECT"}), "description", pick(rng, descPool),
		"options", json.RawMessage(ordered(opts...))}
	bound := func() any { return pick(rng, []any{0, 1, 2, 3, 5, 1.0, 2.0}) }
	switch rng.IntN(9) {
	case 0:
		kv = append(kv, "multiple", false)
	case 1:
		kv = append(kv, "multiple", nil)
	case 2, 3:
		kv = append(kv, "multiple", true)
	case 4:
		kv = append(kv, "multiple", map[string]any{})
	case 5:
		kv = append(kv, "multiple", map[string]any{"min": bound()})
	case 6:
		kv = append(kv, "multiple", map[string]any{"max": bound()})
	case 7:
		kv = append(kv, "multiple", map[string]any{"min": bound(), "max": bound()})
	}
	return ordered(kv...)
}

func randomJTD(rng *rand.Rand, keys []string, nImages int) json.RawMessage {
	var req, opt []any
	for _, k := range keys {
		prop := any(map[string]any{"type": "string"})
		switch rng.IntN(6) {
		case 0:
			prop = map[string]any{"enum": []string{"a", "b", "Warm, friendly"}}
		case 1:
			prop = map[string]any{"type": "string", "metadata": map[string]any{"allowEmpty": true, "description": "d"}}
		}
		if rng.IntN(2) == 0 {
			req = append(req, k, prop)
		} else {
			opt = append(opt, k, prop)
		}
	}
	jtd := ordered("properties", json.RawMessage(ordered("textInputs", json.RawMessage(ordered(
		"properties", json.RawMessage(ordered(req...)), "optionalProperties", json.RawMessage(ordered(opt...)))))),
		"metadata", map[string]any{"imageCount": nImages})
	return json.RawMessage(ordered("inputsJTD", json.RawMessage(jtd)))
}

// ---- random inputs ----

var (
	goodURLs = []string{"https://example.com/a.png", "http://localhost:8080/x?y=1#z", "https://ex.com",
		"https://a:/x", "https://例え.jp/画像.png", "https://cdn.example.com/p/a%20b.jpg?sig=a@b"}
	badURLs = []string{"ftp://x/y", "http://", "https:///path", "//example.com/a.png", "https://exa mple.com",
		"https://example.com:abc/", "http://[::1]/a.png", "https://user:pw@example.com/", "https://example.com/%zz",
		"HTTPS://EXAMPLE.COM/A.PNG", "https://example.com/\x01", "", "javascript:alert(1)", "http://a:1:2/",
		"http://%41.com/", "example.com/a.png", "https://example.com/a.png\n"}
	goodBase64 = []string{"QUJD", "QUJDRA==", "QUJDRA", "QUJDREU=", "QUJDREU", "data:image/png;base64,QUJD",
		"data:image/svg+xml;base64,QUJDRA==", "+/+/", pngBase64}
	badBase64 = []string{"", "Q", "QUJDR", "QUJ=", "QU==x", "QUJD\nRA==", "QUJD RA==", "data:image/png;base64,",
		"data:text/plain;base64,QUJD", "data:image/png,QUJD", "QUJD-_", "====", "QUJD=", "QUJDRA===",
		"data:image/;base64,QUJD", "DATA:image/png;base64,QUJD", "QUJDRA=="[:7]}
)

func randomImage(rng *rand.Rand) map[string]any {
	if rng.IntN(2) == 0 {
		return map[string]any{"type": "url", "url": pick(rng, goodURLs)}
	}
	return map[string]any{"type": "base64", "base64": pick(rng, goodBase64)}
}

// validInputs builds random canonical inputs that satisfy cfg.
func validInputs(rng *rand.Rand, cfg *Config) map[string]any {
	text := map[string]any{}
	for _, v := range cfg.Variables {
		switch {
		case v.Kind == KindText:
			if !v.Required() && rng.IntN(2) == 0 {
				continue
			}
			s := pick(rng, textPool)
			if v.AllowEmpty && rng.IntN(3) == 0 {
				s = ""
			}
			text[v.Key] = s
		case !v.Multiple:
			text[v.Key] = pick(rng, v.Options).Value
		default:
			lo, hi := v.ItemBounds()
			if hi < 0 || hi > len(v.Options) {
				hi = len(v.Options)
			}
			n := lo + rng.IntN(hi-lo+1)
			perm := rng.Perm(len(v.Options))
			items := make([]any, n)
			for i := range items {
				items[i] = v.Options[perm[i]].Value
			}
			text[v.Key] = items
		}
	}
	in := map[string]any{}
	required := false
	for _, v := range cfg.Variables {
		required = required || v.Required()
	}
	if required || len(text) > 0 || rng.IntN(2) == 0 {
		in["textInputs"] = text
	}
	if n := len(cfg.Images); n > 0 {
		imgs := make([]any, n)
		for i := range imgs {
			imgs[i] = randomImage(rng)
		}
		in["imageInputs"] = imgs
	}
	return in
}

// mutate applies one random near-valid change, in canonical form (never a
// string for a multi-select, never null or [] for absent inputs).
func mutate(rng *rand.Rand, cfg *Config, in map[string]any) {
	text, _ := in["textInputs"].(map[string]any)
	if text == nil && rng.IntN(4) > 0 {
		text = map[string]any{}
		in["textInputs"] = text
	}
	imgs, _ := in["imageInputs"].([]any)
	switch rng.IntN(12) {
	case 0, 1, 2, 3: // a variable
		if len(cfg.Variables) == 0 || text == nil {
			break
		}
		mutateVariable(rng, pick(rng, cfg.Variables), text)
	case 4: // an unknown text key
		if text != nil {
			k := pick(rng, keyPool)
			if rng.IntN(2) == 0 {
				k = strings.ToUpper(k) + "_x"
			}
			text[k] = "value"
		}
	case 5: // an unknown top-level key
		in[pick(rng, []string{"foo", "runModel", "TextInputs", "images"})] = pick(rng, []any{"x", 1, map[string]any{}})
	case 6: // textInputs of the wrong type, or none
		if rng.IntN(3) == 0 {
			delete(in, "textInputs")
		} else {
			in["textInputs"] = pick(rng, []any{[]any{}, 1, "x", true})
		}
	case 7: // imageInputs of the wrong type or count
		switch {
		case len(cfg.Images) == 0:
			in["imageInputs"] = []any{randomImage(rng)}
		case rng.IntN(4) == 0:
			delete(in, "imageInputs")
		case rng.IntN(3) == 0:
			in["imageInputs"] = pick(rng, []any{map[string]any{}, 1, "https://example.com/a.png", nil})
		case rng.IntN(2) == 0 && len(imgs) > 0:
			in["imageInputs"] = imgs[:len(imgs)-1]
		default:
			in["imageInputs"] = append(imgs, randomImage(rng))
		}
	default: // one image
		if len(imgs) == 0 {
			break
		}
		i := rng.IntN(len(imgs))
		imgs[i] = badImage(rng)
	}
}

func badImage(rng *rand.Rand) any {
	switch rng.IntN(10) {
	case 0, 1, 2:
		return map[string]any{"type": "url", "url": pick(rng, badURLs)}
	case 3, 4, 5:
		return map[string]any{"type": "base64", "base64": pick(rng, badBase64)}
	case 6:
		return map[string]any{"type": pick(rng, []any{"URL", "file", 5, nil}), "url": "https://example.com/a.png"}
	case 7:
		img := randomImage(rng)
		img[pick(rng, []string{"alt", "url", "base64"})] = "https://example.com/a.png"
		return img
	case 8:
		return map[string]any{"type": pick(rng, []string{"url", "base64"}), "url": 5, "base64": 5}
	default:
		return pick(rng, []any{"https://example.com/a.png", nil, []any{}, map[string]any{}})
	}
}

func mutateVariable(rng *rand.Rand, v Variable, text map[string]any) {
	wrongType := func() any { return pick(rng, []any{5, true, nil, map[string]any{"a": 1}, 1.5}) }
	if rng.IntN(6) == 0 {
		delete(text, v.Key)
		return
	}
	switch {
	case v.Kind == KindText:
		switch rng.IntN(3) {
		case 0:
			text[v.Key] = ""
		case 1:
			text[v.Key] = wrongType()
		default:
			text[v.Key] = []any{"x"}
		}
	case !v.Multiple:
		o := pick(rng, v.Options)
		text[v.Key] = pick(rng, []any{"zzz", o.Label, strings.ToUpper(o.Value), strings.ToLower(o.Value),
			o.Value + " ", wrongType(), []any{o.Value}})
	default:
		items, _ := text[v.Key].([]any)
		switch rng.IntN(7) {
		case 0: // a duplicate
			if len(items) > 0 {
				items = append(items, items[rng.IntN(len(items))])
			}
		case 1: // fewer
			if len(items) > 0 {
				items = items[:rng.IntN(len(items))]
			}
		case 2: // more: every option, then maybe one more unknown
			items = items[:0]
			for _, o := range v.Options {
				items = append(items, o.Value)
			}
			if rng.IntN(2) == 0 {
				items = append(items, "zzz")
			}
		case 3: // an unknown or label item
			items = append(items, pick(rng, []any{"zzz", pick(rng, v.Options).Label}))
		case 4: // a non-string item
			items = append(items, pick(rng, []any{3, nil, true, []any{"a"}}))
		case 5:
			items = []any{}
		default: // not an array
			text[v.Key] = wrongType()
			return
		}
		text[v.Key] = items
	}
}

func cloneInputs(in map[string]any) map[string]any {
	var out map[string]any
	b, _ := json.Marshal(in)
	_ = json.Unmarshal(b, &out)
	return out
}

// TestRandomConfigsParse is a guard for the generator: some of its configs
// must produce every kind of variable.
func TestRandomConfigsParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	kinds := map[string]int{}
	for range 300 {
		cfg, err := Parse(randomConfig(rng))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range cfg.Variables {
			switch {
			case v.Kind == KindText && v.Optional:
				kinds["optional"]++
			case v.Kind == KindText && v.Required():
				kinds["required text"]++
			case v.Kind == KindText:
				kinds["text with default"]++
			case v.Multiple:
				lo, hi := v.ItemBounds()
				kinds["multi "+strconv.Itoa(lo)+".."+strconv.Itoa(hi)]++
			default:
				kinds["select"]++
			}
		}
		kinds["images "+strconv.Itoa(len(cfg.Images))]++
	}
	for _, k := range []string{"optional", "required text", "text with default", "select", "multi 1..-1", "multi 0..-1", "multi 2..3", "images 0", "images 3"} {
		if kinds[k] == 0 {
			t.Errorf("generator never produced %q: %v", k, kinds)
		}
	}
}
