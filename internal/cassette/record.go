package cassette

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/internal/jsonwalk"
	"github.com/bpmcp/bpmcp/internal/secret"
)

// MaxMedia is the largest output file a recording downloads; a larger one
// is noted as skipped.
const MaxMedia = 50 << 20

// Recorder writes every request a client sends through it, and the
// answer, into a cassette directory.
type Recorder struct {
	dir   string
	media *http.Client // downloads output files: no key, no redirect limits of the API clients

	mu      sync.Mutex
	seq     int
	fetched map[string]*fetchOnce // output files by link
	wg      sync.WaitGroup        // media downloads in progress
	keys    []string              // the server's own keys, redacted wherever they appear
}

// NewRecorder records into dir (created if need be), after the
// interactions it already holds. keys are redacted from everything written,
// besides each request's own Authorization key.
func NewRecorder(dir string, keys ...secret.String) (*Recorder, error) {
	if err := os.MkdirAll(filepath.Join(dir, "media"), 0o700); err != nil {
		return nil, fmt.Errorf("cassette: %w", err)
	}
	r := &Recorder{dir: dir, media: &http.Client{Timeout: 2 * time.Minute}}
	for _, k := range keys {
		// As the API clients send it: trimmed, without "Bearer ".
		s := strings.TrimSpace(k.Reveal())
		if len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
			s = strings.TrimSpace(s[7:])
		}
		if s != "" {
			r.keys = append(r.keys, s)
		}
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range existing {
		var n int
		if _, err := fmt.Sscanf(filepath.Base(f), "%06d", &n); err == nil && n > r.seq {
			r.seq = n
		}
	}
	return r, nil
}

// Close waits for the media downloads in progress.
func (r *Recorder) Close() { r.wg.Wait() }

// Client returns an HTTP client that sends through next (nil: the default
// transport) and records each exchange as api's.
func (r *Recorder) Client(api string, next *http.Client) *http.Client {
	c := &http.Client{}
	if next != nil {
		*c = *next
	}
	inner := c.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	c.Transport = roundTripper(func(req *http.Request) (*http.Response, error) { return r.roundTrip(api, inner, req) })
	return c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (r *Recorder) roundTrip(api string, next http.RoundTripper, req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	start := time.Now()
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err // no answer: nothing a replay could serve
	}
	body := resp.Body
	respBody, err := io.ReadAll(io.LimitReader(body, int64(maxAnswer)+1))
	if err == nil && len(respBody) > maxAnswer {
		// Too large to record (or endless): the client reads it all, as
		// sent, and applies its own limit.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(respBody), body), body}
		return resp, nil
	}
	_ = body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		// The client sees the same failure reading it (an API client
		// retries a read cut short); nothing is recorded.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(respBody), errReader{err}))
		return resp, nil
	}
	keys := r.keys
	if k, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && strings.TrimSpace(k) != "" {
		keys = append(slices.Clone(keys), strings.TrimSpace(k))
	}
	redact := func(b []byte) []byte {
		for _, k := range keys {
			b = secret.Redact(b, k)
		}
		return b
	}
	in := &Interaction{API: api, Method: req.Method, Path: string(redact([]byte(req.URL.Path))),
		Query: string(redact([]byte(req.URL.RawQuery))), RequestBody: asJSON(redact(reqBody)),
		Status: resp.StatusCode, ResponseBody: asJSON(redact(respBody)),
		DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	for _, h := range keptHeaders {
		if v := resp.Header.Get(h); v != "" {
			if in.Header == nil {
				in.Header = map[string]string{}
			}
			in.Header[h] = string(redact([]byte(v)))
		}
	}
	r.mu.Lock()
	r.seq++
	in.Seq = r.seq
	r.mu.Unlock()
	var urls []string
	if outputs(req.URL.Path) {
		urls = mediaURLs(respBody)
	}
	if len(urls) == 0 {
		// A recording that cannot be written is lost, not the answer: it
		// may carry the id of a run that is paid for.
		_ = r.write(in)
		return resp, nil
	}
	// The output files are fetched beside the call, which goes on at once.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for i, u := range urls {
			m := r.fetch(in.Seq, i, u) // the link as sent; as written, redacted like the body
			m.URL, m.Skipped = string(redact([]byte(m.URL))), string(redact([]byte(m.Skipped)))
			in.Media = append(in.Media, m)
		}
		_ = r.write(in)
	}()
	return resp, nil
}

// maxAnswer is the largest answer a recording holds (64 MB); a larger one
// is passed on to the client and not recorded. A variable for tests.
var maxAnswer = 64 << 20

// outputs reports whether answers to path may link to a run's or a
// generation's output files: only those are downloaded (not, say, images
// in a prompt's description, which could point anywhere).
func outputs(path string) bool {
	return strings.Contains(path, "/runs") || strings.Contains(path, "/generat")
}

// fetchOnce is one output file's download, shared by every answer that
// links to it (each reading of a finished run does).
type fetchOnce struct {
	once sync.Once
	m    Media
}

// fetch downloads u once per recording, however many answers link to it.
func (r *Recorder) fetch(seq, i int, u string) Media {
	r.mu.Lock()
	if r.fetched == nil {
		r.fetched = map[string]*fetchOnce{}
	}
	f := r.fetched[u]
	if f == nil {
		f = &fetchOnce{}
		r.fetched[u] = f
	}
	r.mu.Unlock()
	f.once.Do(func() { f.m = r.download(seq, i, u) })
	return f.m
}

// write writes in as its file.
func (r *Recorder) write(in *Interaction) error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.dir, fileName(in)), append(b, '\n'), 0o600)
}

// mediaPattern finds links to output files in an answer's text;
// mediaLink is the same for one JSON string.
var (
	mediaPattern = regexp.MustCompile(`https?://[^"\s\\]+\.(?:png|jpe?g|webp|gif|mp4|webm|mov)(?:\?[^"\s\\]*)?`)
	mediaLink    = regexp.MustCompile(`^https?://\S+\.(?:png|jpe?g|webp|gif|mp4|webm|mov)(?:\?\S*)?$`)
)

// mediaURLs are the distinct output files body links to: the JSON strings
// that are links to media (read unescaped, so that a link whose & is
// written \u0026 is whole), or for a body that is not JSON, what looks like
// one in its text.
func mediaURLs(body []byte) []string {
	var found []string
	var v any
	if json.Unmarshal(body, &v) == nil {
		jsonwalk.Strings(v, func(s string) any {
			if mediaLink.MatchString(s) {
				found = append(found, s)
			}
			return s
		})
	} else {
		found = mediaPattern.FindAllString(string(body), -1)
	}
	slices.Sort(found) // a JSON object's strings come in no set order
	return slices.Compact(found)
}

// download saves u into media/, up to MaxMedia bytes.
func (r *Recorder) download(seq, i int, u string) Media {
	m := Media{URL: u}
	resp, err := r.media.Get(u)
	if err != nil {
		m.Skipped = "download failed: " + err.Error()
		return m
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		m.Skipped = fmt.Sprintf("download answered %d", resp.StatusCode)
		return m
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxMedia+1))
	switch {
	case err != nil:
		m.Skipped = "download failed: " + err.Error()
		return m
	case len(b) > MaxMedia:
		m.Skipped = fmt.Sprintf("larger than %d MB", MaxMedia>>20)
		return m
	}
	ext := path.Ext(strings.SplitN(u, "?", 2)[0])
	m.File = fmt.Sprintf("media/%06d-%d%s", seq, i, ext)
	m.Bytes = int64(len(b))
	if err := os.WriteFile(filepath.Join(r.dir, m.File), b, 0o600); err != nil {
		m.File, m.Bytes, m.Skipped = "", 0, "cannot be written: "+err.Error()
	}
	return m
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
