// Package viewer is the run viewer, an MCP App (SEP-1865): one
// self-contained HTML page that hosts with MCP Apps show in place of a
// run's or a generation's result (text, images, video, credits, expiry),
// and that refreshes an unfinished one by calling get_run or
// betterwaifu_get_generation through the host. Hosts without MCP Apps see
// the tools' results as before.
//
// The page speaks the few messages of the protocol it needs by hand
// (ui/initialize, ui/notifications/initialized, tool-input, tool-result,
// size-changed, tools/call) instead of bundling @modelcontextprotocol/ext-apps:
// that keeps it under 20 KB, free of a build step, and readable here.
package viewer

import (
	"context"
	_ "embed"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// URI is the viewer's resource, which the tools that show runs declare in
// _meta.ui.resourceUri.
const URI = "ui://bpmcp/run-viewer"

// MIMEType marks an MCP App's HTML.
const MIMEType = "text/html;profile=mcp-app"

//go:embed viewer.html
var page string

// HTML returns the viewer's page.
func HTML() string { return page }

// Meta is a tool's _meta entry that shows its results in the viewer.
func Meta() *mcp.Meta {
	return &mcp.Meta{AdditionalFields: map[string]any{"ui": map[string]any{"resourceUri": URI}}}
}

// Resource is the viewer as an MCP resource. mediaOrigins are the origins
// it loads images and videos from, declared in its content security policy
// (the host blocks any other); the page itself fetches nothing.
func Resource(mediaOrigins []string) server.ServerResource {
	ui := map[string]any{
		"csp":           map[string]any{"resourceDomains": mediaOrigins, "connectDomains": []string{}},
		"prefersBorder": true,
	}
	res := mcp.NewResource(URI, "Run viewer", mcp.WithResourceDescription("Shows a BetterPrompt run or a BetterWaifu "+
		"generation: text, images, video, credits and expiry."), mcp.WithMIMEType(MIMEType))
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"ui": ui}}
	return server.ServerResource{Resource: res, Handler: func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: URI, MIMEType: MIMEType, Text: page,
			Meta: map[string]any{"ui": ui}}}, nil
	}}
}
