package betterprompt

import (
	"fmt"
	"mime"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/tools"
)

// outputURLLifetime is how long the API keeps image and video URLs valid.
const outputURLLifetime = 24 * time.Hour

// renderOutcome turns what a wait learned into the tool result: the run view
// as structuredContent, and content every host can use: one text item per
// text output and, for each image or video, a text line with its URL and
// expiry (hosts that drop other content types still get it) plus a
// resource_link.
func (d *Toolset) renderOutcome(o runs.Outcome) tools.Result[RunView] {
	if o.Job == nil {
		return d.renderNoRun(o)
	}
	run := runOf(o.Job)
	v := RunView{
		RunID: run.RunID, PromptVersionID: run.PromptVersionID, Status: string(run.Status), Confirmed: true,
		Outputs: make([]OutputView, 0, len(run.Outputs)),
	}
	if run.Status.Final() {
		cost := run.Cost()
		v.Credits = &cost
	}
	expires := expiryOf(run)
	for _, out := range run.Outputs {
		ov := OutputView{Type: string(outputType(out)), Data: out.Data}
		if out.Type == bpapi.OutputImage || out.Type == bpapi.OutputVideo {
			ov.MimeType = mimeTypeOf(out.Data, out.Type)
			ov.ExpiresAt = linkExpiry(out.Data, expires).UTC().Format(time.RFC3339)
		}
		v.Outputs = append(v.Outputs, ov)
	}
	if !run.Status.Final() {
		v.Message = fmt.Sprintf("The run is %s. Call get_run with run_id=%s to wait for the result.", run.Status, run.RunID)
		if o.Stopping {
			v.Message = fmt.Sprintf("The server is shutting down; the run is %s and goes on. Call get_run with run_id=%s to wait for the result.", run.Status, run.RunID)
		}
	}
	isError := run.Status == bpapi.RunFailed
	content := []mcp.Content{mcp.NewTextContent(runHeadline(v, d.Sandbox))}
	var errorsSeen []string
	media := 0
	for _, ov := range v.Outputs {
		switch ov.Type {
		case string(bpapi.OutputText):
			content = append(content, mcp.NewTextContent(ov.Data))
		case string(bpapi.OutputImage), string(bpapi.OutputVideo):
			media++
			until := linkExpiry(ov.Data, expires)
			validity := fmt.Sprintf("link valid until about %s, 24 h after generation", ov.ExpiresAt)
			if time.Now().After(until) {
				validity = fmt.Sprintf("this link has probably expired: BetterPrompt keeps outputs for 24 h and this run was created %s", run.CreatedAt)
			}
			content = append(content, mcp.NewTextContent(fmt.Sprintf("%s %d: %s (%s)", titleCase(ov.Type), media, ov.Data, validity)))
			link := mcp.NewResourceLink(ov.Data, fileName(ov.Data, ov.Type, media), "generated "+ov.Type+", link expires 24 h after generation", ov.MimeType)
			content = append(content, link)
		case string(bpapi.OutputError):
			errorsSeen = append(errorsSeen, ov.Data)
			if !isError { // a failed run's message below says it once
				content = append(content, mcp.NewTextContent("Error: "+ov.Data))
			}
		default:
			content = append(content, mcp.NewTextContent(fmt.Sprintf("Output of type %q: %s", ov.Type, ov.Data)))
		}
	}
	if isError {
		reason := "BetterPrompt reported no reason"
		if len(errorsSeen) > 0 {
			reason = strings.TrimRight(strings.Join(errorsSeen, "; "), ". ")
		}
		v.Message = fmt.Sprintf("The run failed: %s. run_id=%s. Check the inputs with get_prompt before trying again; a new run spends credits again.", reason, run.RunID)
		content = append(content, mcp.NewTextContent(v.Message))
	}
	return tools.Result[RunView]{Value: v, Content: content, IsError: isError}
}

// maxCandidates bounds the candidate runs listed in one result.
const maxCandidates = 20

// renderNoRun renders what is known of a run that is not known for
// certain: submitted and still held by the API, not started, or
// unconfirmed (with the runs that may be the call's own).
func (d *Toolset) renderNoRun(o runs.Outcome) tools.Result[RunView] {
	v := RunView{RunID: o.Handle, PromptVersionID: o.Kind, Outputs: []OutputView{}, Confirmed: true}
	isError := false
	var b strings.Builder
	switch o.State {
	case runs.StateNotStarted:
		v.Status, isError = "not_started", true
		fmt.Fprintf(&b, "No run was started: %s, and no run of this prompt showed in the account's run list by %s, when "+
			"any run it started would show. Nothing was charged; it is safe to call run_prompt again.",
			d.whyUnknown(o), o.CertainAt.UTC().Format(time.RFC3339))
	case runs.StateUnknown:
		v.Status, v.Confirmed = "unconfirmed", false
		certainAt := o.CertainAt
		inSeconds := max(int(time.Until(certainAt).Seconds()+0.999), 0)
		switch {
		case o.LookErr != nil && (o.Look == nil || len(o.Look.Candidates) == 0):
			fmt.Fprintf(&b, "Whether a run was started is still not known: %s, and the account's run list could not be read (%s). "+
				"Do not start the prompt again yet: ask the user to look in the account's runs of this prompt from around %s, "+
				"or call get_run with run_id=%s later, which reads the list again.",
				d.whyUnknown(o), briefError(o.LookErr), o.Submitted.UTC().Format(time.RFC3339), o.Handle)
		case o.Look == nil:
			fmt.Fprintf(&b, "It is not known yet whether a run was started: %s. The account's run list has not been read yet; "+
				"it will be certain at %s (in %d s). Do not start the prompt again before then: call get_run with run_id=%s, which reads it.",
				d.whyUnknown(o), certainAt.UTC().Format(time.RFC3339), inSeconds, o.Handle)
		case len(o.Look.Candidates) == 0:
			fmt.Fprintf(&b, "It is not known yet whether a run was started: %s. No run of this prompt shows in the account's "+
				"run list yet; it will be certain at %s (in %d s). Do not start the prompt again before then: call get_run with run_id=%s then.",
				d.whyUnknown(o), certainAt.UTC().Format(time.RFC3339), inSeconds, o.Handle)
		default:
			fmt.Fprintf(&b, "Whether this call started one of the runs below cannot be told: %s, and other clients using the same "+
				"API key may have started runs of the same prompt (the run list does not say who started a run). ", d.whyUnknown(o))
			if o.Look.Final {
				b.WriteString("Do not start the prompt again: ask the user which run is theirs, or read one with get_run and its run_id.")
			} else {
				fmt.Fprintf(&b, "Do not start the prompt again: ask the user, or read one with get_run and its run_id; call get_run "+
					"with run_id=%s after %s for the final list.", o.Handle, certainAt.UTC().Format(time.RFC3339))
			}
			v.Candidates = make([]CandidateView, 0, len(o.Look.Candidates))
			for i := range o.Look.Candidates[:min(len(o.Look.Candidates), maxCandidates)] {
				r := runOf(&o.Look.Candidates[i])
				v.Candidates = append(v.Candidates, CandidateView{RunID: r.RunID, CreatedAt: r.CreatedAt, Status: string(r.Status)})
				fmt.Fprintf(&b, "\n- run_id=%s created %s, %s", r.RunID, r.CreatedAt, r.Status)
			}
		}
	default: // submitted; the API still holds the request
		v.Status = string(bpapi.RunQueued)
		fmt.Fprintf(&b, "The run was submitted and BetterPrompt is still working on it. Call get_run with run_id=%s to wait for the result.", o.Handle)
		if o.Stopping {
			b.Reset()
			fmt.Fprintf(&b, "The server is shutting down; the run was submitted and goes on. Call get_run with run_id=%s to wait for "+
				"the result (if this server instance no longer knows it, get_run lists the runs started at that moment). Do not call run_prompt again for it.", o.Handle)
		}
	}
	v.Message = b.String()
	res := tools.Text(v, v.Message)
	res.IsError = isError
	return res
}

// whyUnknown says in a few words why a call does not know its run.
func (d *Toolset) whyUnknown(o runs.Outcome) string {
	switch {
	case o.Foreign:
		return "this server instance does not know run_id " + o.Handle + " (it was handed out before a restart, or by another instance)"
	case o.Cause != nil:
		return "the request that starts it failed after it may have reached BetterPrompt (" + briefError(o.Cause) + ")"
	}
	return "the request that starts it got no usable answer"
}

// deref returns *p, or 0 for nil.
func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func runHeadline(v RunView, sandbox bool) string {
	var s string
	switch v.Status {
	case string(bpapi.RunSucceeded):
		s = fmt.Sprintf("Run %s succeeded (%d credits).", v.RunID, deref(v.Credits))
	case string(bpapi.RunFailed):
		s = fmt.Sprintf("Run %s failed (%d credits).", v.RunID, deref(v.Credits))
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
// linkExpiry is when a media link stops working: the expiry the link
// carries itself, when it says (an expires=<unix> parameter, or an S3
// presigned X-Amz-Date plus X-Amz-Expires), and otherwise fallback (24 h
// after the run was created).
func linkExpiry(link string, fallback time.Time) time.Time {
	u, err := url.Parse(link)
	if err != nil {
		return fallback
	}
	q := u.Query()
	for _, name := range []string{"expires", "Expires"} {
		if unix, err := strconv.ParseInt(q.Get(name), 10, 64); err == nil && unix > 0 {
			return time.Unix(unix, 0)
		}
	}
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	seconds, err2 := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err == nil && err2 == nil && seconds > 0 {
		return signed.Add(time.Duration(seconds) * time.Second)
	}
	return fallback
}

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
