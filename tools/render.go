package tools

import (
	"fmt"
	"mime"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/mark3labs/mcp-go/mcp"
)

// outputURLLifetime is how long the API keeps image and video URLs valid.
const outputURLLifetime = 24 * time.Hour

// renderOutcome turns what a wait learned into the tool result: the run view
// as structuredContent, and content every host can use: one text item per
// text output and, for each image or video, a text line with its URL and
// expiry (hosts that drop other content types still get it) plus a
// resource_link.
func (d *Deps) renderOutcome(o waitOutcome) result[RunView] {
	if o.run == nil {
		v := RunView{RunID: o.handle, PromptVersionID: o.version, Status: string(bpapi.RunQueued), Outputs: []OutputView{}}
		v.Message = fmt.Sprintf("The run was submitted and BetterPrompt is still working on it. Call get_run with run_id=%s to wait for the result.", o.handle)
		return result[RunView]{Value: v, Content: textContent(v.Message)}
	}
	run := o.run
	v := RunView{
		RunID: run.RunID, PromptVersionID: run.PromptVersionID, Status: string(run.Status),
		Outputs: make([]OutputView, 0, len(run.Outputs)), Credits: run.Cost(),
	}
	expires := expiryOf(run)
	for _, out := range run.Outputs {
		ov := OutputView{Type: string(outputType(out)), Data: out.Data}
		if out.Type == bpapi.OutputImage || out.Type == bpapi.OutputVideo {
			ov.MimeType = mimeTypeOf(out.Data, out.Type)
			ov.ExpiresAt = expires.UTC().Format(time.RFC3339)
		}
		v.Outputs = append(v.Outputs, ov)
	}
	if !run.Status.Final() {
		v.Message = fmt.Sprintf("The run is %s. Call get_run with run_id=%s to wait for the result.", run.Status, run.RunID)
	}
	content := []mcp.Content{mcp.NewTextContent(runHeadline(v, d.Sandbox))}
	var errorsSeen []string
	media := 0
	for _, ov := range v.Outputs {
		switch ov.Type {
		case string(bpapi.OutputText):
			content = append(content, mcp.NewTextContent(ov.Data))
		case string(bpapi.OutputImage), string(bpapi.OutputVideo):
			media++
			validity := fmt.Sprintf("link valid until about %s, 24 h after generation", ov.ExpiresAt)
			if time.Now().After(expires) {
				validity = fmt.Sprintf("this link has probably expired: BetterPrompt keeps outputs for 24 h and this run was created %s", run.CreatedAt)
			}
			content = append(content, mcp.NewTextContent(fmt.Sprintf("%s %d: %s (%s)", titleCase(ov.Type), media, ov.Data, validity)))
			link := mcp.NewResourceLink(ov.Data, fileName(ov.Data, ov.Type, media), "generated "+ov.Type+", link expires 24 h after generation", ov.MimeType)
			content = append(content, link)
		case string(bpapi.OutputError):
			errorsSeen = append(errorsSeen, ov.Data)
			content = append(content, mcp.NewTextContent("Error: "+ov.Data))
		default:
			content = append(content, mcp.NewTextContent(fmt.Sprintf("Output of type %q: %s", ov.Type, ov.Data)))
		}
	}
	isError := run.Status == bpapi.RunFailed
	if isError {
		reason := "BetterPrompt reported no reason"
		if len(errorsSeen) > 0 {
			reason = strings.TrimRight(strings.Join(errorsSeen, "; "), ". ")
		}
		v.Message = fmt.Sprintf("The run failed: %s. run_id=%s. Check the inputs with get_prompt before trying again; a new run spends credits again.", reason, run.RunID)
		content = append(content, mcp.NewTextContent(v.Message))
	}
	return result[RunView]{Value: v, Content: content, IsError: isError}
}

func runHeadline(v RunView, sandbox bool) string {
	var s string
	switch v.Status {
	case string(bpapi.RunSucceeded):
		s = fmt.Sprintf("Run %s succeeded (%d credits).", v.RunID, v.Credits)
	case string(bpapi.RunFailed):
		s = fmt.Sprintf("Run %s failed (%d credits).", v.RunID, v.Credits)
	default:
		s = v.Message
	}
	if sandbox {
		s += " [sandbox: simulated output; only sandbox credits were spent]"
	}
	return s
}

// expiryOf estimates when a run's media URLs stop working: 24 h after
// generation, which happens after the run was created, so createdAt + 24 h
// is the earliest it can be.
func expiryOf(run *bpapi.Run) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, run.CreatedAt); err == nil {
		return t.Add(outputURLLifetime)
	}
	return time.Now().Add(outputURLLifetime)
}

// outputType reads an output's type, keeping to the four documented ones
// (the output schema promises them): an unknown type is an image or a
// video when its data is a URL of one, and text otherwise.
func outputType(o bpapi.Output) bpapi.OutputType {
	t := bpapi.OutputType(strings.ToLower(strings.TrimSpace(string(o.Type))))
	switch t {
	case bpapi.OutputText, bpapi.OutputImage, bpapi.OutputVideo, bpapi.OutputError:
		return t
	}
	if strings.HasPrefix(o.Data, "http://") || strings.HasPrefix(o.Data, "https://") {
		switch m := mimeTypeOf(o.Data, ""); {
		case strings.HasPrefix(m, "image/"):
			return bpapi.OutputImage
		case strings.HasPrefix(m, "video/"):
			return bpapi.OutputVideo
		}
	}
	return bpapi.OutputText
}

// mimeTypeOf guesses a media type from the URL's extension.
func mimeTypeOf(raw string, t bpapi.OutputType) string {
	p := raw
	if u, err := url.Parse(raw); err == nil {
		p = u.Path
	}
	switch ext := strings.ToLower(path.Ext(p)); ext {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".mov":
		return "video/quicktime"
	default:
		if m := mime.TypeByExtension(ext); m != "" && (t == "" || strings.HasPrefix(m, string(t)+"/")) {
			return m
		}
		return ""
	}
}

func fileName(raw string, t string, n int) string {
	if u, err := url.Parse(raw); err == nil {
		if base := path.Base(u.Path); base != "." && base != "/" && base != "" {
			return base
		}
	}
	return fmt.Sprintf("%s-%d", t, n)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
