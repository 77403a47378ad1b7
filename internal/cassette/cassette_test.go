package cassette

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/secret"
)

func TestMatchKey(t *testing.T) {
	base := matchKey("betterprompt", "POST", "/v1/runs", "limit=5&since=1", []byte(`{"a":1,"b":[1,2]}`))
	tests := []struct {
		name  string
		key   string
		equal bool
	}{
		{"key order and spacing", matchKey("betterprompt", "POST", "/v1/runs", "limit=5&since=1", []byte(` { "b":[1,2], "a":1 }`)), true},
		{"the time window", matchKey("betterprompt", "POST", "/v1/runs", "since=99&limit=5&until=100", []byte(`{"a":1,"b":[1,2]}`)), true},
		{"another body", matchKey("betterprompt", "POST", "/v1/runs", "limit=5", []byte(`{"a":2,"b":[1,2]}`)), false},
		{"another query", matchKey("betterprompt", "POST", "/v1/runs", "limit=6", []byte(`{"a":1,"b":[1,2]}`)), false},
		{"another method", matchKey("betterprompt", "GET", "/v1/runs", "limit=5", []byte(`{"a":1,"b":[1,2]}`)), false},
		{"another API", matchKey("betterwaifu", "POST", "/v1/runs", "limit=5", []byte(`{"a":1,"b":[1,2]}`)), false},
	}
	for _, tt := range tests {
		if got := tt.key == base; got != tt.equal {
			t.Errorf("%s: equal = %v, want %v", tt.name, got, tt.equal)
		}
	}
	// Two seeds a float64 cannot tell apart are two requests.
	if matchKey("betterwaifu", "POST", "/api/v1/generate", "", []byte(`{"seed":9007199254740993}`)) ==
		matchKey("betterwaifu", "POST", "/api/v1/generate", "", []byte(`{"seed":9007199254740992}`)) {
		t.Error("seeds 2^53+1 and 2^53 match the same recording")
	}
}

// Recording through a client writes each exchange without its key;
// replaying serves them in order per caller, the last again, and names a
// request it has no recording of.
func TestRecordAndReplay(t *testing.T) {
	const key = "bp_CASSETTECANARY_123456"
	polls := 0
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/runs/r1":
			polls++
			status := "running"
			if polls > 1 {
				status = "succeeded"
			}
			_, _ = io.WriteString(w, `{"status":"SUCCESS","data":{"runStatus":"`+status+`","echo":"`+r.Header.Get("Authorization")+`"}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	dir := t.TempDir()
	rec, err := NewRecorder(dir, secret.String("bp_other_server_key"))
	if err != nil {
		t.Fatal(err)
	}
	c := rec.Client("betterprompt", nil)
	get := func(c *http.Client, base, path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", auth)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 2 {
		if _, body := get(c, api.URL, "/v1/runs/r1", "Bearer "+key); !strings.Contains(body, key) {
			t.Fatalf("the client got %s: the recorder must pass the answer on untouched", body)
		}
	}
	rec.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 2 {
		t.Fatalf("%d files, want 2", len(files))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), key) {
			t.Fatalf("%s holds the key:\n%s", f, b)
		}
	}

	p, err := Load(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler("betterprompt"))
	defer srv.Close()
	for _, caller := range []string{"Bearer a", "Bearer b"} { // each from the start
		for i, want := range []string{"running", "succeeded", "succeeded"} {
			if _, body := get(http.DefaultClient, srv.URL, "/v1/runs/r1", caller); !strings.Contains(body, want) {
				t.Errorf("%s, reading %d: %s, want %s", caller, i+1, body, want)
			}
		}
	}
	status, body := get(http.DefaultClient, srv.URL, "/v1/runs/r2", "Bearer a")
	if status != http.StatusBadRequest || !strings.Contains(body, "no recording of GET /v1/runs/r2") || p.Misses() != 1 {
		t.Errorf("a miss: %d %s (misses %d)", status, body, p.Misses())
	}
}

// A caller idle for callerIdle loses its place (and its memory) at the
// next request of anyone.
func TestIdleCallersAreForgotten(t *testing.T) {
	in := &Interaction{API: "betterprompt", Method: "GET", Path: "/v1/me", Status: 200}
	k := matchKey(in.API, in.Method, in.Path, "", nil)
	p := &Replayer{byKey: map[string][]*Interaction{k: {in, in}}, callers: map[string]*callerState{}}
	p.next("old", k)
	p.callers["old"].last = time.Now().Add(-callerIdle - time.Second)
	p.lastSweep = time.Time{} // the sweep runs at most once a minute
	p.next("new", k)
	if _, ok := p.callers["old"]; ok || len(p.callers) != 1 {
		t.Errorf("callers after the sweep: %v", p.callers)
	}
}

// A recording that cannot be written must not cost the client its answer:
// the answer to POST /v1/runs carries the id of a run that is paid for.
func TestRecordWriteFailureKeepsTheAnswer(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"SUCCESS","data":{"runId":"run-paid-1"}}`)
	}))
	defer api.Close()
	dir := filepath.Join(t.TempDir(), "cassette")
	rec, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil { // the disk goes away: nothing can be written
		t.Fatal(err)
	}
	resp, err := rec.Client("betterprompt", nil).Post(api.URL+"/v1/runs", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("the client lost the answer to a request the API served: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "run-paid-1") {
		t.Errorf("the client got %s", b)
	}
	rec.Close()
}

// An answer cut short reaches the client as a failed read, as it would
// without the recorder (the API client retries a read cut short).
func TestRecordKeepsAReadFailure(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, `{"status":`)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer api.Close()
	rec, err := NewRecorder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	resp, err := rec.Client("betterprompt", nil).Get(api.URL + "/v1/runs/r1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("reading an answer cut short succeeded through the recorder (%q); want the read's error", b)
	}
}

// Nothing the recorder writes holds a key: not a path, not a header, not a
// media link or the reason its download failed.
func TestRecordRedactsEveryField(t *testing.T) {
	const key = "bp_PATHCANARY_0123456789"
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = io.WriteString(w, "\x89PNG fake")
	}))
	defer media.Close()
	dead := "http://127.0.0.1:1/gone.png?token=" + key // nothing listens: the download fails
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Action-Require", "update-resources "+key)
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"status":"NOT_FOUND","message":"no run","data":{"outputs":["`+
			media.URL+`/out/a.png?token=`+key+`","`+dead+`"]}}`)
	}))
	defer api.Close()
	dir := t.TempDir()
	rec, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", api.URL+"/v1/runs/"+key, nil) // a key pasted as a run id
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := rec.Client("betterprompt", nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	rec.Close()
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 2 {
		t.Fatalf("files %v, want the interaction and one media file", files)
	}
	for _, f := range files {
		if strings.Contains(f, key) {
			t.Errorf("the file name %s holds the key", f)
		}
		if b, _ := os.ReadFile(f); strings.Contains(string(b), key) {
			t.Errorf("%s holds the key:\n%s", f, b)
		}
	}

	// The downloaded file is still what the replayed answer links to.
	p, err := Load(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler("betterprompt"))
	defer srv.Close()
	var in *Interaction
	for _, list := range p.byKey {
		in = list[0]
	}
	r2, err := http.Get(srv.URL + in.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	if b, _ := io.ReadAll(r2.Body); !strings.Contains(string(b), srv.URL+"/media/") {
		t.Errorf("the replayed answer does not link to the local copy: %s", b)
	}
}

// The server's keys are redacted as the API clients send them: trimmed,
// without a "Bearer " prefix (a key read from a file often ends in a
// newline), also in the other API's exchanges.
func TestRecordRedactsServerKeysAsSent(t *testing.T) {
	const bwKey = "bw_NEWLINECANARY_987654"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	defer api.Close()
	dir := t.TempDir()
	rec, err := NewRecorder(dir, secret.String("bp_server_key"), secret.String("Bearer "+bwKey+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", api.URL+"/v1/runs", strings.NewReader(`{"inputs":{"note":"my waifu key is `+bwKey+`"}}`))
	req.Header.Set("Authorization", "Bearer bp_server_key")
	resp, err := rec.Client("betterprompt", nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	rec.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), bwKey) {
			t.Errorf("%s holds the BetterWaifu key:\n%s", f, b)
		}
	}
}

// Output files are downloaded from run answers only, once however often
// they are linked; an answer too large to record reaches the client whole.
func TestRecorderMediaAndLargeAnswers(t *testing.T) {
	var downloads int
	var api *httptest.Server
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/out.png":
			downloads++
			w.Header().Set("Content-Type", "image/png")
			_, _ = io.WriteString(w, "PNG")
		case "/v1/runs/r1", "/v1/prompts":
			_, _ = io.WriteString(w, `{"data":{"url":"`+api.URL+`/files/out.png"}}`)
		case "/v1/big":
			_, _ = io.WriteString(w, strings.Repeat("x", 100)) // over maxAnswer
		}
	}))
	defer api.Close()
	old := maxAnswer
	maxAnswer = 80 // the run answers are about 55 bytes
	defer func() { maxAnswer = old }()
	dir := t.TempDir()
	rec, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := rec.Client("betterprompt", nil)
	read := func(path string) string {
		resp, err := c.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	read("/v1/prompts") // a link in a listing: not an output
	read("/v1/runs/r1")
	read("/v1/runs/r1")
	if got := read("/v1/big"); len(got) != 100 {
		t.Errorf("the large answer reached the client with %d bytes, want 100", len(got))
	}
	rec.Close()
	if downloads != 1 {
		t.Errorf("%d downloads of the output file, want 1", downloads)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 3 {
		t.Errorf("%d interactions recorded, want 3 (not the one too large)", len(files))
	}
}

// A media link is found and replaced whatever its JSON escaping, and the
// numbers around it stay as written.
func TestMediaLinksInJSON(t *testing.T) {
	body := []byte(`{"seed":12345678901234567890,"out":[{"url":"https://cdn.example/a.png?x=1\u0026y=2"},{"url":"https:\/\/cdn.example\/b.webp"}],"note":"see https://cdn.example/c.gif"}`)
	got := mediaURLs(body)
	want := []string{"https://cdn.example/a.png?x=1&y=2", "https://cdn.example/b.webp"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("mediaURLs = %q, want %q (a link inside a sentence is not an output)", got, want)
	}
	out := string(localMedia(body, []Media{{URL: want[0], File: "media/1-0.png"}, {URL: want[1], File: "media/1-1.webp"}}, "http://replay/"))
	for _, w := range []string{`"http://replay/media/1-0.png"`, `"http://replay/media/1-1.webp"`, `12345678901234567890`, `see https://cdn.example/c.gif`} {
		if !strings.Contains(out, w) {
			t.Errorf("localMedia gave %s; want it to hold %s", out, w)
		}
	}
}
