// Package cassette records the server's requests to BetterPrompt and
// BetterWaifu (--record DIR) and serves them back (--replay DIR), so that
// an evaluation harness can play the same episodes offline, at no cost and
// with the same results every time.
//
// A cassette is a directory with one human-readable JSON file per
// interaction (NNNNNN-METHOD-path.json, an Interaction), and the output
// media the answers link to, downloaded into media/ because their URLs
// expire after 24 hours. Keys are never written.
//
// Replay matches a request on its API, method, path, query (without the
// run list's time window, since and until, which follow the clock) and
// JSON body compared as values (key order and spacing do not matter).
// Recordings that match the same request are served in the order they
// were recorded, the last one again once they run out (a run polled more
// often than when it was recorded goes on answering its final state). Each
// caller's key (each episode's) has its own place in every sequence.
package cassette

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Interaction is one request and its answer.
type Interaction struct {
	Seq    int    `json:"seq"`
	API    string `json:"api"` // "betterprompt" or "betterwaifu"
	Method string `json:"method"`
	Path   string `json:"path"` // as sent, with the base URL's path (/v1/runs)
	Query  string `json:"query,omitempty"`
	// RequestBody and ResponseBody are JSON, or a JSON string when the body
	// was not JSON.
	RequestBody  json.RawMessage   `json:"request_body,omitempty"`
	Status       int               `json:"status"`
	Header       map[string]string `json:"header,omitempty"` // the answer's Content-Type, Retry-After and action-require
	ResponseBody json.RawMessage   `json:"response_body,omitempty"`
	DurationMS   float64           `json:"duration_ms"`
	Media        []Media           `json:"media,omitempty"`
}

// Media is an output file an answer links to.
type Media struct {
	URL     string `json:"url"`
	File    string `json:"file,omitempty"` // under the cassette's directory
	Bytes   int64  `json:"bytes,omitempty"`
	Skipped string `json:"skipped,omitempty"` // why it was not downloaded
}

// keptHeaders are the answer headers a replay serves again.
var keptHeaders = []string{"Content-Type", "Retry-After", "Action-Require"}

// volatileQuery are the query parameters that follow the clock: the run
// list's time window.
var volatileQuery = []string{"since", "until"}

// matchKey is what a replayed request must have in common with a
// recording.
func matchKey(api, method, path, rawQuery string, body []byte) string {
	q, _ := url.ParseQuery(rawQuery)
	for _, k := range volatileQuery {
		q.Del(k)
	}
	return api + " " + method + " " + path + "?" + q.Encode() + " " + string(canonical(body))
}

// canonical is body as compact JSON with sorted keys, or body itself when
// it is not JSON.
func canonical(body []byte) []byte {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers as written: two seeds a float64 cannot tell apart still differ
	if err := dec.Decode(&v); err != nil || dec.More() {
		return body
	}
	out, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return body
	}
	return out
}

// asJSON is body as it goes into an Interaction: JSON as is, anything else
// as a JSON string.
func asJSON(body []byte) json.RawMessage {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if json.Valid(body) {
		return json.RawMessage(bytes.TrimSpace(body))
	}
	s, _ := json.Marshal(string(body))
	return s
}

// fromJSON is the body an Interaction field holds.
func fromJSON(raw json.RawMessage) []byte {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	}
	return raw
}

// fileName is the interaction's file name: its number, method and path.
func fileName(in *Interaction) string {
	path := strings.Trim(strings.NewReplacer("/", "-", ".", "-").Replace(in.Path), "-")
	if len(path) > 80 {
		path = path[:80]
	}
	return strings.Join(slices.DeleteFunc([]string{pad(in.Seq), in.Method, path}, func(s string) bool { return s == "" }), "-") + ".json"
}

func pad(n int) string { return fmt.Sprintf("%06d", n) }
