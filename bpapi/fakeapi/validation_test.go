package fakeapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	pngB64     = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	pngDataURL = "data:image/png;base64," + pngB64
)

// TestRunValidation covers every rule of reference §8.8 on the catalogue
// fixtures, accepting and rejecting.
func TestRunValidation(t *testing.T) {
	h := start(t, nil)
	type tc struct {
		name   string
		body   any
		status int
		msg    string
		check  func(t *testing.T, ri RunInfo)
	}
	text := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cold := text("company_name", "Northwind", "recipient_role", "CTO", "value_proposition", "We help")
	with := func(version string, t map[string]any, extra map[string]any) map[string]any {
		b := runBody(version, t)
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	expectText := func(key, want string) func(*testing.T, RunInfo) {
		return func(t *testing.T, ri RunInfo) {
			if got, ok := ri.TextInputs[key]; !ok || got != want {
				t.Fatalf("TextInputs[%s] = %q (%v), want %q", key, got, ok, want)
			}
		}
	}
	cases := []tc{
		// Text, all required (§11.1).
		{name: "text all given", body: runBody(coldEmailVersion, cold), status: 200},
		{name: "text missing", body: runBody(coldEmailVersion, text("company_name", "N", "recipient_role", "CTO")), status: 422, msg: "Missing required input: value_proposition"},
		{name: "text empty not allowed", body: runBody(coldEmailVersion, text("company_name", "N", "recipient_role", "CTO", "value_proposition", "")), status: 422, msg: "value_proposition"},
		{name: "text number", body: runBody(coldEmailVersion, map[string]any{"company_name": 42, "recipient_role": "CTO", "value_proposition": "x"}), status: 422, msg: "Input 'company_name' must be a string"},
		{name: "text boolean", body: runBody(coldEmailVersion, map[string]any{"company_name": true, "recipient_role": "CTO", "value_proposition": "x"}), status: 422, msg: "must be a string"},
		{name: "text array", body: runBody(coldEmailVersion, map[string]any{"company_name": []string{"a"}, "recipient_role": "CTO", "value_proposition": "x"}), status: 422, msg: "must be a string"},
		{name: "text null is missing", body: runBody(coldEmailVersion, map[string]any{"company_name": nil, "recipient_role": "CTO", "value_proposition": "x"}), status: 422, msg: "Missing required input: company_name"},
		{name: "unknown keys ignored", body: runBody(coldEmailVersion, map[string]any{"company_name": "N", "recipient_role": "CTO", "value_proposition": "x", "bogus": 1}), status: 200},
		{name: "unknown body fields ignored", body: with(coldEmailVersion, cold, map[string]any{"webhook": "x", "stream": true}), status: 200},
		{name: "inputs missing", body: map[string]any{"promptVersionId": startupVersion}, status: 422, msg: "inputs"},
		{name: "inputs not an object", body: map[string]any{"promptVersionId": startupVersion, "inputs": "x"}, status: 422, msg: "inputs"},
		{name: "textInputs not an object is {}", body: map[string]any{"promptVersionId": startupVersion, "inputs": map[string]any{"textInputs": "x"}}, status: 200},
		{name: "textInputs missing is {} (no-input prompt)", body: map[string]any{"promptVersionId": startupVersion, "inputs": map[string]any{}}, status: 200},
		{name: "textInputs missing, required text", body: map[string]any{"promptVersionId": coldEmailVersion, "inputs": map[string]any{}}, status: 422, msg: "Missing required input"},

		// Defaults (§11.2) and allowEmpty (§11.3).
		{name: "defaults fill optional text", body: runBody(podcastVersion, text("topic", "Sleep")), status: 200, check: expectText("episode_length", "30 minutes")},
		{name: "empty defaultValues is required", body: runBody(podcastVersion, nil), status: 422, msg: "Missing required input: topic"},
		{name: "empty string falls back to default", body: runBody(podcastVersion, text("topic", "Sleep", "Output_language", "")), status: 200, check: expectText("Output_language", "English")},
		{name: "given value beats default", body: runBody(podcastVersion, text("topic", "Sleep", "Output_language", "French")), status: 200, check: expectText("Output_language", "French")},
		{name: "allowEmpty accepts empty", body: runBody(releaseNotesVer, text("raw_notes", "- fix", "extra_context", "")), status: 200, check: expectText("extra_context", "")},
		{name: "allowEmpty still required", body: runBody(releaseNotesVer, text("raw_notes", "- fix")), status: 422, msg: "Missing required input: extra_context"},
		{name: "bare-string defaultValues", body: runBody(tripVersion, text("destination", "Madeira", "activities", "hiking")), status: 200, check: expectText("trip_length", "5 days")},

		// Single selects (§11.4).
		{name: "select valid", body: runBody(adHeadlineVersion, text("objective", "clicks", "platform", "linkedin")), status: 200, check: expectText("product", "A weekly meal-kit subscription for busy parents")},
		{name: "select label instead of key", body: runBody(adHeadlineVersion, text("objective", "clicks", "platform", "LinkedIn")), status: 422, msg: "Invalid option 'LinkedIn' for input 'platform'"},
		{name: "select missing", body: runBody(adHeadlineVersion, text("objective", "clicks")), status: 422, msg: "Missing required input: platform"},
		{name: "select empty", body: runBody(adHeadlineVersion, text("objective", "clicks", "platform", "")), status: 422, msg: "platform"},
		{name: "single select array", body: runBody(adHeadlineVersion, map[string]any{"objective": []string{"clicks"}, "platform": "meta"}), status: 422, msg: "must be a string"},
		{name: "single select comma joined", body: runBody(adHeadlineVersion, text("objective", "clicks, awareness", "platform", "meta")), status: 422, msg: "Invalid option"},
		{name: "single select key with comma", body: runBody(mealPlannerVersion, text("Activity_level", "Sedentary (desk job, little exercise)", "Dietary_restrictions", "vegan")), status: 200, check: expectText("Activity_level", "Sedentary (desk job, little exercise)")},
		{name: "CLI numbering type 1 select", body: runBody(replyVersion, text("customer_message", "hi", "tone", "Formal, Apologetic", "reply_channel", "fax")), status: 422, msg: "Invalid option 'fax' for input 'reply_channel'"},

		// Multi-selects (§11.5, §11.6, §8.9).
		{name: "multi array", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": []string{"x", "linkedin"}}), status: 200, check: func(t *testing.T, ri RunInfo) {
			if !slices.Equal(ri.Selections["channels"], []string{"x", "linkedin"}) || ri.TextInputs["channels"] != "x, linkedin" {
				t.Fatalf("selections %v text %q", ri.Selections, ri.TextInputs["channels"])
			}
		}},
		{name: "multi joined string", body: runBody(channelsVersion, text("message", "m", "channels", "x, linkedin")), status: 200, check: func(t *testing.T, ri RunInfo) {
			if !slices.Equal(ri.Selections["channels"], []string{"x", "linkedin"}) {
				t.Fatalf("selections %v", ri.Selections)
			}
		}},
		{name: "multi joined without spaces", body: runBody(channelsVersion, text("message", "m", "channels", "x,linkedin,threads")), status: 200},
		{name: "multi single string", body: runBody(channelsVersion, text("message", "m", "channels", "newsletter")), status: 200},
		{name: "multi empty array below min", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": []string{}}), status: 422, msg: "at least 1"},
		{name: "multi empty string below min", body: runBody(channelsVersion, text("message", "m", "channels", "")), status: 422, msg: "at least 1"},
		{name: "multi above max", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": []string{"x", "linkedin", "threads", "instagram"}}), status: 422, msg: "at most 3"},
		{name: "multi above max joined", body: runBody(channelsVersion, text("message", "m", "channels", "x, linkedin, threads, instagram")), status: 422, msg: "at most 3"},
		{name: "multi unknown option", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": []string{"x", "fax"}}), status: 422, msg: "Invalid option 'fax' for input 'channels'"},
		{name: "multi unknown option joined", body: runBody(channelsVersion, text("message", "m", "channels", "x, fax")), status: 422, msg: "Invalid option 'fax'"},
		{name: "multi duplicate", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": []string{"x", "x"}}), status: 422, msg: "Duplicate option 'x'"},
		{name: "multi non-string items", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": []any{"x", 3}}), status: 422, msg: "list of strings"},
		{name: "multi number", body: runBody(channelsVersion, map[string]any{"message": "m", "channels": 3}), status: 422, msg: "must be a string"},
		{name: "multi missing", body: runBody(channelsVersion, text("message", "m")), status: 422, msg: "Missing required input: channels"},
		{name: "multiple true needs one", body: runBody(mealPlannerVersion, map[string]any{"Activity_level": "Moderate (exercise 3-5 days/week)", "Dietary_restrictions": []string{}}), status: 422, msg: "at least 1"},
		{name: "multiple true unbounded", body: runBody(mealPlannerVersion, map[string]any{"Activity_level": "Moderate (exercise 3-5 days/week)", "Dietary_restrictions": "vegetarian, vegan, gluten-free, dairy-free, nut-free, halal"}), status: 200},
		{name: "comma inside option key re-joined", body: runBody(replyVersion, text("customer_message", "hi", "tone", "Warm, friendly, Short and direct", "reply_channel", "email")), status: 200, check: func(t *testing.T, ri RunInfo) {
			if !slices.Equal(ri.Selections["tone"], []string{"Warm, friendly", "Short and direct"}) {
				t.Fatalf("selections %q", ri.Selections["tone"])
			}
		}},
		{name: "comma inside option key, other order", body: runBody(replyVersion, text("customer_message", "hi", "tone", "Short and direct, Warm, friendly", "reply_channel", "email")), status: 200, check: func(t *testing.T, ri RunInfo) {
			if !slices.Equal(ri.Selections["tone"], []string{"Short and direct", "Warm, friendly"}) {
				t.Fatalf("selections %q", ri.Selections["tone"])
			}
		}},
		{name: "comma inside option key, array", body: runBody(replyVersion, map[string]any{"customer_message": "hi", "tone": []string{"Warm, friendly", "Formal"}, "reply_channel": "chat"}), status: 200},
		{name: "comma key piece alone is invalid", body: runBody(replyVersion, text("customer_message", "hi", "tone", "Warm, Formal", "reply_channel", "email")), status: 422, msg: "Invalid option 'Warm'"},
		{name: "min 2 with one key containing a comma", body: runBody(replyVersion, text("customer_message", "hi", "tone", "Warm, friendly", "reply_channel", "email")), status: 422, msg: "at least 2"},

		// Images (§11.7, §11.8, §11.10, legacy imageCount).
		{name: "one url image", body: runBody(rainyCafeVersion, nil, urlImage("https://example.com/me.jpg")), status: 200, check: expectText("outfit", "Oversized camel coat over a cream turtleneck")},
		{name: "http url image", body: runBody(rainyCafeVersion, nil, urlImage("http://example.com/me.jpg")), status: 200},
		{name: "image count short", body: runBody(photoBoothVersion, nil, urlImage("https://example.com/a.png")), status: 422, msg: "Image input count doesn't match the prompt's imageCount (expected 2, got 1)"},
		{name: "image count missing", body: runBody(photoBoothVersion, nil), status: 422, msg: "(expected 2, got 0)"},
		{name: "image count extra", body: runBody(coldEmailVersion, cold, urlImage("https://example.com/a.png")), status: 422, msg: "(expected 0, got 1)"},
		{name: "two images", body: runBody(photoBoothVersion, nil, urlImage("https://example.com/a.png"), map[string]any{"type": "base64", "base64": pngB64}), status: 200},
		{name: "three images", body: runBody(familyVersion, nil, urlImage("https://a.example/1.png"), urlImage("https://a.example/2.png"), urlImage("https://a.example/3.png")), status: 200},
		{name: "base64 data URL", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "base64", "base64": pngDataURL}), status: 200},
		{name: "base64 without padding", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "base64", "base64": strings.TrimRight(pngB64, "=")}), status: 200},
		{name: "base64 invalid", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "base64", "base64": "not base64!!"}), status: 422, msg: "Invalid image input 1"},
		{name: "base64 empty", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "base64", "base64": ""}), status: 422, msg: "Invalid image input 1"},
		{name: "data URL not an image", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "base64", "base64": "data:text/plain;base64,aGk="}), status: 422, msg: "Invalid image input 1"},
		{name: "url ftp", body: runBody(altTextVersion, text("focus", "chart"), urlImage("ftp://example.com/a.png")), status: 422, msg: "Invalid image input 1"},
		{name: "url relative", body: runBody(altTextVersion, text("focus", "chart"), urlImage("/a.png")), status: 422, msg: "Invalid image input 1"},
		{name: "url not a string", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "url", "url": 5}), status: 422, msg: "Invalid image input 1"},
		{name: "unknown image type", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"type": "file", "path": "/a.png"}), status: 422, msg: "Invalid image input 1"},
		{name: "image without type", body: runBody(altTextVersion, text("focus", "chart"), map[string]any{"url": "https://example.com/a.png"}), status: 422, msg: "Invalid image input 1"},
		{name: "image a bare string", body: runBody(altTextVersion, text("focus", "chart"), "https://example.com/a.png"), status: 422, msg: "Invalid image input 1"},
		{name: "second image invalid", body: runBody(photoBoothVersion, nil, urlImage("https://example.com/a.png"), urlImage("nope")), status: 422, msg: "Invalid image input 2"},
		{name: "imageInputs not an array", body: map[string]any{"promptVersionId": altTextVersion, "inputs": map[string]any{"textInputs": text("focus", "c"), "imageInputs": "x"}}, status: 422, msg: "imageInputs"},
		{name: "text prompt with image input", body: runBody(altTextVersion, text("focus", "chart"), urlImage("https://example.com/a.png")), status: 200},
		{name: "legacy JTD accepted", body: runBody(whiteboardVersion, text("meeting_topic", "Q3"), urlImage("https://example.com/w.jpg")), status: 200},
		{name: "legacy JTD required", body: runBody(whiteboardVersion, text("audience", "execs"), urlImage("https://example.com/w.jpg")), status: 422, msg: "Missing required input: meeting_topic"},
		{name: "legacy JTD optional empty is left out", body: runBody(whiteboardVersion, text("meeting_topic", "Q3", "audience", ""), urlImage("https://example.com/w.jpg")), status: 200, check: func(t *testing.T, ri RunInfo) {
			if _, ok := ri.TextInputs["audience"]; ok || ri.TextInputs["meeting_topic"] != "Q3" {
				t.Fatalf("inputs %v", ri.TextInputs)
			}
		}},
		{name: "legacy JTD imageCount", body: runBody(whiteboardVersion, text("meeting_topic", "Q3")), status: 422, msg: "(expected 1, got 0)"},
		{name: "older version lacks an input", body: runBody(productOldVersion, text("product_name", "Boots", "key_features", "dry")), status: 200},
		{name: "latest version requires it", body: runBody(productVersion, text("product_name", "Boots", "key_features", "dry")), status: 422, msg: "target_audience"},

		// runModel and runOptions (§10).
		{name: "default options recorded", body: runBody(adHeadlineVersion, text("objective", "clicks", "platform", "meta")), status: 200, check: func(t *testing.T, ri RunInfo) {
			if ri.Model != "gpt-5.2" || ri.RunOptions["reasoningEffort"] != "none" {
				t.Fatalf("model %s options %v", ri.Model, ri.RunOptions)
			}
		}},
		{name: "valid option override", body: with(adHeadlineVersion, text("objective", "clicks", "platform", "meta"), map[string]any{"runOptions": map[string]any{"reasoningEffort": "xhigh"}}), status: 200, check: func(t *testing.T, ri RunInfo) {
			if ri.RunOptions["reasoningEffort"] != "xhigh" {
				t.Fatalf("options %v", ri.RunOptions)
			}
		}},
		{name: "option key not for the default model", body: with(coldEmailVersion, cold, map[string]any{"runOptions": map[string]any{"quality": "high"}}), status: 422, msg: "Invalid runOptions key 'quality' for model gpt-4.1-mini"},
		{name: "option value not allowed", body: with(adHeadlineVersion, text("objective", "clicks", "platform", "meta"), map[string]any{"runOptions": map[string]any{"reasoningEffort": "minimal"}}), status: 422, msg: "Invalid runOptions value 'minimal'"},
		{name: "option value not a string", body: with(appIconVersion, text("app_concept", "a", "style", "clay"), map[string]any{"runOptions": map[string]any{"size": 1024}}), status: 422, msg: "must be strings"},
		{name: "runOptions not an object", body: with(coldEmailVersion, cold, map[string]any{"runOptions": "fast"}), status: 422, msg: "runOptions"},
		{name: "legacy image option stripped", body: with(appIconVersion, text("app_concept", "a", "style", "clay"), map[string]any{"runOptions": map[string]any{"image": map[string]any{"quality": 0}, "quality": "high"}}), status: 200, check: func(t *testing.T, ri RunInfo) {
			if _, ok := ri.RunOptions["image"]; ok || ri.RunOptions["quality"] != "high" || ri.RunOptions["size"] != "1024x1024" {
				t.Fatalf("options %v", ri.RunOptions)
			}
		}},
		{name: "runModel same modality", body: with(coldEmailVersion, cold, map[string]any{"runModel": "gpt-5", "runOptions": map[string]any{"reasoningEffort": "high"}}), status: 200, check: func(t *testing.T, ri RunInfo) {
			if ri.Model != "gpt-5" || ri.RunOptions["reasoningEffort"] != "high" {
				t.Fatalf("model %s options %v", ri.Model, ri.RunOptions)
			}
		}},
		{name: "runModel drops the default model's options", body: with(adHeadlineVersion, text("objective", "clicks", "platform", "meta"), map[string]any{"runModel": "gpt-4o"}), status: 200, check: func(t *testing.T, ri RunInfo) {
			if len(ri.RunOptions) != 0 {
				t.Fatalf("options %v", ri.RunOptions)
			}
		}},
		{name: "runModel options checked against it", body: with(coldEmailVersion, cold, map[string]any{"runModel": "gpt-4o", "runOptions": map[string]any{"reasoningEffort": "low"}}), status: 422, msg: "Invalid runOptions key 'reasoningEffort' for model gpt-4o"},
		{name: "runModel unknown", body: with(coldEmailVersion, cold, map[string]any{"runModel": "gpt-9"}), status: 422, msg: "runModel"},
		{name: "runModel other modality", body: with(coldEmailVersion, cold, map[string]any{"runModel": "gpt-image-1"}), status: 422, msg: "runModel 'gpt-image-1' is a image model"},
		{name: "runModel video for image prompt", body: with(appIconVersion, text("app_concept", "a", "style", "clay"), map[string]any{"runModel": "sora-2"}), status: 422, msg: "runModel"},
		{name: "runModel not a string", body: with(coldEmailVersion, cold, map[string]any{"runModel": 4}), status: 422, msg: "runModel"},
		{name: "runModel empty is the default", body: with(coldEmailVersion, cold, map[string]any{"runModel": ""}), status: 200},
		{name: "video options", body: with(heroClipVersion, text("feature", "lid", "brand_color", "green", "mood", "premium"), map[string]any{"runOptions": map[string]any{"seconds": "12"}}), status: 200, check: func(t *testing.T, ri RunInfo) {
			if ri.RunOptions["seconds"] != "12" || ri.RunOptions["size"] != "1280x720" || ri.ImageInputs != 1 {
				t.Fatalf("run %+v", ri)
			}
		}},
	}
	// Give hero-clip its image.
	for i := range cases {
		if b, ok := cases[i].body.(map[string]any); ok && b["promptVersionId"] == heroClipVersion {
			b["inputs"].(map[string]any)["imageInputs"] = []any{urlImage("https://example.com/p.png")}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.s.Runs(TestKey))
			h.s.SetCredits(TestKey, 100000)
			r := h.call("POST", "/runs", c.body)
			if c.status != 200 {
				expect(t, r, c.status, "VALIDATION_ERROR", c.msg)
				if n := len(h.s.Runs(TestKey)); n != before {
					t.Fatalf("a rejected request created a run")
				}
				if h.s.Credits(TestKey) != 100000 {
					t.Fatalf("a rejected request changed the balance")
				}
				return
			}
			if r.status == 504 {
				var d struct{ RunID string }
				_ = json.Unmarshal(r.env.Data, &d)
				h.waitFinal(d.RunID)
			} else {
				expect(t, r, 200, "SUCCESS", "")
			}
			runs := h.s.Runs(TestKey)
			if len(runs) != before+1 {
				t.Fatalf("%d runs, want %d", len(runs), before+1)
			}
			if c.check != nil {
				c.check(t, runs[len(runs)-1])
			}
		})
	}
}

// TestEveryCatalogueInputAccepted runs each catalogue prompt with inputs
// built from its config, and checks the generic rejections.
func TestEveryCatalogueInputAccepted(t *testing.T) {
	h := start(t, func(o *Options) { o.TimeScale = 0.001 })
	for _, p := range catalogue {
		for _, v := range p.Versions {
			t.Run(p.Slug+"/"+v.PromptVersionID[:8], func(t *testing.T) {
				spec, err := parseVersionSpec(v)
				if err != nil {
					t.Fatal(err)
				}
				text := map[string]any{}
				for _, vs := range spec.vars {
					switch {
					case vs.sel && vs.multiple:
						n := max(vs.min, 1)
						text[vs.key] = vs.options[:n]
					case vs.sel:
						text[vs.key] = vs.options[0]
					default:
						text[vs.key] = "value for " + vs.key
					}
				}
				var images []any
				for i := 0; i < spec.imageCount; i++ {
					images = append(images, urlImage("https://example.com/"+string(rune('a'+i))+".png"))
				}
				body := runBody(v.PromptVersionID, text, images...)
				r := h.call("POST", "/runs", body)
				if r.status != 200 && r.status != 504 {
					t.Fatalf("valid inputs rejected: %d %s", r.status, r.raw)
				}
				// One image too many is always rejected.
				bad := runBody(v.PromptVersionID, text, append(images, urlImage("https://example.com/z.png"))...)
				expect(t, h.call("POST", "/runs", bad), 422, "VALIDATION_ERROR", "imageCount")
				// Each required variable, left out, is rejected.
				for _, vs := range spec.vars {
					if !vs.sel && (len(vs.defaults) > 0 || vs.optional) {
						continue
					}
					partial := map[string]any{}
					for k, val := range text {
						if k != vs.key {
							partial[k] = val
						}
					}
					expect(t, h.call("POST", "/runs", runBody(v.PromptVersionID, partial, images...)), 422, "VALIDATION_ERROR", "Missing required input: "+vs.key)
				}
			})
		}
	}
	// Let the slow runs end before the server closes.
	deadline := time.Now().Add(5 * time.Second)
	for _, ri := range h.s.Runs(TestKey) {
		for {
			info, _ := h.s.Run(ri.RunID)
			if info.Status == StatusSucceeded || info.Status == StatusFailed || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestSplitMulti(t *testing.T) {
	v := &varSpec{key: "k", sel: true, multiple: true, options: []string{"a", "b", "a, b", "Warm, friendly", "c,d"}}
	for _, c := range []struct {
		in   string
		want []string
		bad  string
	}{
		{"a", []string{"a"}, ""},
		{"a, b", []string{"a, b"}, ""}, // the whole string first
		{"b, a", []string{"b", "a"}, ""},
		{"Warm, friendly, a", []string{"Warm, friendly", "a"}, ""},
		{"a,Warm, friendly", []string{"a", "Warm, friendly"}, ""},
		{"c,d, b", []string{"c,d", "b"}, ""},
		{"  b  ", []string{"b"}, ""},
		{"", nil, ""},
		{"a, zz", nil, "zz"},
		{"Warm, b", nil, "Warm"},
		{"a,,b", nil, ""},
		{"a, ", nil, ""},
	} {
		got, bad, ok := splitMulti(c.in, v)
		if ok != (c.want != nil || c.in == "") || !slices.Equal(got, c.want) || bad != c.bad {
			t.Errorf("splitMulti(%q) = %q, %q; want %q, %q", c.in, got, bad, c.want, c.bad)
		}
	}
}
