package fakeapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SandboxKey is the key of --sandbox mode's account.
const SandboxKey = "bw_sandbox"

// TestKey is an active account with credits, for tests.
const TestKey = "bw_test_key"

// Key is one account of the fake.
type Key struct {
	Username string
	Credits  int
	// Subscription is nil for an account without one; Status "active" lets
	// it generate.
	Subscription *Subscription
}

// Subscription is an account's plan.
type Subscription struct {
	Status  string `json:"status"`
	Plan    string `json:"plan"`
	EndDate string `json:"endDate"`
}

// Model is one model version the fake lists.
type Model struct {
	ID         int64   `json:"id"`
	Name       string  `json:"name"`
	ModelName  string  `json:"model_name"`
	BaseModel  string  `json:"base_model"`
	Type       string  `json:"type"`
	Filename   string  `json:"filename"`
	CoverImage *string `json:"cover_image"`
	NSFW       bool    `json:"nsfw"`
}

// DefaultModels is the fake's model list.
var DefaultModels = []Model{
	{ID: 814910, Name: "v6.5", ModelName: "tPonynai3", BaseModel: "Pony", Type: "Checkpoint", Filename: "tPonynai3_v65.safetensors"},
	{ID: 902311, Name: "V1.1", ModelName: "Amanatsu (Illustrious)", BaseModel: "Illustrious", Type: "Checkpoint", Filename: "amanatsu_v11.safetensors"},
	{ID: 733120, Name: "v2.0", ModelName: "NoobAI XL", BaseModel: "Illustrious", Type: "Checkpoint", Filename: "noobai_xl_v20.safetensors"},
	{ID: 655001, Name: "v4", ModelName: "Velvet Nights", BaseModel: "Pony", Type: "Checkpoint", Filename: "velvet_nights_v4.safetensors", NSFW: true},
}

// Options configure a Server; zero values take the defaults.
type Options struct {
	// Keys are the accounts (default: TestKey and SandboxKey, active, with
	// 500 credits).
	Keys map[string]Key
	// NewAccount, when set, is asked about a key that is not in Keys: an
	// account is created for it on its first request when it answers ok
	// (the sandbox's isolated episodes). Forget drops it.
	NewAccount func(key string) (Key, bool)
	// Models is the model list (default DefaultModels).
	Models []Model
	// Cooldown is the wait between generations (default 60 s).
	Cooldown time.Duration
	// QueueTime and ProcessTime are how long a generation is queued and
	// then processing (defaults 3 s and 5 s).
	QueueTime, ProcessTime time.Duration
	// Cost is the credits one generation takes (default 10), charged when
	// it is accepted and refunded if it fails.
	Cost int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the fake API; it implements http.Handler. Routes are under
// /api/v1, and images under /images/.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	accounts map[string]*account
	jobs     map[string]*job
	nextID   int
	faults   map[string][]*faultEntry
	log      []Request
}

type account struct {
	key Key
	// last is the key's latest generation, which the limits are counted
	// from.
	last *job
	// rejected counts generations refused with 429.
	rejected int
}

type job struct {
	id        string
	owner     string
	prompt    string
	submitted time.Time
	fail      bool
	width     int
	height    int
	seed      int64
	charged   int
}

// New returns a fake.
func New(opts Options) *Server {
	if opts.Keys == nil {
		active := &Subscription{Status: "active", Plan: "pro", EndDate: "2027-01-01T00:00:00.000Z"}
		opts.Keys = map[string]Key{
			TestKey:    {Username: "tester", Credits: 500, Subscription: active},
			SandboxKey: {Username: "sandbox", Credits: 500, Subscription: active},
		}
	}
	if opts.Models == nil {
		opts.Models = DefaultModels
	}
	// Listed as the API lists them: by model name, then version name.
	opts.Models = slices.Clone(opts.Models)
	slices.SortStableFunc(opts.Models, func(a, b Model) int {
		return cmp.Or(strings.Compare(a.ModelName, b.ModelName), strings.Compare(a.Name, b.Name))
	})
	if opts.Cooldown == 0 {
		opts.Cooldown = 60 * time.Second
	}
	if opts.QueueTime == 0 {
		opts.QueueTime = 3 * time.Second
	}
	if opts.ProcessTime == 0 {
		opts.ProcessTime = 5 * time.Second
	}
	if opts.Cost == 0 {
		opts.Cost = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), accounts: map[string]*account{}, jobs: map[string]*job{},
		faults: map[string][]*faultEntry{}}
	for k, v := range opts.Keys {
		s.accounts[k] = &account{key: v}
	}
	for _, r := range []struct {
		pattern string
		h       func(http.ResponseWriter, *http.Request, *account)
	}{
		{"GET /account", s.handleAccount},
		{"GET /models", s.handleModels},
		{"POST /generate", s.handleGenerate},
		{"GET /generate/{id}", s.handleGeneration},
	} {
		s.mux.HandleFunc(strings.Replace(r.pattern, " ", " /api/v1", 1), s.route(r.pattern, r.h))
	}
	s.mux.HandleFunc("GET /api/v1/generate/{$}", s.route("GET /generate/{id}", func(w http.ResponseWriter, _ *http.Request, _ *account) {
		writeError(w, http.StatusBadRequest, "Generation ID is required")
	}))
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusNotFound, "Not found") })
	s.mux.HandleFunc("GET /images/{job}/{file}", s.handleImage)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route wraps a handler with the request log, fault injection and
// authentication.
func (s *Server) route(name string, h func(http.ResponseWriter, *http.Request, *account)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		defer func() { s.logRequest(name, rec.status) }()
		f := s.takeFault(name)
		if f != nil && f.Kind != FaultDropAfterCreate {
			if f.Latency > 0 {
				select {
				case <-time.After(f.Latency):
				case <-r.Context().Done(): // the client went away
					return
				}
			}
			if s.fault(rec, r, f) {
				return
			}
		}
		acct := s.authenticate(r)
		if acct == nil {
			writeError(rec, http.StatusUnauthorized, "Invalid or missing API key")
			return
		}
		if f != nil && f.Kind == FaultDropAfterCreate {
			h(discard{}, r, acct)
			rec.status = -1
			abort(w)
			return
		}
		h(rec, r, acct)
	}
}

func (s *Server) authenticate(r *http.Request) *account {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return nil
	}
	key = strings.TrimSpace(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[key]
	if a == nil && key != "" && s.opts.NewAccount != nil {
		if k, ok := s.opts.NewAccount(key); ok {
			a = &account{key: k}
			s.accounts[key] = a
		}
	}
	return a
}

// Forget drops key's account and its generations, as if it never existed.
func (s *Server) Forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.accounts, key)
	for id, j := range s.jobs {
		if j.owner == key {
			delete(s.jobs, id)
		}
	}
}

func (s *Server) handleAccount(w http.ResponseWriter, _ *http.Request, a *account) {
	s.mu.Lock()
	body := map[string]any{"username": a.key.Username, "credits": a.key.Credits, "subscription": a.key.Subscription}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request, _ *account) {
	writeJSON(w, http.StatusOK, map[string]any{"models": s.opts.Models, "count": len(s.opts.Models)})
}

// generateBody is what POST /generate reads.
type generateBody struct {
	Prompt         *string  `json:"prompt"`
	NegativePrompt string   `json:"negative_prompt"`
	ModelVersionID *int64   `json:"model_version_id"`
	Width          int      `json:"width"`
	Height         int      `json:"height"`
	Steps          int      `json:"steps"`
	CFGScale       *float64 `json:"cfg_scale"`
	Sampler        string   `json:"sampler"`
	Seed           *int64   `json:"seed"`
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request, a *account) {
	var b generateBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	switch {
	case b.Prompt == nil || strings.TrimSpace(*b.Prompt) == "":
		writeError(w, http.StatusBadRequest, "prompt is required")
		return
	case b.ModelVersionID == nil:
		writeError(w, http.StatusBadRequest, "model_version_id is required")
		return
	case !s.knownModel(*b.ModelVersionID):
		writeError(w, http.StatusBadRequest, "Invalid model_version_id")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	switch {
	case !a.key.Subscription.active():
		writeError(w, http.StatusForbidden, "An active subscription is required to use the API")
		return
	case strings.Contains(strings.ToLower(*b.Prompt), "flagged"):
		writeError(w, http.StatusBadRequest, "Your prompt was flagged by moderation. Please revise and try again.")
		return
	case a.key.Credits < s.opts.Cost:
		writeError(w, http.StatusPaymentRequired, "Insufficient credits")
		return
	}
	if last := a.last; last != nil {
		if !s.final(last, now) {
			a.rejected++
			writeLimited(w, "A generation is already in progress", last.doneAt(s.opts).Add(s.opts.Cooldown).Sub(now))
			return
		}
		if free := last.doneAt(s.opts).Add(s.opts.Cooldown); now.Before(free) {
			a.rejected++
			writeLimited(w, "Please wait before starting another generation", free.Sub(now))
			return
		}
	}
	s.nextID++
	j := &job{id: fmt.Sprintf("job_%08x", 0x5eed0000+s.nextID), owner: authKey(r),
		prompt: *b.Prompt, submitted: now, fail: strings.Contains(strings.ToLower(*b.Prompt), "glitch"),
		width: orDefault(b.Width, 832), height: orDefault(b.Height, 1216), seed: 1000 + int64(s.nextID), charged: s.opts.Cost}
	if b.Seed != nil && *b.Seed >= 0 {
		j.seed = *b.Seed
	}
	a.key.Credits -= s.opts.Cost
	a.last = j
	s.jobs[j.id] = j
	writeJSON(w, http.StatusCreated, map[string]any{"id": j.id, "status": "queued"})
}

func (s *Server) handleGeneration(w http.ResponseWriter, r *http.Request, a *account) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil || j.owner != authKey(r) {
		writeError(w, http.StatusNotFound, "Generation not found")
		return
	}
	now := s.opts.Now()
	out := map[string]any{"id": j.id}
	switch queued, processing := j.submitted.Add(s.opts.QueueTime), j.doneAt(s.opts); {
	case now.Before(queued):
		// The position counts down as the queue time passes: 3, 2, 1.
		left := queued.Sub(now).Seconds() / s.opts.QueueTime.Seconds()
		out["status"], out["queue_position"] = "queued", int(math.Ceil(left*3))
	case now.Before(processing):
		out["status"] = "processing"
	case j.fail:
		out["status"], out["error"] = "failed", "Generation failed due to an internal error"
		if j.charged > 0 {
			a.key.Credits += j.charged // refunded
			j.charged = 0
		}
	default:
		img := fmt.Sprintf("http://%s/images/%s/0.webp", r.Host, j.id)
		out["status"] = "succeeded"
		out["output"] = map[string]any{"images": []map[string]string{{"url": img, "id": "img" + strings.TrimPrefix(j.id, "job_")}}, "seed": j.seed}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleImage serves a succeeded generation's image, as a CDN would
// (no key needed).
func (s *Server) handleImage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j := s.jobs[r.PathValue("job")]
	ok := j != nil && !j.fail && s.final(j, s.opts.Now())
	s.mu.Unlock()
	if !ok || r.PathValue("file") != "0.webp" {
		http.NotFound(w, r)
		return
	}
	// A colour of its own per generation, so that images can be told apart.
	h := uint8(j.seed * 47)
	w.Header().Set("Content-Type", "image/webp")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(solidWebP(min(j.width, 256), min(j.height, 384), color.NRGBA{R: 200 + h%56, G: 120 + h%100, B: 180 + h%70, A: 255}))
}

func (s *Server) knownModel(id int64) bool {
	for _, m := range s.opts.Models {
		if m.ID == id {
			return true
		}
	}
	return false
}

func (s *Server) final(j *job, now time.Time) bool { return !now.Before(j.doneAt(s.opts)) }

func (j *job) doneAt(o Options) time.Time { return j.submitted.Add(o.QueueTime + o.ProcessTime) }

func (sub *Subscription) active() bool { return sub != nil && sub.Status == "active" }

// Credits returns key's balance.
func (s *Server) Credits(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[key]; a != nil {
		return a.key.Credits
	}
	return 0
}

// Rejected429 returns how many generations of key were refused by the
// limits.
func (s *Server) Rejected429(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[key]; a != nil {
		return a.rejected
	}
	return 0
}

func authKey(r *http.Request) string {
	k, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(k)
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeLimited(w http.ResponseWriter, msg string, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait, 0).Seconds()))))
	writeError(w, http.StatusTooManyRequests, msg)
}

// Generation is a generation the fake accepted, for tests.
type Generation struct {
	ID        string
	Key       string
	Prompt    string
	Submitted time.Time
	Done      time.Time // when it ends (or ended)
}

// Generations returns every generation accepted so far, in order.
func (s *Server) Generations() []Generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Generation, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, Generation{ID: j.id, Key: j.owner, Prompt: j.prompt, Submitted: j.submitted, Done: j.doneAt(s.opts)})
	}
	slices.SortFunc(out, func(a, b Generation) int { return strings.Compare(a.ID, b.ID) }) // ids grow with each generation
	return out
}
