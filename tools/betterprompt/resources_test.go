package betterprompt_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// readResource reads uri through the client; err is the protocol error.
func readResource(t *testing.T, e *env, uri string) (string, error) {
	t.Helper()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := e.client.ReadResource(context.Background(), req)
	if err != nil {
		return "", err
	}
	if len(res.Contents) != 1 {
		t.Fatalf("%d contents", len(res.Contents))
	}
	tc, ok := res.Contents[0].(mcp.TextResourceContents)
	if !ok || tc.MIMEType != "application/json" || tc.URI != uri {
		t.Fatalf("contents %#v", res.Contents[0])
	}
	return tc.Text, nil
}

// A prompt and a run are resources too: listed as templates, read as the
// JSON that get_prompt and get_run return, and a bad id is a read error
// that says what went wrong.
func TestPromptAndRunResources(t *testing.T) {
	e := newEnv(t)
	list, err := e.client.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, tpl := range list.ResourceTemplates {
		uris = append(uris, tpl.URITemplate.Raw())
	}
	if strings.Join(uris, " ") != "betterprompt://prompts/{prompt_id} betterprompt://runs/{run_id}" {
		t.Errorf("templates %v", uris)
	}

	body, err := readResource(t, e, "betterprompt://prompts/cold-email-opener")
	if err != nil {
		t.Fatal(err)
	}
	var p betterprompt.GetPromptOutput
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Title != "Cold Email Opener" || p.EstimatedCredits == nil ||
		!strings.Contains(body, `"input_schema"`) {
		t.Errorf("prompt resource: %v\n%s", err, body)
	}

	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
	mustOK(t, res)
	var run betterprompt.RunView
	structured(t, res, &run)
	body, err = readResource(t, e, "betterprompt://runs/"+run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var got betterprompt.RunView
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.RunID != run.RunID || got.Status != run.Status {
		t.Errorf("run resource: %v\n%s", err, body)
	}
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("%d POSTs", n)
	}

	_, err = readResource(t, e, "betterprompt://runs/not-a-run")
	if err == nil || !strings.Contains(err.Error(), "run_id") {
		t.Errorf("a bad run id: %v", err)
	}
}

// run_prompt and get_run show their results in the run viewer (MCP Apps),
// which the server then serves as a resource.
func TestRunViewerIsDeclaredAndServed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	list, err := e.client.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		b, _ := json.Marshal(tool)
		declares := strings.Contains(string(b), `"_meta":{"ui":{"resourceUri":"ui://bpmcp/run-viewer"}}`)
		if want := tool.Name == "run_prompt" || tool.Name == "get_run"; declares != want {
			t.Errorf("%s declares the viewer: %v", tool.Name, declares)
		}
	}
	resources, err := e.client.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil || len(resources.Resources) != 1 || resources.Resources[0].URI != "ui://bpmcp/run-viewer" ||
		resources.Resources[0].MIMEType != "text/html;profile=mcp-app" {
		t.Fatalf("resources/list: %v %+v", err, resources)
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "ui://bpmcp/run-viewer"
	read, err := e.client.ReadResource(ctx, req)
	if err != nil || len(read.Contents) != 1 || !strings.Contains(read.Contents[0].(mcp.TextResourceContents).Text, "ui/initialize") {
		t.Errorf("resources/read: %v", err)
	}
}

// The lists carry cache hints for 2026-07-28 clients (the same for every
// caller), tools come in a fixed order, and the server has an icon.
func TestListPolish(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.client.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first.TTLMs == nil || *first.TTLMs != 3600000 || first.CacheScope != mcp.CacheScopePublic {
		t.Errorf("tools/list cache hints: ttl %v scope %q", first.TTLMs, first.CacheScope)
	}
	again, _ := e.client.ListTools(ctx, mcp.ListToolsRequest{})
	var a, b []string
	for i := range first.Tools {
		a, b = append(a, first.Tools[i].Name), append(b, again.Tools[i].Name)
	}
	if strings.Join(a, ",") != strings.Join(b, ",") || !slices.IsSorted(a) {
		t.Errorf("tool order %v then %v", a, b)
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "ui://bpmcp/run-viewer"
	read, err := e.client.ReadResource(ctx, req)
	if err != nil || read.TTLMs != nil && *read.TTLMs > 0 {
		t.Errorf("resources/read carries a cache hint: %v %v", err, read.TTLMs)
	}
}

// inline_images embeds previews of an image run's outputs (JPEG image
// content, the links kept); without it, and without the server setting,
// there are none.
func TestInlineImagePreviews(t *testing.T) {
	e := newEnv(t)
	args := map[string]any{"prompt_version_id": appIconVersion, "wait_seconds": 20,
		"inputs": map[string]any{"textInputs": map[string]any{"app_concept": "a tea timer", "style": "clay"}}}
	count := func(res *mcp.CallToolResult) (images, links int) {
		for _, c := range res.Content {
			switch c := c.(type) {
			case mcp.ImageContent:
				if c.MIMEType == "image/jpeg" && c.Data != "" {
					images++
				}
			case mcp.ResourceLink:
				links++
			}
		}
		return images, links
	}
	res := e.call(t, "run_prompt", args)
	mustOK(t, res)
	if images, links := count(res); images != 0 || links == 0 {
		t.Errorf("by default: %d previews, %d links", images, links)
	}
	var run betterprompt.RunView
	structured(t, res, &run)
	res = e.call(t, "get_run", map[string]any{"run_id": run.RunID, "inline_images": true})
	mustOK(t, res)
	if images, links := count(res); images == 0 || images != links {
		t.Errorf("with inline_images: %d previews, %d links", images, links)
	}
}
