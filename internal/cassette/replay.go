package cassette

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/internal/jsonwalk"
)

// Replayer answers requests from a cassette; nothing is sent anywhere.
type Replayer struct {
	dir   string
	speed float64 // recorded durations × speed; 0: at once
	byKey map[string][]*Interaction

	mu        sync.Mutex
	callers   map[string]*callerState // by caller key (each episode's)
	lastSweep time.Time
	misses    int
}

// callerState is where one caller is in every sequence of recordings.
type callerState struct {
	cursor map[string]int // match key → next recording
	last   time.Time
}

// callerIdle is how long a caller with no request keeps its place; past
// it, it starts again from the first recordings.
const callerIdle = 30 * time.Minute

// Load reads the cassette in dir. speed scales the recorded durations (0:
// answer at once, 1: as recorded).
func Load(dir string, speed float64) (*Replayer, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("cassette: no recordings in %s (make them with --record %s)", dir, dir)
	}
	var all []*Interaction
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		in := &Interaction{}
		if err := json.Unmarshal(b, in); err != nil {
			return nil, fmt.Errorf("cassette: %s: %w", f, err)
		}
		all = append(all, in)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	p := &Replayer{dir: dir, speed: max(speed, 0), byKey: map[string][]*Interaction{}, callers: map[string]*callerState{}}
	for _, in := range all {
		k := matchKey(in.API, in.Method, in.Path, in.Query, fromJSON(in.RequestBody))
		p.byKey[k] = append(p.byKey[k], in)
	}
	return p, nil
}

// Misses is how many requests found no recording.
func (p *Replayer) Misses() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.misses
}

// Handler serves api's requests (and the recorded media) from the
// cassette.
func (p *Replayer) Handler(api string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if file, ok := strings.CutPrefix(r.URL.Path, "/media/"); ok && r.Method == http.MethodGet {
			http.ServeFile(w, r, filepath.Join(p.dir, "media", filepath.Base(file)))
			return
		}
		body, _ := io.ReadAll(r.Body)
		k := matchKey(api, r.Method, r.URL.Path, r.URL.RawQuery, body)
		in := p.next(r.Header.Get("Authorization"), k)
		if in == nil {
			p.miss(w, api, r, body)
			return
		}
		if p.speed > 0 {
			select {
			case <-time.After(time.Duration(in.DurationMS * p.speed * float64(time.Millisecond))):
			case <-r.Context().Done():
				return
			}
		}
		for h, v := range in.Header {
			w.Header().Set(h, v)
		}
		out := localMedia(fromJSON(in.ResponseBody), in.Media, "http://"+r.Host+"/")
		w.WriteHeader(in.Status)
		_, _ = w.Write(out)
	})
}

// next returns the recording that answers key's next request matching k,
// or nil.
func (p *Replayer) next(caller, k string) *Interaction {
	list := p.byKey[k]
	if len(list) == 0 {
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastSweep) >= time.Minute {
		p.lastSweep = now
		for c, st := range p.callers {
			if now.Sub(st.last) >= callerIdle {
				delete(p.callers, c)
			}
		}
	}
	st := p.callers[caller]
	if st == nil {
		st = &callerState{cursor: map[string]int{}}
		p.callers[caller] = st
	}
	st.last = now
	i := st.cursor[k]
	if i < len(list)-1 {
		st.cursor[k] = i + 1
	}
	return list[min(i, len(list)-1)]
}

// MissPrefix starts the message of a replay's answer to a request it has
// no recording of: the toolsets show that message as it is (it says what
// is missing and what to do), not as an API failure.
const MissPrefix = "Replay: no recording of "

// miss answers a request with no recording with an error in api's own
// format, saying what is missing.
func (p *Replayer) miss(w http.ResponseWriter, api string, r *http.Request, body []byte) {
	p.mu.Lock()
	p.misses++
	p.mu.Unlock()
	what := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		what += "?" + r.URL.RawQuery
	}
	if c := canonical(body); len(c) > 0 {
		if len(c) > 300 {
			c = append(c[:300], "…"...)
		}
		what += " with body " + string(c)
	}
	msg := fmt.Sprintf(MissPrefix+"%s in %s; nothing was sent anywhere. Record this call first (--record), "+
		"or call only what was recorded.", what, p.dir)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	var b []byte
	if api == "betterwaifu" {
		b, _ = json.Marshal(map[string]string{"error": msg})
	} else {
		b, _ = json.Marshal(map[string]any{"status": "BAD_REQUEST", "message": msg, "data": nil})
	}
	_, _ = w.Write(b)
}

// Has reports whether the cassette holds any of api's interactions.
func (p *Replayer) Has(api string) bool {
	for _, list := range p.byKey {
		if list[0].API == api {
			return true
		}
	}
	return false
}

// localMedia is body with each recorded media link replaced by its local
// copy under base: in each JSON string (whatever its escaping), or in the
// text of a body that is not JSON.
func localMedia(body []byte, media []Media, base string) []byte {
	local := map[string]string{}
	for _, m := range media {
		if m.File != "" {
			local[m.URL] = base + m.File
		}
	}
	if len(local) == 0 {
		return body
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers as written: a seed may not fit a float64
	if dec.Decode(&v) != nil {
		for from, to := range local {
			body = bytes.ReplaceAll(body, []byte(from), []byte(to))
		}
		return body
	}
	v = jsonwalk.Strings(v, func(s string) any {
		if to, ok := local[s]; ok {
			return to
		}
		return s
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return body
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
