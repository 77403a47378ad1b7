package betterprompt_test

import (
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// list_models shows every model of /v1/resources with its run options, by
// modality; the list is kept until BetterPrompt says it changed.
func TestListModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	list := func(args map[string]any) (betterprompt.ListModelsOutput, string) {
		t.Helper()
		res := e.call(t, "list_models", args)
		mustOK(t, res)
		var out betterprompt.ListModelsOutput
		structured(t, res, &out)
		return out, text(res)
	}
	all, txt := list(map[string]any{})
	if len(all.Models) != 10 {
		t.Fatalf("%d models, want the 10 of the fixture", len(all.Models))
	}
	var sora *betterprompt.ModelView
	for i, m := range all.Models {
		if m.Model == "sora-2" {
			sora = &all.Models[i]
		}
	}
	if sora == nil || sora.Modality != "video" || strings.Join(sora.RunOptions["seconds"], ",") != "4,8,12" {
		t.Errorf("sora-2: %+v", sora)
	}
	if !strings.Contains(txt, "gpt-image-1 (image): quality:") && !strings.Contains(txt, "gpt-image-1 (image): size:") {
		t.Errorf("text does not list run options:\n%s", txt)
	}
	if images, _ := list(map[string]any{"modality": "image"}); len(images.Models) != 3 {
		t.Errorf("image models: %+v", images.Models)
	}
	mustError(t, e.call(t, "list_models", map[string]any{"modality": "audio"}), "modality must be")
	if n := e.fake.Count("GET /v1/resources"); n != 1 {
		t.Errorf("%d reads of /v1/resources for three lists; want 1 (cached)", n)
	}
	// An answer that says the resources changed makes the next list read them again.
	e.fake.ChangeResources()
	mustOK(t, e.call(t, "get_credits", map[string]any{}))
	list(map[string]any{})
	if n := e.fake.Count("GET /v1/resources"); n != 2 {
		t.Errorf("%d reads of /v1/resources after action-require: update-resources; want 2", n)
	}
}
