package schema

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestUnusualConfigs uses prompt configurations written without looking at
// the examples: keys with spaces and unicode, option values with punctuation,
// huge descriptions, selects with a single option. The generated schema
// (through the independent validator) and Validate must both accept the valid
// inputs and reject missing required text, invalid select values, a wrong
// number of images and multi-select counts out of bounds.
func TestUnusualConfigs(t *testing.T) {
	huge := strings.Repeat("Describe the scene in detail — lighting, mood, colours. ", 200)
	tests := []struct {
		name    string
		config  string
		valid   []string
		invalid map[string]string // why -> inputs
	}{
		{
			name: "unicode keys and punctuated options",
			config: `{"variables":{
				"Nom du produit":{"type":0,"description":"Le nom exact"},
				"言語":{"type":2,"options":{"日本語":"Japanese","English":"英語"}},
				"emoji 🎨 style":{"type":2,"multiple":{"min":2,"max":3},"options":{"rock'n'roll":"Rock","R&B / soul":"R&B","hip-hop (90s)":"Hip-hop","k-pop!":"K-pop","lo-fi; chill":"Lo-fi"}}
			},"images":[{"description":"Façade"},{"description":"Intérieur"}]}`,
			valid: []string{
				`{"textInputs":{"Nom du produit":"Crème brûlée","言語":"日本語","emoji 🎨 style":["R&B / soul","lo-fi; chill"]},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				`{"textInputs":{"Nom du produit":"x","言語":"English","emoji 🎨 style":["k-pop!","rock'n'roll","hip-hop (90s)"]},"imageInputs":[{"type":"base64","base64":"QUJD"},` + img2 + `]}`,
			},
			invalid: map[string]string{
				"missing required text": `{"textInputs":{"言語":"日本語","emoji 🎨 style":["R&B / soul","k-pop!"]},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				"label for a select":    `{"textInputs":{"Nom du produit":"x","言語":"Japanese","emoji 🎨 style":["R&B / soul","k-pop!"]},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				"one image of two":      `{"textInputs":{"Nom du produit":"x","言語":"日本語","emoji 🎨 style":["R&B / soul","k-pop!"]},"imageInputs":[` + img1 + `]}`,
				"below min":             `{"textInputs":{"Nom du produit":"x","言語":"日本語","emoji 🎨 style":["k-pop!"]},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				"above max":             `{"textInputs":{"Nom du produit":"x","言語":"日本語","emoji 🎨 style":["k-pop!","rock'n'roll","hip-hop (90s)","R&B / soul"]},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				"unknown multi item":    `{"textInputs":{"Nom du produit":"x","言語":"日本語","emoji 🎨 style":["k-pop","rock'n'roll"]},"imageInputs":[` + img1 + `,` + img2 + `]}`,
			},
		},
		{
			name: "huge descriptions and single-option selects",
			config: `{"variables":{
				"scene":{"type":0,"description":` + quoteJSON(huge) + `},
				"only":{"type":2,"description":` + quoteJSON(huge) + `,"options":{"the-one":"The only choice"}},
				"only many":{"type":2,"multiple":true,"options":{"solo":"Solo"}},
				"note":{"type":0,"allowEmpty":true,"defaultValues":["none"]}
			},"images":[{"description":` + quoteJSON(huge) + `}],"imageCount":3}`,
			valid: []string{
				`{"textInputs":{"scene":"dusk","only":"the-one","only many":["solo"]},"imageInputs":[` + img1 + `,` + img1 + `,` + img2 + `]}`,
				`{"textInputs":{"scene":"dusk","only":"the-one","only many":["solo"],"note":""},"imageInputs":[` + img1 + `,` + img1 + `,` + img2 + `]}`,
			},
			invalid: map[string]string{
				"missing required text": `{"textInputs":{"only":"the-one","only many":["solo"]},"imageInputs":[` + img1 + `,` + img1 + `,` + img2 + `]}`,
				"invalid select value":  `{"textInputs":{"scene":"dusk","only":"The only choice","only many":["solo"]},"imageInputs":[` + img1 + `,` + img1 + `,` + img2 + `]}`,
				"one image of three":    `{"textInputs":{"scene":"dusk","only":"the-one","only many":["solo"]},"imageInputs":[` + img1 + `]}`,
				"no choice":             `{"textInputs":{"scene":"dusk","only":"the-one","only many":[]},"imageInputs":[` + img1 + `,` + img1 + `,` + img2 + `]}`,
				"same choice twice":     `{"textInputs":{"scene":"dusk","only":"the-one","only many":["solo","solo"]},"imageInputs":[` + img1 + `,` + img1 + `,` + img2 + `]}`,
			},
		},
		{
			name: "punctuated keys, CLI numbering, optional multi-select",
			config: `{"variables":{
				"user.email":{"type":0},
				"$price":{"type":"0","defaultValues":"9.99"},
				"a/b [x]":{"type":1,"options":{"":"(none)","a, b":"Both","a;b":"Either"}},
				"key \"quoted\"":{"type":1,"multiple":{"min":0,"max":1},"options":{"yes":"Yes","no":"No"}}
			},"images":[]}`,
			valid: []string{
				`{"textInputs":{"user.email":"a@b.c","a/b [x]":"","key \"quoted\"":[]}}`,
				`{"textInputs":{"user.email":"a@b.c","$price":"1","a/b [x]":"a, b","key \"quoted\"":["no"]}}`,
			},
			invalid: map[string]string{
				"missing required text": `{"textInputs":{"a/b [x]":"a;b","key \"quoted\"":[]}}`,
				"invalid select value":  `{"textInputs":{"user.email":"e","a/b [x]":"a","key \"quoted\"":[]}}`,
				"an image for none":     `{"textInputs":{"user.email":"e","a/b [x]":"a;b","key \"quoted\"":[]},"imageInputs":[` + img1 + `]}`,
				"above max":             `{"textInputs":{"user.email":"e","a/b [x]":"a;b","key \"quoted\"":["yes","no"]}}`,
				"missing select":        `{"textInputs":{"user.email":"e","a/b [x]":"a;b"}}`,
			},
		},
		{
			name: "legacy JTD, double encoded",
			config: quoteJSON(`{"inputsJTD":{"properties":{"textInputs":{"properties":{"Thème":{"type":"string","metadata":{"description":"Sujet"}},"format":{"enum":["court","long"]}},` +
				`"optionalProperties":{"public cible":{"type":"string"}}}},"metadata":{"imageCount":2}}}`),
			valid: []string{
				`{"textInputs":{"Thème":"x","format":"court"},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				`{"textInputs":{"Thème":"x","format":"long","public cible":"enfants"},"imageInputs":[` + img1 + `,` + img2 + `]}`,
			},
			invalid: map[string]string{
				"missing required text": `{"textInputs":{"format":"court"},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				"invalid enum value":    `{"textInputs":{"Thème":"x","format":"moyen"},"imageInputs":[` + img1 + `,` + img2 + `]}`,
				"three images":          `{"textInputs":{"Thème":"x","format":"court"},"imageInputs":[` + img1 + `,` + img2 + `,` + img1 + `]}`,
				"empty optional text":   `{"textInputs":{"Thème":"x","format":"court","public cible":""},"imageInputs":[` + img1 + `,` + img2 + `]}`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.config)
			s := cfg.InputSchema(nil)
			sch := compile(t, s)
			checkExample(t, cfg)
			for _, in := range tc.valid {
				if ok, err := schemaAccepts(t, sch, []byte(in)); !ok {
					t.Errorf("schema rejects valid %s: %v", in, err)
				}
				if _, err := cfg.Validate(json.RawMessage(in)); err != nil {
					t.Errorf("Validate rejects valid %s: %v", in, err)
				}
			}
			for why, in := range tc.invalid {
				if ok, _ := schemaAccepts(t, sch, []byte(in)); ok {
					t.Errorf("%s: schema accepts %s", why, in)
				}
				if _, err := cfg.Validate(json.RawMessage(in)); err == nil {
					t.Errorf("%s: Validate accepts %s", why, in)
				}
			}
			b, _ := json.Marshal(s)
			var generic any
			_ = json.Unmarshal(b, &generic)
			// The author's descriptions are cut; a select's generated list of
			// values and labels is appended whole.
			walkStrings(generic, func(key, val string) {
				if key != "description" {
					return
				}
				if n := utf8.RuneCountInString(val); n > maxDescriptionRunes+200 {
					t.Errorf("description of %d runes in the schema", n)
				}
				if strings.HasPrefix(val, huge[:100]) && !strings.Contains(val, "…") {
					t.Errorf("huge description not cut: %.80q", val)
				}
			})
		})
	}
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// walkStrings calls fn for every string member of a decoded JSON value.
func walkStrings(v any, fn func(key, val string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				fn(k, s)
			}
			walkStrings(x, fn)
		}
	case []any:
		for _, x := range v {
			walkStrings(x, fn)
		}
	}
}
