package mcpserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/calltrace"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// newTracedEnv is newHTTPEnv with the trace written to the returned buffer.
func newTracedEnv(t *testing.T, opts HTTPOptions, fo fakeapi.Options) (*httpEnv, *syncbuf.Buffer) {
	t.Helper()
	fo.Catalogue, fo.SyncWindow, fo.TimeScale = loadCatalogue(t), 10*time.Second, 0.05
	fake, base := fakeapi.NewTestServer(t, fo)
	deps := &betterprompt.Toolset{
		Client:         bpapi.New(bpapi.Options{BaseURL: base, APIKey: serverKey}),
		PerRequestKeys: opts.PerRequestKeys,
		Wait:           betterprompt.WaitConfig{Default: 5 * time.Second, PollMin: 20 * time.Millisecond, PollMax: 100 * time.Millisecond},
	}
	opts.Toolsets = []tools.Toolset{deps}
	var trace syncbuf.Buffer
	srv := New("test", opts.Toolsets, WithTrace(calltrace.NewWriter(&trace)))
	tr := newHTTPTransport(srv, opts)
	ts := httptest.NewServer(tr.handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tr.streamable.Shutdown(ctx)
		ts.Close()
		_ = deps.Drain(ctx)
	})
	return &httpEnv{fake: fake, deps: deps, url: ts.URL + "/mcp", mcp: srv, transport: tr}, &trace
}

// A caller that names its episode with its own key (a harness grouping
// calls by key) does not find the key in the trace.
func TestTraceRedactsAKeyGivenAsTheEpisode(t *testing.T) {
	t.Parallel()
	e, trace := newTracedEnv(t, HTTPOptions{PerRequestKeys: true},
		fakeapi.Options{Keys: map[string]fakeapi.Key{aliceKey: {Credits: 222}}})
	alice := e.mcpClient(t, map[string]string{betterprompt.KeyHeader: aliceKey, EpisodeHeader: aliceKey})
	if res := callTool(t, alice, "get_credits", nil); res.IsError {
		t.Fatalf("get_credits: %s", resultText(res))
	}
	if got := trace.String(); got == "" || strings.Contains(got, aliceKey) {
		t.Errorf("the trace holds the caller's key (or nothing):\n%s", got)
	}
}

// In the sandbox's episode mode, an X-Bpmcp-Episode that cannot name an
// episode (too long, not printable ASCII, blank) is refused: it must not
// put the caller on the sandbox's shared account, among every other
// caller's runs and credits.
func TestAnUnusableEpisodeIsRefusedNotShared(t *testing.T) {
	t.Parallel()
	const prefix = "bp_episode."
	e, _ := newTracedEnv(t, HTTPOptions{EpisodeKey: func(header, episode string) secret.String {
		if header != betterprompt.KeyHeader {
			return ""
		}
		return secret.String(prefix + episode)
	}}, fakeapi.Options{
		Keys: map[string]fakeapi.Key{serverKey: {Credits: 5000}},
		NewAccount: func(key string) (fakeapi.Key, bool) {
			return fakeapi.Key{Credits: 100}, strings.HasPrefix(key, prefix)
		},
	})
	for name, id := range map[string]string{"too long": strings.Repeat("e", 129), "not ASCII": "épisode-1", "blank": "  "} {
		resp := e.post(t, map[string]string{EpisodeHeader: id}, "")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s episode: HTTP %d, want 400", name, resp.StatusCode)
		}
	}
	// A usable episode works on its own account.
	c := e.mcpClient(t, map[string]string{EpisodeHeader: "episode-1"})
	if res := callTool(t, c, "get_credits", nil); res.IsError || !strings.Contains(resultText(res), "100") {
		t.Errorf("episode-1: %s", resultText(res))
	}
}
