package betterwaifu_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

func TestListModels(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		list := func(args map[string]any) betterwaifu.ListModelsOutput {
			t.Helper()
			res := e.call(t, "betterwaifu_list_models", args)
			mustOK(t, res)
			var out betterwaifu.ListModelsOutput
			b, _ := json.Marshal(res.StructuredContent)
			_ = json.Unmarshal(b, &out)
			return out
		}
		sfw := list(map[string]any{})
		if sfw.Count != 3 || len(sfw.Models) != 3 {
			t.Fatalf("default list %+v; want the 3 safe-for-work models", sfw)
		}
		for _, m := range sfw.Models {
			if m.NSFW {
				t.Errorf("NSFW model listed by default: %+v", m)
			}
		}
		if all := list(map[string]any{"include_nsfw": true}); all.Count != 4 {
			t.Errorf("with NSFW: %d models", all.Count)
		}
		if pony := list(map[string]any{"base_model": "pony", "include_nsfw": true}); pony.Count != 2 {
			t.Errorf("base_model pony: %+v", pony)
		}
		res := e.call(t, "betterwaifu_list_models", map[string]any{})
		if !strings.Contains(text(res), "1 NSFW model hidden") {
			t.Errorf("text does not say models were hidden:\n%s", text(res))
		}
		// The list is cached: generating checks the model without reading it again.
		before := e.fake.Count("GET /models")
		mustOK(t, e.call(t, "betterwaifu_generate", gen("x")))
		if e.fake.Count("GET /models") != before {
			t.Error("the model list was read again")
		}
	})
}

func TestGetAccount(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_get_account", map[string]any{})
		mustOK(t, res)
		var out betterwaifu.AccountOutput
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &out)
		if out.Username != "tester" || out.Credits != 500 || out.Subscription == nil || out.Subscription.Status != "active" ||
			out.Subscription.EndDate == "" {
			t.Errorf("account %+v", out)
		}
		e2 := newEnv(t, fakeapi.Options{Keys: map[string]fakeapi.Key{fakeapi.TestKey: {Username: "free", Credits: 3}}})
		res = e2.call(t, "betterwaifu_get_account", map[string]any{})
		mustOK(t, res)
		if m, _ := res.StructuredContent.(map[string]any); m["subscription"] != nil || !strings.Contains(text(res), "no subscription") {
			t.Errorf("account without a subscription: %v\n%s", m, text(res))
		}
	})
}

// Without a key, every tool says how to set one; the key never shows.
func TestNoKeyAndKeyRedaction(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{}, func(d *betterwaifu.Toolset) { d.Client = d.Client.WithAPIKey("") })
		mustError(t, e.call(t, "betterwaifu_get_account", map[string]any{}), "BETTERWAIFU_API_KEY")
		e = newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("GET /account", fakeapi.Fault{Status: 401, Body: `{"error":"key ` + fakeapi.TestKey + ` is revoked"}`})
		res := e.call(t, "betterwaifu_get_account", map[string]any{})
		mustError(t, res, "401", "[redacted]")
		if strings.Contains(text(res), fakeapi.TestKey) {
			t.Errorf("the key reached the result: %s", text(res))
		}
	})
}

// Bad arguments are refused before anything is sent.
func TestArguments(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		for _, tc := range []struct {
			args map[string]any
			want string
		}{
			{map[string]any{"prompt": "  "}, "prompt is required"},
			{map[string]any{"prompt": "x", "width": -5}, "width and height"},
			{map[string]any{"prompt": "x", "cfg_scale": 0}, "cfg_scale"},
			{map[string]any{"prompt": "x", "steps": "many"}, "steps"},
			{map[string]any{"prompt": "x", "wait_seconds": -1}, "wait_seconds"},
			{map[string]any{"prompt": "x", "bogus": 1}, "bogus"},
		} {
			mustError(t, e.call(t, "betterwaifu_generate", tc.args), tc.want)
		}
		mustError(t, e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": ""}), "generation_id")
		if n := e.fake.Count(""); n != 0 {
			t.Errorf("%d requests for refused arguments", n)
		}
		// Without model_version_id, the first safe-for-work model is used.
		res := e.call(t, "betterwaifu_generate", map[string]any{"prompt": "x"})
		mustOK(t, res)
		if v := view(t, res); v.ModelVersionID != 902311 { // Amanatsu, first by model name
			t.Errorf("default model %d", v.ModelVersionID)
		}
	})
}
