package fakeapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func keysOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

func findPrompt(t *testing.T, id string) Prompt {
	t.Helper()
	for _, p := range catalogue {
		if p.PromptID == id {
			return p
		}
	}
	t.Fatalf("no prompt %s", id)
	return Prompt{}
}

func TestHealthNeedsNoKey(t *testing.T) {
	h := start(t, nil)
	for _, path := range []string{"/", ""} {
		r := h.callKey("", "GET", path, nil)
		expect(t, r, 200, "SUCCESS", "")
		if string(r.env.Data) != `{"ok":true}` {
			t.Fatalf("health data %s", r.env.Data)
		}
	}
}

func TestUnknownRoutes(t *testing.T) {
	h := start(t, nil)
	for _, c := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/prompts"},
		{"DELETE", "/runs/" + unknownUUID},
		{"PUT", "/runs"},
		{"GET", "/runs/"},
		{"GET", "/prompts/publish/extra"},
		{"POST", "/prompts/publish"},
		{"GET", "http://" + strings.TrimPrefix(strings.TrimSuffix(h.base, "/v1"), "http://") + "/api/v1/me"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := h.call(c.method, c.path, nil)
			expect(t, r, 404, "NOT_FOUND_ERROR", "")
		})
	}
}

func TestAuth(t *testing.T) {
	h := start(t, func(o *Options) {
		o.Keys = map[string]Key{"bp_live_ok": {Credits: 10}, "bp_live_lapsed": {Credits: 10, Lapsed: true}}
	})
	routes := []string{"/me", "/me/credits", "/resources", "/runs", "/prompts/publish?q=email", "/prompts/" + coldEmailPrompt, "/runs/" + unknownUUID, "/skills?q=email"}
	cases := []struct {
		name   string
		header string
		status int
		code   string
		msg    string
	}{
		{"no header", "", 401, "UNAUTHORIZED_ERROR", "Missing or invalid API key"},
		{"unknown key", "Bearer bp_live_nope", 401, "UNAUTHORIZED_ERROR", ""},
		{"no scheme", "bp_live_ok", 401, "UNAUTHORIZED_ERROR", ""},
		{"basic scheme", "Basic bp_live_ok", 401, "UNAUTHORIZED_ERROR", ""},
		{"empty bearer", "Bearer ", 401, "UNAUTHORIZED_ERROR", ""},
		{"lapsed plan", "Bearer bp_live_lapsed", 402, "PAYMENT_REQUIRED_ERROR", "An active Pro plan is required"},
		{"bearer", "Bearer bp_live_ok", 200, "SUCCESS", ""},
		{"lowercase bearer", "bearer bp_live_ok", 200, "SUCCESS", ""},
		{"uppercase bearer", "BEARER   bp_live_ok ", 200, "SUCCESS", ""},
	}
	for _, c := range cases {
		for _, route := range routes {
			if c.status == 200 && strings.HasPrefix(route, "/runs/") {
				continue // 404 for an unknown run
			}
			t.Run(c.name+" "+route, func(t *testing.T) {
				hdr := http.Header{}
				if c.header != "" {
					hdr.Set("authorization", c.header)
				}
				expect(t, h.send("GET", route, nil, hdr), c.status, c.code, c.msg)
			})
		}
	}
	// Lapsing and reactivating a key at run time.
	h.s.SetLapsed("bp_live_ok", true)
	expect(t, h.callKey("bp_live_ok", "GET", "/me", nil), 402, "PAYMENT_REQUIRED_ERROR", "Pro plan")
	h.s.SetLapsed("bp_live_ok", false)
	expect(t, h.callKey("bp_live_ok", "GET", "/me", nil), 200, "SUCCESS", "")
	// The default keys are the test and the sandbox keys.
	d := start(t, nil)
	for _, k := range []string{TestKey, SandboxKey} {
		expect(t, d.callKey(k, "GET", "/me", nil), 200, "SUCCESS", "")
	}
}

func TestSearch(t *testing.T) {
	h := start(t, nil)
	type row struct {
		PromptID         string          `json:"promptId"`
		PromptVersionID  string          `json:"promptVersionId"`
		Title            string          `json:"title"`
		Slug             string          `json:"slug"`
		Model            int             `json:"model"`
		Modality         int             `json:"modality"`
		EstimatedCredits int             `json:"estimatedCredits"`
		PublishedAt      string          `json:"publishedAt"`
		Samples          json.RawMessage `json:"samples"`
		Configs          json.RawMessage `json:"configs"`
	}
	search := func(q string) (*resp, []row, []json.RawMessage) {
		r := h.call("GET", "/prompts/publish?q="+url.QueryEscape(q)+"&limit=1&page=2", nil)
		if r.status != 200 {
			return r, nil, nil
		}
		var d struct {
			Rows []json.RawMessage `json:"rows"`
		}
		r.data(t, &d)
		if d.Rows == nil {
			t.Fatalf("rows is not an array: %s", r.env.Data)
		}
		var rows []row
		for _, raw := range d.Rows {
			var x row
			if err := json.Unmarshal(raw, &x); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, x)
		}
		return r, rows, d.Rows
	}

	t.Run("row fields", func(t *testing.T) {
		r, rows, raws := search("  cold email  ")
		expect(t, r, 200, "SUCCESS", "")
		if len(rows) == 0 || rows[0].PromptID != coldEmailPrompt {
			t.Fatalf("first row %+v", rows)
		}
		want := sorted("promptId", "promptVersionId", "title", "description", "slug", "model", "modality", "estimatedCredits", "uses", "upVotes", "publishedAt", "samples", "configs")
		if got := keysOf(t, raws[0]); !slices.Equal(got, want) {
			t.Fatalf("row keys %v, want %v", got, want)
		}
		p := findPrompt(t, coldEmailPrompt)
		x := rows[0]
		if x.PromptVersionID != coldEmailVersion || x.Model != 50 || x.Modality != 0 || x.EstimatedCredits != 40 || x.PublishedAt != p.Versions[0].PublishedAt || x.Slug != "cold-email-opener" {
			t.Fatalf("row %+v", x)
		}
		if !jsonEqual(t, x.Configs, p.Versions[0].Config) {
			t.Fatalf("configs %s", x.Configs)
		}
	})
	t.Run("image modality and latest version", func(t *testing.T) {
		_, rows, _ := search("isometric app icon")
		if len(rows) == 0 || rows[0].Modality != 1 || rows[0].PromptVersionID != appIconVersion {
			t.Fatalf("rows %+v", rows)
		}
		_, rows, _ = search("product description writer")
		if len(rows) == 0 || rows[0].PromptID != productPrompt || rows[0].PromptVersionID != productVersion {
			t.Fatalf("rows %+v", rows)
		}
	})
	t.Run("legacy configs", func(t *testing.T) {
		_, rows, _ := search("whiteboard")
		if len(rows) == 0 || rows[0].PromptID != whiteboardPrompt || !strings.HasPrefix(string(rows[0].Configs), `{"inputsJTD":`) {
			t.Fatalf("rows %+v", rows)
		}
	})
	t.Run("video never returned", func(t *testing.T) {
		for _, q := range []string{"doorbell camera hello", "product hero clip", "clip", "video"} {
			_, rows, _ := search(q)
			for _, x := range rows {
				if p := findPrompt(t, x.PromptID); p.Modality == "video" {
					t.Fatalf("q=%q returned video prompt %s", q, p.Slug)
				}
			}
		}
	})
	t.Run("no match", func(t *testing.T) {
		r, rows, _ := search("zzzxqj")
		expect(t, r, 200, "SUCCESS", "")
		if len(rows) != 0 || !strings.Contains(string(r.env.Data), `"rows":[]`) {
			t.Fatalf("data %s", r.env.Data)
		}
	})
	for _, c := range []struct{ name, q string }{
		{"missing", ""},
		{"blank", "   "},
		{"201 characters", strings.Repeat("a", 201)},
	} {
		t.Run("422 "+c.name, func(t *testing.T) {
			path := "/prompts/publish"
			if c.q != "" {
				path += "?q=" + url.QueryEscape(c.q)
			}
			expect(t, h.call("GET", path, nil), 422, "VALIDATION_ERROR", "q ")
		})
	}
	t.Run("200 characters after trimming", func(t *testing.T) {
		r, _, _ := search("  " + strings.Repeat("a", 200) + "  ")
		expect(t, r, 200, "SUCCESS", "")
	})
}

func TestPrompt(t *testing.T) {
	h := start(t, nil)
	p := findPrompt(t, productPrompt)
	cases := []struct {
		name    string
		path    string
		status  int
		code    string
		msg     string
		version string
	}{
		{"latest", "/prompts/" + productPrompt, 200, "SUCCESS", "", productVersion},
		{"pinned", "/prompts/" + productPrompt + "?versionId=" + productOldVersion, 200, "SUCCESS", "", productOldVersion},
		{"uppercase ids", "/prompts/" + strings.ToUpper(productPrompt) + "?versionId=" + strings.ToUpper(productOldVersion), 200, "SUCCESS", "", productOldVersion},
		{"empty versionId", "/prompts/" + productPrompt + "?versionId=&foo=bar", 200, "SUCCESS", "", productVersion},
		{"invalid promptId", "/prompts/not-a-uuid", 422, "VALIDATION_ERROR", "Invalid promptId", ""},
		{"invalid versionId", "/prompts/" + productPrompt + "?versionId=123", 422, "VALIDATION_ERROR", "Invalid versionId", ""},
		{"unknown prompt", "/prompts/" + unknownUUID, 404, "NOT_FOUND_ERROR", "Prompt not found", ""},
		{"unknown version", "/prompts/" + productPrompt + "?versionId=" + unknownUUID, 404, "NOT_FOUND_ERROR", "Prompt version not found", ""},
		{"version of another prompt", "/prompts/" + productPrompt + "?versionId=" + coldEmailVersion, 404, "NOT_FOUND_ERROR", "Prompt version not found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.call("GET", c.path, nil)
			expect(t, r, c.status, c.code, c.msg)
			if c.status != 200 {
				return
			}
			if got := keysOf(t, r.env.Data); !slices.Equal(got, sorted("promptVersionId", "promptId", "title", "publishedAt", "config")) {
				t.Fatalf("keys %v", got)
			}
			var d promptVersionData
			r.data(t, &d)
			var v Version
			for _, x := range p.Versions {
				if x.PromptVersionID == c.version {
					v = x
				}
			}
			if d.PromptVersionID != c.version || d.PromptID != productPrompt || d.Title != p.Title || d.PublishedAt != v.PublishedAt || !jsonEqual(t, d.Config, v.Config) {
				t.Fatalf("data %s", r.env.Data)
			}
		})
	}
	t.Run("legacy inputsJTD", func(t *testing.T) {
		for _, path := range []string{"/prompts/" + whiteboardPrompt, "/prompt-versions/" + whiteboardVersion} {
			r := h.call("GET", path, nil)
			expect(t, r, 200, "SUCCESS", "")
			if got := keysOf(t, r.env.Data); !slices.Equal(got, sorted("promptVersionId", "promptId", "title", "publishedAt", "inputsJTD")) {
				t.Fatalf("keys %v", got)
			}
		}
	})
}

func TestVersions(t *testing.T) {
	h := start(t, nil)
	r := h.call("GET", "/prompts/"+productPrompt+"/versions", nil)
	expect(t, r, 200, "SUCCESS", "")
	want := `{"promptId":"` + productPrompt + `","title":"` + findPrompt(t, productPrompt).Title + `","versions":[` +
		`{"promptVersionId":"` + productVersion + `","publishedAt":"` + findPrompt(t, productPrompt).Versions[0].PublishedAt + `","isLatest":true},` +
		`{"promptVersionId":"` + productOldVersion + `","publishedAt":"2025-12-02T10:30:00.000Z"}]}`
	if !jsonEqual(t, r.env.Data, json.RawMessage(want)) {
		t.Fatalf("data %s\nwant %s", r.env.Data, want)
	}
	expect(t, h.call("GET", "/prompts/xyz/versions", nil), 422, "VALIDATION_ERROR", "Invalid")
	expect(t, h.call("GET", "/prompts/"+unknownUUID+"/versions", nil), 404, "NOT_FOUND_ERROR", "Prompt not found")
}

func TestPromptVersion(t *testing.T) {
	h := start(t, nil)
	r := h.call("GET", "/prompt-versions/"+productOldVersion, nil)
	expect(t, r, 200, "SUCCESS", "")
	var d promptVersionData
	r.data(t, &d)
	if d.PromptID != productPrompt || d.PromptVersionID != productOldVersion || !jsonEqual(t, d.Config, findPrompt(t, productPrompt).Versions[1].Config) {
		t.Fatalf("data %s", r.env.Data)
	}
	expect(t, h.call("GET", "/prompt-versions/nope", nil), 422, "VALIDATION_ERROR", "Invalid promptVersionId")
	expect(t, h.call("GET", "/prompt-versions/"+unknownUUID, nil), 404, "NOT_FOUND_ERROR", "Prompt version not found")
	expect(t, h.call("GET", "/prompt-versions/"+coldEmailPrompt, nil), 404, "NOT_FOUND_ERROR", "Prompt version not found")
}

func TestMeAndCredits(t *testing.T) {
	h := start(t, func(o *Options) {
		o.Keys = map[string]Key{TestKey: {Credits: 4250, Username: "janedoe", DisplayName: "Jane Doe", UserFlags: 3}, "bp_other": {Credits: 7}}
	})
	r := h.call("GET", "/me", nil)
	expect(t, r, 200, "SUCCESS", "")
	if string(r.env.Data) != `{"displayName":"Jane Doe","userFlags":3,"username":"janedoe"}` {
		t.Fatalf("me %s", r.env.Data)
	}
	r = h.callKey("bp_other", "GET", "/me", nil)
	if !jsonEqual(t, r.env.Data, json.RawMessage(`{"username":"fake_user","displayName":"Fake User","userFlags":0}`)) {
		t.Fatalf("me %s", r.env.Data)
	}
	r = h.call("GET", "/me/credits", nil)
	expect(t, r, 200, "SUCCESS", "")
	if string(r.env.Data) != `{"credits":4250}` {
		t.Fatalf("credits %s", r.env.Data)
	}
	h.s.SetCredits(TestKey, 12)
	if r = h.call("GET", "/me/credits", nil); string(r.env.Data) != `{"credits":12}` || h.s.Credits(TestKey) != 12 {
		t.Fatalf("credits %s", r.env.Data)
	}
	if h.s.Credits("bp_unknown") != 0 {
		t.Fatal("unknown key has credits")
	}
	h.s.SetCredits("bp_new", 5) // adds a key
	expect(t, h.callKey("bp_new", "GET", "/me/credits", nil), 200, "SUCCESS", "")
}

func TestResourcesVerbatim(t *testing.T) {
	h := start(t, nil)
	r := h.call("GET", "/resources", nil)
	expect(t, r, 200, "SUCCESS", "")
	if !bytes.Equal(r.raw, ResourcesJSON()) {
		t.Fatalf("body differs from the §10.4 fixture:\n%s", r.raw)
	}
	var d struct {
		Hash      string `json:"hash"`
		Resources struct {
			Models []resourceModel `json:"models"`
		} `json:"resources"`
	}
	r.data(t, &d)
	if d.Hash != "r-2026-03-01-a" || len(d.Resources.Models) != 10 || d.Resources.Models[9].Model != "sora-2" || d.Resources.Models[9].AvailableRunOptions[0].Options[2] != "12" {
		t.Fatalf("resources %+v", d)
	}
}

func TestSkills(t *testing.T) {
	h := start(t, nil)
	r := h.call("GET", "/skills?q=doorbell&type=video", nil)
	expect(t, r, 200, "SUCCESS", "")
	var d struct {
		Rows []json.RawMessage `json:"rows"`
	}
	r.data(t, &d)
	if len(d.Rows) != 1 {
		t.Fatalf("rows %s", r.env.Data)
	}
	want := sorted("author", "description", "sample", "skillId", "latestPromptVersionId", "metadata", "title", "name")
	if got := keysOf(t, d.Rows[0]); !slices.Equal(got, want) {
		t.Fatalf("keys %v", got)
	}
	var row skillRow
	_ = json.Unmarshal(d.Rows[0], &row)
	if row.SkillID != doorbellPrompt || row.LatestPromptVersionID != doorbellVersion || row.Name != "doorbell-camera-hello" {
		t.Fatalf("row %s", d.Rows[0])
	}
	r = h.call("GET", "/skills?q=doorbell&type=image", nil)
	if r.data(t, &d); len(d.Rows) != 0 {
		t.Fatalf("type filter: %s", r.env.Data)
	}
	expect(t, h.call("GET", "/skills?q=x&type=audio", nil), 422, "VALIDATION_ERROR", "type")
	expect(t, h.call("GET", "/skills", nil), 422, "VALIDATION_ERROR", "q")

	r = h.call("GET", "/skills/customer-reply-drafter?version=1", nil)
	expect(t, r, 200, "SUCCESS", "")
	r.data(t, &row)
	p := findPrompt(t, "f8385f27-deab-472a-a6ca-45cd12555579")
	if row.LatestPromptVersionID != replyVersion || !jsonEqual(t, row.InputMetadata, p.Versions[0].Config) || !strings.Contains(string(row.Sample), "Warm, friendly") {
		t.Fatalf("skill %s", r.env.Data)
	}
	expect(t, h.call("GET", "/skills/no-such-skill", nil), 404, "NOT_FOUND_ERROR", "Skill not found")
	if row.Pricing != nil {
		t.Fatalf("pricing without pricing=true: %s", r.env.Data)
	}

	// The CLI's pricing flag adds the price (its shape is inferred).
	r = h.call("GET", "/skills/doorbell-camera-hello?pricing=true", nil)
	expect(t, r, 200, "SUCCESS", "")
	row = skillRow{}
	if r.data(t, &row); row.Pricing == nil || row.Pricing.EstimatedCredits != 400 {
		t.Fatalf("priced skill %s", r.env.Data)
	}
}

// The first words a person types find something: plurals find singulars
// and the other way round, in titles and descriptions.
func TestSearchMatchesPlurals(t *testing.T) {
	h := start(t, nil)
	for _, tc := range []struct{ q, route, slug string }{
		{"emails", "/prompts/publish", "cold-email-opener"},
		{"cold email", "/prompts/publish", "cold-email-opener"},
		{"pictures", "/prompts/publish", "picture-from-a-description"},
		{"image from text", "/prompts/publish", "picture-from-a-description"},
		{"app icons", "/prompts/publish", "isometric-app-icon"},
		{"headline", "/prompts/publish", "ad-headline-variants"},
		{"product clips", "/skills", "product-hero-clip"},
		{"doorbells", "/skills", "doorbell-camera-hello"},
	} {
		r := h.call("GET", tc.route+"?q="+url.QueryEscape(tc.q), nil)
		expect(t, r, 200, "SUCCESS", "")
		var d struct {
			Rows []struct {
				Slug string `json:"slug"`
				Name string `json:"name"`
			} `json:"rows"`
		}
		r.data(t, &d)
		if !slices.ContainsFunc(d.Rows, func(row struct {
			Slug string `json:"slug"`
			Name string `json:"name"`
		}) bool {
			return row.Slug == tc.slug || row.Name == tc.slug
		}) {
			t.Errorf("%s?q=%q does not find %s: %s", tc.route, tc.q, tc.slug, r.env.Data)
		}
	}
}

func TestStem(t *testing.T) {
	for in, want := range map[string]string{
		"emails": "email", "stories": "story", "boxes": "box", "sketches": "sketch", "classes": "class",
		"images": "image", "pictures": "picture", "videos": "video", "glass": "glass", "status": "status",
		"analysis": "analysis", "bus": "bus", "ties": "tie", "is": "is",
	} {
		if got := stem(in); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}
