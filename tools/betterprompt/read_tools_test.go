package betterprompt_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

func TestSearchPrompts(t *testing.T) {
	e := newEnv(t)
	res := e.call(t, "search_prompts", map[string]any{"query": "  cold email  "})
	mustOK(t, res)
	var out betterprompt.SearchOutput
	structured(t, res, &out)
	if len(out.Prompts) == 0 {
		t.Fatalf("no prompts found for 'cold email': %s", text(res))
	}
	first := out.Prompts[0]
	if first.PromptID != coldEmailPrompt || first.PromptVersionID != coldEmailVersion || first.Modality != "text" ||
		first.EstimatedCredits == nil || *first.EstimatedCredits != 40 {
		t.Errorf("first row = %+v", first)
	}
	if !strings.Contains(text(res), coldEmailPrompt) || !strings.Contains(text(res), "get_prompt") {
		t.Errorf("text rendering lacks the id or the next step: %s", text(res))
	}
	for _, p := range out.Prompts {
		if p.Modality == "video" {
			t.Errorf("video prompt %s returned by search", p.Title)
		}
	}

	none := e.call(t, "search_prompts", map[string]any{"query": "zzzzqqqxyzzy"})
	mustOK(t, none)
	structured(t, none, &out)
	if len(out.Prompts) != 0 || !strings.Contains(text(none), "No published prompt") || !strings.Contains(text(none), "get_prompt") ||
		!strings.Contains(text(none), "link") {
		t.Errorf("empty search: %+v %s", out, text(none))
	}
}

// Every argument error is refused locally: an isError result that says what
// is wrong, and nothing sent upstream.
func TestArgumentErrorsSendNothing(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", 201)
	cases := []struct {
		tool string
		args any
		want string
	}{
		{"search_prompts", map[string]any{}, "query is required"},
		{"search_prompts", map[string]any{"query": "   "}, "query is required"},
		{"search_prompts", map[string]any{"query": long}, "limit is 200"},
		{"search_prompts", map[string]any{"query": 42}, `"query" must be a string`},
		{"search_prompts", map[string]any{"query": "x", "limit": 3}, `unknown argument "limit"`},
		{"get_prompt", map[string]any{}, "prompt_id is required"},
		{"get_prompt", map[string]any{"prompt_id": "../../me/credits"}, "must be a UUID"},
		{"get_prompt", map[string]any{"prompt_id": "%2e%2e%2fme"}, "must be a UUID"},
		{"get_prompt", map[string]any{"prompt_id": "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01\x00"}, "must be a UUID"},
		{"get_prompt", map[string]any{"prompt_id": "2d4e6f80\u20111a3b-4c5d-8e9f-0a1b2c3d4e01"}, "must be a UUID"}, // non-breaking hyphen
		{"get_prompt", map[string]any{"prompt_id": coldEmailPrompt, "version_id": "latest"}, "version_id must be a UUID"},
		{"get_prompt", map[string]any{"prompt_id": []string{coldEmailPrompt}}, `"prompt_id" must be a string`},
		{"get_run", map[string]any{"run_id": "run_123"}, "run_id must be a UUID"},
		{"get_run", map[string]any{"run_id": coldEmailPrompt, "wait_seconds": -1}, "wait_seconds must be 0 or more"},
		{"get_run", map[string]any{"run_id": coldEmailPrompt, "wait_seconds": "soon"}, `"wait_seconds" must be a number`},
		{"run_prompt", map[string]any{}, "give prompt_version_id"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "prompt_version_id": coldEmailVersion}, "not both"},
		{"run_prompt", map[string]any{"prompt_version_id": "nope"}, "prompt_version_id must be a UUID"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": "company=Acme"}, "inputs: must be an object"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "run_model": strings.Repeat("m", 500)}, "run_model is 500 characters"},
		{"get_credits", map[string]any{"verbose": true}, `unknown argument "verbose"`},
		// Input mistakes that need no prompt configuration cost no request.
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"textInputs": map[string]any{"a": 5}}}, "inputs.textInputs.a: must be a string"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"imageInputs": []any{map[string]any{"type": "url", "url": "file:///etc/passwd"}}}}, "imageInputs[0].url"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"imageInputs": []any{map[string]any{"type": "url", "url": "http://127.0.0.1\u0000/x"}}}}, "imageInputs[0].url"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"imageInputs": []any{map[string]any{"type": "base64", "base64": "%%%not-base64%%%"}}}}, "imageInputs[0].base64"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"imageInputs": []any{map[string]any{"type": "url", "url": "https://example.com/" + strings.Repeat("a", 9000)}}}}, "the limit is 8192"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"textInputs": map[string]any{"company_name": strings.Repeat("é", 100_001)}}}, "the limit is 100000"},
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "inputs": map[string]any{"textinputs": map[string]any{}}}, `did you mean "textInputs"`},
	}
	for _, tc := range cases {
		t.Run(tc.tool+"/"+tc.want, func(t *testing.T) {
			before := len(e.fake.Requests())
			mustError(t, e.call(t, tc.tool, tc.args), tc.want)
			if after := len(e.fake.Requests()); after != before {
				t.Errorf("%d upstream requests were sent for a bad argument", after-before)
			}
		})
	}
}

func TestGetPrompt(t *testing.T) {
	e := newEnv(t)
	res := e.call(t, "get_prompt", map[string]any{"prompt_id": coldEmailPrompt})
	mustOK(t, res)
	var out struct {
		PromptID        string         `json:"prompt_id"`
		PromptVersionID string         `json:"prompt_version_id"`
		Title           string         `json:"title"`
		ImageCount      int            `json:"image_count"`
		InputSchema     map[string]any `json:"input_schema"`
		ExampleInputs   map[string]any `json:"example_inputs"`
	}
	structured(t, res, &out)
	if out.PromptVersionID != coldEmailVersion || out.Title != "Cold Email Opener" || out.ImageCount != 0 {
		t.Errorf("get_prompt = %+v", out)
	}
	props, _ := out.InputSchema["properties"].(map[string]any)
	if _, ok := props["textInputs"]; !ok {
		t.Errorf("input_schema has no textInputs: %v", out.InputSchema)
	}
	if _, ok := out.ExampleInputs["textInputs"]; !ok {
		t.Errorf("example_inputs has no textInputs: %v", out.ExampleInputs)
	}
	for _, want := range []string{"company_name (required)", "run_prompt", coldEmailVersion} {
		if !strings.Contains(text(res), want) {
			t.Errorf("text lacks %q: %s", want, text(res))
		}
	}

	t.Run("pinned version", func(t *testing.T) {
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": twoVersionsPrompt, "version_id": olderVersion})
		mustOK(t, res)
		structured(t, res, &out)
		if out.PromptVersionID != olderVersion {
			t.Errorf("pinned version: got %s", out.PromptVersionID)
		}
	})
	t.Run("legacy inputsJTD", func(t *testing.T) {
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": legacyPrompt})
		mustOK(t, res)
		structured(t, res, &out)
		if out.ImageCount != 1 {
			t.Errorf("legacy prompt image_count = %d, want 1", out.ImageCount)
		}
	})
	t.Run("images", func(t *testing.T) {
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e08"})
		mustOK(t, res)
		structured(t, res, &out)
		if out.ImageCount != 2 || !strings.Contains(text(res), "exactly 2") {
			t.Errorf("photo booth: image_count=%d text=%s", out.ImageCount, text(res))
		}
	})
	t.Run("unknown prompt", func(t *testing.T) {
		mustError(t, e.call(t, "get_prompt", map[string]any{"prompt_id": "00000000-0000-4000-8000-000000000000"}), "404", "search_prompts")
	})
}

func TestGetCredits(t *testing.T) {
	e := newEnv(t)
	res := e.call(t, "get_credits", nil)
	mustOK(t, res)
	var out betterprompt.CreditsOutput
	structured(t, res, &out)
	if out.Credits != 100000 || !strings.Contains(text(res), "100000") {
		t.Errorf("credits = %+v, %s", out, text(res))
	}
}

// Authentication failures and a missing key are isError results that say
// how to fix the configuration.
func TestKeyProblems(t *testing.T) {
	cases := []struct {
		name string
		key  string
		want []string
	}{
		{"no key", "", []string{"BETTERPROMPT_API_KEY", "--sandbox"}},
		{"unknown key", "bp_wrong_key", []string{"401", "BETTERPROMPT_API_KEY"}},
		{"lapsed plan", "bp_lapsed_key", []string{"402", "get_credits"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withKey(tc.key))
			calls := []struct {
				tool string
				args map[string]any
			}{{"get_credits", nil}, {"search_prompts", map[string]any{"query": "email"}}}
			for _, c := range calls {
				res := e.call(t, c.tool, c.args)
				mustError(t, res, tc.want...)
				if strings.Contains(text(res), tc.key) && tc.key != "" {
					t.Errorf("the key appears in the result: %s", text(res))
				}
			}
		})
	}
}

// A prompt is reached by the link to its page as well as by its id: the id
// is taken out of the link. A link with no id, or several, says what to do
// instead, and nothing is sent.
func TestPromptByLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, link := range []string{
		"https://betterprompt.me/prompts/cold-email-opener-" + coldEmailPrompt,
		"https://www.betterprompt.me/p/" + strings.ToUpper(coldEmailPrompt) + "?ref=share",
		"http://betterprompt.me/?prompt=" + coldEmailPrompt,
	} {
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": link})
		mustOK(t, res)
		if !strings.Contains(text(res), coldEmailVersion) {
			t.Errorf("get_prompt(%s) did not reach the prompt: %s", link, text(res))
		}
	}
	run := e.call(t, "run_prompt", map[string]any{"prompt_id": "https://betterprompt.me/prompts/x-" + coldEmailPrompt, "inputs": coldEmailInputs})
	mustOK(t, run)
	before := e.fake.Count("*")
	for link, want := range map[string]string{
		"https://betterprompt.me/prompts/Cold_Email":                              "no prompt id or slug",
		"https://betterprompt.me/p/" + coldEmailPrompt + "/v/" + coldEmailVersion: "several ids",
		"https://betterprompt.me/?key=bp_secret_key_1234567890ab":                 "not shown",
	} {
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": link})
		mustError(t, res, want, "search_prompts")
		if strings.Contains(text(res), "bp_secret") {
			t.Errorf("a key in the link was echoed: %s", text(res))
		}
	}
	if n := e.fake.Count("*"); n != before {
		t.Errorf("%d requests for links without one prompt id; want none", n-before)
	}
}

// A prompt is reached by its slug, bare or as the last part of its page's
// link, through the CLI's skills route; a slug nobody has, or a route that
// fails, says what to give instead.
func TestPromptBySlug(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, ref := range []string{"cold-email-opener", "https://betterprompt.me/prompts/cold-email-opener/"} {
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": ref})
		mustOK(t, res)
		if !strings.Contains(text(res), coldEmailVersion) {
			t.Errorf("get_prompt(%s) did not reach the prompt: %s", ref, text(res))
		}
	}
	mustOK(t, e.call(t, "run_prompt", map[string]any{"prompt_id": "cold-email-opener", "inputs": coldEmailInputs}))
	mustError(t, e.call(t, "get_prompt", map[string]any{"prompt_id": "no-such-prompt"}), "No published prompt has the slug", "search_prompts")
	e.fake.InjectFault("GET /v1/skills/{name}", fakeapi.Fault{Status: 502, Count: 10})
	mustError(t, e.call(t, "get_prompt", map[string]any{"prompt_id": "cold-email-opener"}), "could not be looked up", "link")
}

// modality narrows a search to one type; video prompts, which the
// documented search leaves out, are found through the CLI's skills route.
func TestSearchByModality(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	search := func(args map[string]any) betterprompt.SearchOutput {
		t.Helper()
		res := e.call(t, "search_prompts", args)
		mustOK(t, res)
		var out betterprompt.SearchOutput
		structured(t, res, &out)
		return out
	}
	video := search(map[string]any{"query": "clip", "modality": "video"})
	if len(video.Prompts) == 0 {
		t.Fatal("no video prompt found for 'clip'")
	}
	for _, p := range video.Prompts {
		if p.Modality != "video" || p.PromptID == "" || p.PromptVersionID == "" || p.EstimatedCredits != nil {
			t.Errorf("video row %+v; want video, ids, and no price (the route does not say)", p)
		}
	}
	if e.fake.Count("GET /v1/skills") != 1 {
		t.Errorf("the video search did not use the skills route")
	}
	if plain := search(map[string]any{"query": "clip"}); slices.ContainsFunc(plain.Prompts, func(p betterprompt.PromptRow) bool { return p.Modality == "video" }) {
		t.Errorf("a search without modality returned video prompts: %+v", plain.Prompts)
	}
	images := search(map[string]any{"query": "portrait", "modality": "image"}).Prompts
	if len(images) == 0 {
		t.Error("no image prompt found for 'portrait'")
	}
	for _, p := range images {
		if p.Modality != "image" {
			t.Errorf("modality image returned %+v", p)
		}
	}
	mustError(t, e.call(t, "search_prompts", map[string]any{"query": "clip", "modality": "audio"}), "modality must be")
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 404, Count: 5})
	mustError(t, e.call(t, "search_prompts", map[string]any{"query": "clip", "modality": "video"}), "does not document", "get_prompt")
}
