package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// catalogue is testdata/catalogue, loaded once.
var catalogue []Prompt

func TestMain(m *testing.M) {
	var err error
	catalogue, err = LoadCatalogueDir("../../testdata/catalogue")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// Ids from testdata/catalogue/INDEX.md.
const (
	coldEmailPrompt    = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01"
	coldEmailVersion   = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"
	podcastVersion     = "0b7e3d52-94aa-4f0c-b1e6-5c2f8a7d9e22"
	releaseNotesVer    = "c3a9f1e4-7d20-4b8e-a6c5-18e9d0f2b333"
	adHeadlineVersion  = "5e8d7c6b-a4f3-4e21-9d0c-7b6a5f4e3d44"
	channelsVersion    = "8a2b4c6d-1e3f-4a5b-9c7d-2e4f6a8b0c55"
	mealPlannerVersion = "d9e8f7a6-b5c4-4d3e-8f2a-1b0c9d8e7f66"
	rainyCafeVersion   = "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a77"
	photoBoothVersion  = "2a3b4c5d-6e7f-4081-92a3-b4c5d6e7f888"
	appIconVersion     = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999"
	altTextVersion     = "4c5d6e7f-8091-42a3-b4c5-d6e7f8a9b0aa"
	doorbellPrompt     = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e11"
	doorbellVersion    = "5d6e7f80-91a2-43b4-c5d6-e7f8a9b0c1bb"
	heroClipVersion    = "6e7f8091-a2b3-44c5-d6e7-f8a9b0c1d2cc"
	familyVersion      = "1a44f51f-d331-42ca-aecb-040afb8008be"
	replyVersion       = "327817b7-5fbb-4aab-a616-9d8d166be17f"
	whiteboardPrompt   = "e4bc6cf7-37c3-4be5-8e74-9b0e8a3de669"
	whiteboardVersion  = "bdaa1c14-19f0-4c0a-99c9-fe30c8280985"
	stockVersion       = "7d7e3766-9e84-49da-acce-2000c0d76af1"
	researchVersion    = "5326247b-9496-4564-8298-35f19a183ef2"
	productPrompt      = "971bdfbe-ddc4-48a1-bbd1-b33965646a88"
	productVersion     = "84964cba-e085-465b-a0df-1eb7cfad1473"
	productOldVersion  = "14360e19-90a8-48e1-92c4-a3a99922b20e"
	startupVersion     = "71cb89e9-8e45-4e9a-b8d9-a8fdd849f7c3"
	tripVersion        = "08f1255d-79f3-4891-a2fa-eb744128a5a5"
	unknownUUID        = "00000000-0000-4000-8000-000000000000"
)

// harness is one fake on an httptest server with its own HTTP client.
type harness struct {
	t      testing.TB
	s      *Server
	base   string // .../v1
	clock  *Clock
	client *http.Client
}

// start runs a fake over the test catalogue, fast by default: no rate limit,
// runs 100x faster, a 1 s synchronous window.
func start(t testing.TB, edit func(*Options)) *harness {
	t.Helper()
	clock := &Clock{}
	opts := Options{
		Catalogue:  catalogue,
		RateLimit:  -1,
		TimeScale:  0.01,
		SyncWindow: time.Second,
		Now:        clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	s, base := NewTestServer(t, opts)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &harness{t: t, s: s, base: base, clock: clock, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// resp is an answer decoded as an envelope when possible.
type resp struct {
	status int
	header http.Header
	raw    []byte
	env    struct {
		Status  string          `json:"status"`
		Message *string         `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	isEnvelope bool
}

func (r *resp) message() string {
	if r.env.Message == nil {
		return ""
	}
	return *r.env.Message
}

// data decodes the envelope's data into v.
func (r *resp) data(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.env.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.env.Data, err)
	}
}

// call sends a request with the default key; path is relative to /v1 (or
// an absolute URL); body is marshalled unless it is a string.
func (h *harness) call(method, path string, body any) *resp {
	h.t.Helper()
	return h.callKey(TestKey, method, path, body)
}

func (h *harness) callKey(key, method, path string, body any) *resp {
	h.t.Helper()
	hdr := http.Header{}
	if key != "" {
		hdr.Set("Authorization", "Bearer "+key)
	}
	return h.send(method, path, body, hdr)
}

func (h *harness) send(method, path string, body any, hdr http.Header) *resp {
	h.t.Helper()
	r, err := h.trySend(method, path, body, hdr)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (h *harness) trySend(method, path string, body any, hdr http.Header) (*resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = h.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := &resp{status: res.StatusCode, header: res.Header, raw: raw}
	if json.Unmarshal(raw, &out.env) == nil && out.env.Status != "" {
		out.isEnvelope = true
	}
	return out, nil
}

// expect fails unless r has the status, envelope code and (if msg != "")
// a message containing msg.
func expect(t testing.TB, r *resp, status int, code, msg string) {
	t.Helper()
	if r.status != status || r.env.Status != code || !strings.Contains(r.message(), msg) {
		t.Fatalf("got %d %s %q, want %d %s %q; body %s", r.status, r.env.Status, r.message(), status, code, msg, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if code != "SUCCESS" && code != "GATEWAY_TIMEOUT_ERROR" && string(r.env.Data) != "null" {
		t.Fatalf("error data %s, want null", r.env.Data)
	}
}

// runBody builds a POST /v1/runs body.
func runBody(version string, text map[string]any, images ...any) map[string]any {
	if text == nil {
		text = map[string]any{}
	}
	in := map[string]any{"textInputs": text}
	if images != nil {
		in["imageInputs"] = images
	}
	return map[string]any{"promptVersionId": version, "inputs": in}
}

func urlImage(u string) map[string]any { return map[string]any{"type": "url", "url": u} }

// runOut is a single run on the wire.
type runOut struct {
	RunID           string `json:"runId"`
	PromptVersionID string `json:"promptVersionId"`
	Outputs         []struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"outputs"`
	RunStatus string `json:"runStatus"`
	Tokens    *int   `json:"tokens"`
	CreatedAt string `json:"createdAt"`
}

// waitFinal polls GET /v1/runs/{id} until the run is final.
func (h *harness) waitFinal(id string) runOut {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.call("GET", "/runs/"+id, nil)
		expect(h.t, r, 200, "SUCCESS", "")
		var out runOut
		r.data(h.t, &out)
		if out.RunStatus == StatusSucceeded || out.RunStatus == StatusFailed {
			return out
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s still %s", id, out.RunStatus)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
