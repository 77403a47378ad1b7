package viewer_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/tools/viewer"
)

// The viewer is one self-contained page: it loads no script, style or
// font from anywhere and fetches nothing; only media come from outside,
// from the origins its resource declares in its content security policy.
func TestViewerIsSelfContained(t *testing.T) {
	page := viewer.HTML()
	for _, re := range []string{`<script[^>]+src=`, `<link[^>]+href=`, `@import`, `fetch\(`, `XMLHttpRequest`, `WebSocket`,
		`innerHTML`, `outerHTML`, `insertAdjacentHTML`, `document\.write`, `eval\(`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("the page uses %s", re)
		}
	}
	if len(page) > 20*1024 {
		t.Errorf("the page is %d bytes", len(page))
	}
	res := viewer.Resource([]string{"https://media.example"})
	if res.Resource.URI != viewer.URI || res.Resource.MIMEType != viewer.MIMEType {
		t.Errorf("resource %+v", res.Resource)
	}
	contents, err := res.Handler(context.Background(), mcp.ReadResourceRequest{})
	if err != nil || len(contents) != 1 {
		t.Fatal(err)
	}
	tc := contents[0].(mcp.TextResourceContents)
	meta, _ := json.Marshal(tc.Meta)
	if tc.Text != page || tc.MIMEType != "text/html;profile=mcp-app" || !strings.Contains(string(meta), `"resourceDomains":["https://media.example"]`) {
		t.Errorf("contents %s %s", tc.MIMEType, meta)
	}
}
