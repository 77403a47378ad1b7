package betterprompt_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// Well-known fixtures for the price and run-option tests.
const (
	pictureVersion = "4eb5b9a1-a504-4bee-941b-a8c1e26b8dad"
	doorbellPrompt = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e11"
)

// getPrompt calls get_prompt and decodes its result, which must succeed.
func getPrompt(t *testing.T, e *env, args map[string]any) (betterprompt.GetPromptOutput, map[string]any, string) {
	t.Helper()
	res := e.call(t, "get_prompt", args)
	mustOK(t, res)
	var out betterprompt.GetPromptOutput
	structured(t, res, &out)
	var raw map[string]any
	structured(t, res, &raw)
	return out, raw, text(res)
}

// runOptionKeys returns the properties of a result's run_options_schema.
func runOptionKeys(t *testing.T, raw map[string]any) map[string]any {
	t.Helper()
	s, ok := raw["run_options_schema"].(map[string]any)
	if !ok {
		t.Fatalf("no run_options_schema in %v", raw)
	}
	if s["type"] != "object" || s["additionalProperties"] != false {
		t.Errorf("run_options_schema %v is not a closed object", s)
	}
	props, _ := s["properties"].(map[string]any)
	return props
}

// A prompt reached by id, never seen in a search, still shows its price and
// type (a search by its title finds its row) and the run options its type's
// models take, with the price first in the text.
func TestGetPromptShowsPriceTypeAndRunOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out, raw, txt := getPrompt(t, e, map[string]any{"prompt_id": coldEmailPrompt})
	if out.Modality != "text" || out.EstimatedCredits == nil || *out.EstimatedCredits != 40 {
		t.Fatalf("modality %q, estimated_credits %v; want text, 40", out.Modality, out.EstimatedCredits)
	}
	if !strings.HasPrefix(txt, "Price: about 40 credits per run") || !strings.Contains(txt, "Type: text.") {
		t.Errorf("the text does not start with the price and type:\n%s", txt)
	}
	// The documented rows name no model: the options are those of any
	// text model, each saying which models take it.
	props := runOptionKeys(t, raw)
	effort, ok := props["reasoningEffort"].(map[string]any)
	if !ok || len(props) != 1 || !strings.Contains(effort["description"].(string), "gpt-5") {
		t.Errorf("text run options %v; want reasoningEffort only, naming its models", props)
	}
	if out.Model != "" || raw["default_run_options"] != nil {
		t.Errorf("model %q / default options %v shown although no answer named them", out.Model, raw["default_run_options"])
	}
	if !strings.Contains(txt, "depend on the model") || !strings.Contains(txt, "reasoningEffort") {
		t.Errorf("text does not list the run options:\n%s", txt)
	}

	// A second get_prompt looks nothing up again.
	before := e.fake.Count("GET /v1/prompts/publish")
	getPrompt(t, e, map[string]any{"prompt_id": coldEmailPrompt})
	if n := e.fake.Count("GET /v1/prompts/publish"); n != before {
		t.Errorf("the facts were looked up again (%d searches, then %d)", before, n)
	}
}

// After a search, get_prompt needs no lookup: the row said it all.
func TestGetPromptAfterSearchUsesTheRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustOK(t, e.call(t, "search_prompts", map[string]any{"query": "pictures"}))
	searches := e.fake.Count("GET /v1/prompts/publish")
	out, raw, _ := getPrompt(t, e, map[string]any{"prompt_id": "picture-from-a-description"})
	if out.Modality != "image" || out.EstimatedCredits == nil || *out.EstimatedCredits != 50 {
		t.Fatalf("modality %q, estimated_credits %v; want image, 50", out.Modality, out.EstimatedCredits)
	}
	if n := e.fake.Count("GET /v1/prompts/publish"); n != searches {
		t.Errorf("get_prompt searched again after a search found the prompt")
	}
	props := runOptionKeys(t, raw)
	for _, k := range []string{"aspectRatio", "resolution", "size", "quality"} {
		if props[k] == nil {
			t.Errorf("image run options lack %s: %v", k, props)
		}
	}
}

// A video prompt reached by slug and by page link shows its type, and its
// price when the skills route gives one.
func TestVideoPromptBySlugAndLink(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"doorbell-camera-hello", "https://betterprompt.me/prompts/doorbell-camera-hello"} {
		e := newEnv(t)
		out, raw, txt := getPrompt(t, e, map[string]any{"prompt_id": ref})
		if out.PromptID != doorbellPrompt || out.Modality != "video" || out.EstimatedCredits == nil || *out.EstimatedCredits != 400 {
			t.Fatalf("%s: prompt %s, modality %q, credits %v; want the doorbell clip, video, 400", ref, out.PromptID, out.Modality, out.EstimatedCredits)
		}
		if !strings.HasPrefix(txt, "Price: about 400 credits") {
			t.Errorf("%s: text does not start with the price:\n%s", ref, txt)
		}
		if props := runOptionKeys(t, raw); props["seconds"] == nil || props["size"] == nil {
			t.Errorf("%s: video run options %v", ref, props)
		}
	}
}

// Without a price from any route, the result says so instead of showing 0,
// and a lookup that fails never fails get_prompt.
func TestGetPromptWithoutFacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Status: 500, Count: -1})
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 404, Count: -1})
	out, raw, txt := getPrompt(t, e, map[string]any{"prompt_id": coldEmailPrompt})
	if out.Modality != "" || out.EstimatedCredits != nil || raw["estimated_credits"] != nil || raw["run_options_schema"] != nil {
		t.Errorf("facts shown that no answer gave: %v", raw)
	}
	if !strings.HasPrefix(txt, "Price: not published") || !strings.Contains(txt, "Run options: not known") {
		t.Errorf("text:\n%s", txt)
	}
	// Unchecked run options are the API's to refuse; the error then points
	// at run_options_schema, not at the inputs.
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs,
		"run_options": map[string]any{"quality": "high"}})
	mustError(t, res, "422", "quality", "run_options_schema", "leave run_options and run_model out")
}

// Rows that name the default model and its run options (an undocumented
// shape the server reads when it appears) give the exact model's schema.
func TestGetPromptWithNamedModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"status":"SUCCESS","data":{"rows":[{"promptId":"` + coldEmailPrompt + `","promptVersionId":"` + coldEmailVersion +
		`","title":"Cold Email Opener","slug":"cold-email-opener","model":"gpt-5","modality":0,"estimatedCredits":40,` +
		`"defaultRunOptions":{"reasoningEffort":"low","image":{"quality":0}}}]}}`
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Status: 200, Body: body})
	mustOK(t, e.call(t, "search_prompts", map[string]any{"query": "cold email"}))
	out, raw, txt := getPrompt(t, e, map[string]any{"prompt_id": coldEmailPrompt})
	if out.Model != "gpt-5" {
		t.Fatalf("model %q, want gpt-5", out.Model)
	}
	if def, _ := json.Marshal(raw["default_run_options"]); string(def) != `{"reasoningEffort":"low"}` {
		t.Errorf("default_run_options %s", def)
	}
	props := runOptionKeys(t, raw)
	effort, _ := props["reasoningEffort"].(map[string]any)
	if len(props) != 1 || len(effort["enum"].([]any)) != 4 {
		t.Errorf("run options of gpt-5: %v", props)
	}
	if !strings.Contains(txt, "Model: gpt-5, default run options {\"reasoningEffort\":\"low\"}") {
		t.Errorf("text:\n%s", txt)
	}
	// run_prompt checks run_options against that model, before spending.
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs,
		"run_options": map[string]any{"reasoningEffort": "xhigh"}})
	mustError(t, res, "run_options.reasoningEffort: must be one of", `"minimal"`, "no credits spent")
	if n := e.fake.Count("POST /v1/runs"); n != 0 {
		t.Errorf("%d runs posted", n)
	}
}

// run_options given without run_model are checked against what the
// prompt's models take, so that an option no model of its type has costs
// nothing; a valid one runs.
func TestRunOptionsCheckedAgainstThePromptsModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pictureInputs := map[string]any{"textInputs": map[string]any{"description": "a lighthouse at dawn"}}
	cases := []struct {
		name    string
		version string
		inputs  any
		opts    map[string]any
		model   string
		wants   []string
	}{
		{"an image option on a text prompt", coldEmailVersion, coldEmailInputs, map[string]any{"aspectRatio": "3:4"}, "",
			[]string{"run_options.aspectRatio: no text model has this option", `"reasoningEffort"`, "nothing was run"}},
		{"an option no model has", pictureVersion, pictureInputs, map[string]any{"numImages": "2"}, "",
			[]string{"run_options.numImages: no image model has this option", `"aspectRatio"`}},
		{"a value no model accepts", pictureVersion, pictureInputs, map[string]any{"aspectRatio": "7:5"}, "",
			[]string{"run_options.aspectRatio: must be one of", `"16:9"`}},
		{"a model of another type", coldEmailVersion, coldEmailInputs, nil, "gpt-image-1",
			[]string{"run_model gpt-image-1 is a image model", "text prompt", `"gpt-5" (text)`}},
	}
	for _, tc := range cases {
		args := map[string]any{"prompt_version_id": tc.version, "inputs": tc.inputs}
		if tc.opts != nil {
			args["run_options"] = tc.opts
		}
		if tc.model != "" {
			args["run_model"] = tc.model
		}
		if tc.model != "" { // the prompt's type is known once it has been read
			getPrompt(t, e, map[string]any{"prompt_id": coldEmailPrompt})
		}
		mustError(t, e.call(t, "run_prompt", args), tc.wants...)
	}
	if n := e.fake.Count("POST /v1/runs"); n != 0 {
		t.Fatalf("%d runs posted for refused run options", n)
	}
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": pictureVersion, "inputs": pictureInputs,
		"run_options": map[string]any{"aspectRatio": "16:9"}})
	mustOK(t, res)
}

// The result of run_prompt shows the inputs as sent, and says what checking
// them changed: choices joined into one value, a default filled in.
func TestRunResultShowsInputsSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": channelsVersion, "inputs": map[string]any{
		"textInputs": map[string]any{"message": "We open in Lisbon on 3 March.", "channels": []string{"x", "linkedin"}}}})
	mustOK(t, res)
	var out struct {
		InputsSent struct {
			TextInputs map[string]string `json:"textInputs"`
		} `json:"inputs_sent"`
	}
	structured(t, res, &out)
	if got := out.InputsSent.TextInputs["channels"]; got != "x, linkedin" {
		t.Errorf("inputs_sent channels = %q, want the joined value", got)
	}
	if txt := text(res); !strings.Contains(txt, `textInputs.channels: the 2 choices were sent as one value, "x, linkedin"`) {
		t.Errorf("the text does not say the choices were joined:\n%s", txt)
	}

	pictureInputs := map[string]any{"textInputs": map[string]any{"description": "a lighthouse at dawn"},
		"imageInputs": []any{}}
	res = e.call(t, "run_prompt", map[string]any{"prompt_version_id": pictureVersion, "inputs": pictureInputs})
	mustOK(t, res)
	if txt := text(res); !strings.Contains(txt, `textInputs.style: not given, the prompt's default "photorealistic photo" was sent`) {
		t.Errorf("the text does not say the default was sent:\n%s", txt)
	}
}

// A row that says nothing of a prompt's type ("modality": null) leaves it
// unknown: it does not become "text" for every caller, so valid run
// options of a video prompt are not refused.
func TestNullModalityPoisonsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"status":"SUCCESS","data":{"rows":[{"skillId":"` + doorbellPrompt + `","latestPromptVersionId":"` + doorbellVersion +
		`","title":"Doorbell camera hello","name":"doorbell-camera-hello","modality":null}]}}`
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 200, Body: body})
	mustOK(t, e.call(t, "search_prompts", map[string]any{"query": "doorbell", "modality": "video"}))
	for _, extra := range []map[string]any{{"run_options": map[string]any{"seconds": "8"}}, {"run_model": "sora-2"}} {
		args := map[string]any{"prompt_version_id": doorbellVersion, "inputs": map[string]any{"textInputs": map[string]any{}}}
		for k, v := range extra {
			args[k] = v
		}
		mustOK(t, e.call(t, "run_prompt", args))
	}
}

// A slug whose row has a price of an unexpected type still reaches its
// prompt.
func TestOddPriceDoesNotBreakSlugs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"status":"SUCCESS","data":{"skillId":"` + doorbellPrompt + `","latestPromptVersionId":"` + doorbellVersion +
		`","title":"Doorbell camera hello","name":"doorbell-camera-hello","estimatedCredits":"400"}}`
	e.fake.InjectFault("GET /v1/skills/{name}", fakeapi.Fault{Status: 200, Body: body})
	out, _, _ := getPrompt(t, e, map[string]any{"prompt_id": "doorbell-camera-hello"})
	if out.PromptID != doorbellPrompt || out.EstimatedCredits == nil || *out.EstimatedCredits != 400 {
		t.Errorf("prompt %s, price %v", out.PromptID, out.EstimatedCredits)
	}
}

// A prompt whose lookup cannot complete (video rows carry no price) is not
// looked up again at every get_prompt.
func TestIncompleteFactsAreNotLookedUpEveryTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 404, Count: -1})
	getPrompt(t, e, map[string]any{"prompt_id": doorbellPrompt})
	before := e.fake.Count("GET /v1/prompts/publish") + e.fake.Count("GET /v1/skills")
	getPrompt(t, e, map[string]any{"prompt_id": doorbellPrompt})
	getPrompt(t, e, map[string]any{"prompt_id": doorbellPrompt})
	if n := e.fake.Count("GET /v1/prompts/publish") + e.fake.Count("GET /v1/skills"); n != before {
		t.Errorf("%d more searches for a prompt already looked up", n-before)
	}
}

// The price and model a row gives are its version's: a pinned older
// version shows only the type, and its run options are not checked
// against the latest version's model.
func TestFactsBelongToTheirVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustOK(t, e.call(t, "search_prompts", map[string]any{"query": "product description"}))
	latest, _, _ := getPrompt(t, e, map[string]any{"prompt_id": twoVersionsPrompt})
	if latest.EstimatedCredits == nil || latest.Modality != "text" {
		t.Fatalf("latest version: %+v", latest)
	}
	older, _, txt := getPrompt(t, e, map[string]any{"prompt_id": twoVersionsPrompt, "version_id": olderVersion})
	if older.EstimatedCredits != nil || older.Modality != "text" || !strings.HasPrefix(txt, "Price: not published") {
		t.Errorf("a pinned older version shows the latest's price: %v\n%s", older.EstimatedCredits, txt)
	}
}

// Inputs given as a JSON string (which the checks accept) get no false
// notes about defaults.
func TestNotesForStringEncodedInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	enc, _ := json.Marshal(coldEmailInputs)
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": string(enc)})
	mustOK(t, res)
	if strings.Contains(text(res), "Inputs as sent") {
		t.Errorf("false notes:\n%s", text(res))
	}
}
