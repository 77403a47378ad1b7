package betterprompt

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/schema"
)

// Output types stay within the four the output schema promises, whatever
// the API sends.
func TestOutputType(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   bpapi.Output
		want bpapi.OutputType
	}{
		{bpapi.Output{Type: "text", Data: "hi"}, bpapi.OutputText},
		{bpapi.Output{Type: "IMAGE", Data: "https://cdn.example/a.png"}, bpapi.OutputImage},
		{bpapi.Output{Type: "picture", Data: "https://cdn.example/a.jpg"}, bpapi.OutputImage},
		{bpapi.Output{Type: "clip", Data: "https://cdn.example/a.mp4"}, bpapi.OutputVideo},
		{bpapi.Output{Type: "markdown", Data: "# hi"}, bpapi.OutputText},
		{bpapi.Output{Type: "", Data: "https://cdn.example/file"}, bpapi.OutputText},
		{bpapi.Output{Type: "error", Data: "failed"}, bpapi.OutputError},
	}
	for _, tc := range cases {
		if got := outputType(tc.in); got != tc.want {
			t.Errorf("outputType(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// An unknown outcome says what was actually done: before the first look at
// the run list it does not claim that the list shows nothing.
func TestUnknownOutcomeSaysWhetherTheRunListWasRead(t *testing.T) {
	t.Parallel()
	d := &Toolset{}
	d.Tools(nil)
	at := time.Now().Add(time.Minute)
	cases := []struct {
		name       string
		look       *runs.Look
		want, deny string
	}{
		{name: "not read yet", look: nil, want: "has not been read yet", deny: "shows in the account's run list"},
		{name: "read, nothing there", look: &runs.Look{At: time.Now()}, want: "No run of this prompt shows in the account's run list yet", deny: "has not been read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := runs.Outcome{Handle: runs.NewHandle(time.Now(), "v"), State: runs.StateUnknown, Look: tc.look, CertainAt: at, Cause: errors.New("HTTP 502")}
			msg := d.renderNoRun(o).Value.Message
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.deny) {
				t.Errorf("message = %q; want %q and not %q", msg, tc.want, tc.deny)
			}
			if !strings.Contains(msg, at.UTC().Format(time.RFC3339)) {
				t.Errorf("message = %q; want the time the answer becomes certain", msg)
			}
		})
	}
}

// Each input is described as a person would say it: whether it is
// required, and how many choices a multi-select takes.
func TestDescribeVariable(t *testing.T) {
	n := func(i int) *int { return &i }
	opts := []schema.Option{{Value: "a"}, {Value: "b"}, {Value: "c"}}
	cases := []struct {
		v    schema.Variable
		want string
	}{
		{schema.Variable{Key: "tone", Kind: schema.KindSelect, Options: opts}, "tone (required; choose one)"},
		{schema.Variable{Key: "pick", Kind: schema.KindSelect, Multiple: true, Min: n(2), Max: n(2), Options: opts}, "pick (required; choose exactly 2,"},
		{schema.Variable{Key: "pick", Kind: schema.KindSelect, Multiple: true, Min: n(1), Max: n(3), Options: opts}, "pick (required; choose 1 to 3,"},
		{schema.Variable{Key: "pick", Kind: schema.KindSelect, Multiple: true, Min: n(2), Options: opts}, "pick (required; choose at least 2,"},
		{schema.Variable{Key: "pick", Kind: schema.KindSelect, Multiple: true, Options: opts}, "pick (required; choose one or more,"},
	}
	for _, tc := range cases {
		if got := describeVariable(tc.v); !strings.HasPrefix(got, tc.want) {
			t.Errorf("describeVariable(%+v) = %q, want it to start with %q", tc.v, got, tc.want)
		}
	}
	if got := plural(1, "prompt matches", "prompts match"); got != "1 prompt matches" {
		t.Errorf("plural(1) = %q", got)
	}
	if got := plural(3, "prompt matches", "prompts match"); got != "3 prompts match" {
		t.Errorf("plural(3) = %q", got)
	}
}

// Progress while polling counts from the run's start, so that a get_run
// that follows a long run says how long the run has taken.
func TestPollingProgressCountsFromTheRunsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := time.Now()
		time.Sleep(90 * time.Second)
		got := narrate(runs.Note{Phase: runs.PhasePolling, ID: "r1", Status: runs.Running, Started: started})
		if got != "Run r1 is running (1m30s since it started)" {
			t.Errorf("narrate = %q", got)
		}
		if got := narrate(runs.Note{Phase: runs.PhasePolling, ID: "r1"}); got != "Run r1 is being read" {
			t.Errorf("narrate before a reading = %q", got)
		}
	})
}

// A media link's expiry is the one the link states, when it states one.
func TestLinkExpiry(t *testing.T) {
	fallback := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		link string
		want time.Time
	}{
		{"https://cdn.example/files/r/1.png?expires=1764633600", time.Unix(1764633600, 0)},
		{"https://s3.example/a.png?X-Amz-Date=20261201T100000Z&X-Amz-Expires=86400&X-Amz-Signature=x", time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)},
		{"https://cdn.example/a.png", fallback},
		{"https://cdn.example/a.png?expires=soon", fallback},
		{"::not a url", fallback},
	}
	for _, tc := range cases {
		if got := linkExpiry(tc.link, fallback); !got.Equal(tc.want) {
			t.Errorf("linkExpiry(%s) = %v, want %v", tc.link, got, tc.want)
		}
	}
}
