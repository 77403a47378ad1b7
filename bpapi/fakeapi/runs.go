package fakeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// maxBody bounds a POST /v1/runs body (Base64 images make it large).
const maxBody = 32 << 20

// Run statuses (reference §9.1).
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

const defaultErrorOutput = "Generation failed due to invalid input."

// run is one run record.
type run struct {
	id        string
	key       string
	prompt    *Prompt
	versionID string
	seq       int64
	createdAt time.Time // Options.Now clock

	start     time.Time // real clock
	queuedFor time.Duration
	duration  time.Duration
	forced    time.Time // FinishRun: end now

	final      bool
	finishedAt time.Time // Options.Now clock: createdAt + real duration
	expiresAt  time.Time // media URL expiry
	reserved   int
	cost       int

	model      string
	runOptions map[string]string
	inputs     resolvedInputs
	images     int

	wake     chan struct{} // closed by FinishRun
	wakeOnce sync.Once
}

// end is when the run finishes on the real clock.
func (r *run) end() time.Time {
	if !r.forced.IsZero() {
		return r.forced
	}
	return r.start.Add(r.duration)
}

func (r *run) failed() bool { return r.prompt.Fail }

// status is the run's status at real time now; settleLocked must have run
// with the same now.
func (r *run) status(now time.Time) string {
	switch {
	case r.final && r.failed():
		return StatusFailed
	case r.final:
		return StatusSucceeded
	case now.Sub(r.start) < r.queuedFor:
		return StatusQueued
	}
	return StatusRunning
}

// settleLocked finalises every run whose time has come: its status becomes
// final and the account is charged the final cost in place of the
// reservation. Called with s.mu held.
func (s *Server) settleLocked(now time.Time) {
	kept := s.pending[:0]
	for _, r := range s.pending {
		end := r.end()
		if now.Before(end) {
			kept = append(kept, r)
			continue
		}
		r.final = true
		r.finishedAt = r.createdAt.Add(end.Sub(r.start))
		r.expiresAt = time.Unix(r.finishedAt.Add(s.opts.URLTTL).Unix(), 0)
		r.cost = r.prompt.Credits
		if r.failed() && s.opts.RefundFailed {
			r.cost = 0
		}
		s.account(r.key).Credits += r.reserved - r.cost
	}
	clear(s.pending[len(kept):])
	s.pending = kept
}

// outputItem is one output item on the wire (reference §9.4).
type outputItem struct {
	Type             string `json:"type"`
	Data             string `json:"data"`
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

// outputs renders a final run's outputs; media URLs are absolute, built on
// base (the server root).
func (r *run) outputs(base string) []outputItem {
	out := []outputItem{}
	if !r.final {
		return out
	}
	hasError := false
	for i, o := range r.prompt.Outputs {
		item := outputItem{Type: o.Type, Data: o.Data, ThoughtSignature: o.ThoughtSignature}
		switch o.Type {
		case "image", "video":
			item.Data = base + "/files/" + r.id + "/" + strconv.Itoa(i+1) + "." + o.File + "?expires=" + strconv.FormatInt(r.expiresAt.Unix(), 10)
		case "text":
			item.Data = r.substitute(o.Data)
		case "error":
			hasError = true
		}
		out = append(out, item)
	}
	if r.failed() && !hasError {
		out = append(out, outputItem{Type: "error", Data: defaultErrorOutput})
	}
	return out
}

// substitute replaces {{key}} with the run's resolved input values.
func (r *run) substitute(text string) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	for k, v := range r.inputs.text {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	return text
}

func (r *run) tokens() int {
	if r.final {
		return r.cost
	}
	return 0
}

// timestamp formats t the way the API does: ISO 8601 UTC with milliseconds.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// runData is a single run on the wire: the union of the documented and the
// CLI's fields (reference §7.5, §7.6).
type runData struct {
	RunID           string       `json:"runId"`
	PromptVersionID string       `json:"promptVersionId"`
	Outputs         []outputItem `json:"outputs"`
	RunStatus       string       `json:"runStatus"`
	Tokens          int          `json:"tokens"`
	CreatedAt       string       `json:"createdAt"`
}

// runRow is a GET /v1/runs row (reference §7.7).
type runRow struct {
	RunID           string       `json:"runId"`
	PromptVersionID string       `json:"promptVersionId"`
	Outputs         []outputItem `json:"outputs"`
	RunStatus       string       `json:"runStatus"`
	Credits         *int         `json:"credits"`
	RunName         string       `json:"runName"`
	CreatedAt       string       `json:"createdAt"`
}

func (r *run) data(now time.Time, base string) runData {
	return runData{
		RunID:           r.id,
		PromptVersionID: r.versionID,
		Outputs:         r.outputs(base),
		RunStatus:       r.status(now),
		Tokens:          r.tokens(),
		CreatedAt:       timestamp(r.createdAt),
	}
}

func (r *run) row(now time.Time, base string) runRow {
	row := runRow{
		RunID:           r.id,
		PromptVersionID: r.versionID,
		Outputs:         r.outputs(base),
		RunStatus:       r.status(now),
		RunName:         r.prompt.Title,
		CreatedAt:       timestamp(r.createdAt),
	}
	if r.final && r.cost != 0 {
		cost := r.cost
		row.Credits = &cost
	}
	return row
}

// base returns the server root for media URLs.
func (s *Server) base(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// createBody is the POST /v1/runs body, kept raw for validation.
type createBody struct {
	PromptVersionID json.RawMessage `json:"promptVersionId"`
	Inputs          json.RawMessage `json:"inputs"`
	RunModel        json.RawMessage `json:"runModel"`
	RunOptions      json.RawMessage `json:"runOptions"`
}

func (s *Server) handleCreateRun(w http.ResponseWriter, r *http.Request, c *call) {
	// JSON (400).
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusBadRequest, "Request body is too large")
			return
		}
		writeError(w, http.StatusBadRequest, "Could not read the request body")
		return
	}
	trimmed := bytes.TrimSpace(data)
	var body createBody
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		writeError(w, http.StatusBadRequest, "Request body must be a JSON object")
		return
	}
	if err := json.Unmarshal(trimmed, &body); err != nil {
		writeError(w, http.StatusBadRequest, "Request body must be a JSON object")
		return
	}
	// UUID format (422), existence (404).
	var versionID string
	_ = json.Unmarshal(body.PromptVersionID, &versionID) // a non-string is not a UUID
	ref, ok := s.lookupVersion(w, versionID)
	if !ok {
		return
	}
	// Inputs and options (422).
	in, model, opts, err := s.validateRun(ref, body)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	p := ref.prompt
	// Credits (402), then create.
	now := time.Now()
	s.mu.Lock()
	s.settleLocked(now)
	if c.acct.Credits < p.EstimatedCredits {
		s.mu.Unlock()
		writeError(w, http.StatusPaymentRequired, "Not enough credits")
		return
	}
	c.acct.Credits -= p.EstimatedCredits
	s.seq++
	duration := time.Duration(float64(p.DurationMs) * float64(time.Millisecond) * s.opts.TimeScale)
	rn := &run{
		id:         s.newRunID(),
		key:        c.key,
		prompt:     p,
		versionID:  p.Versions[ref.index].PromptVersionID,
		seq:        s.seq,
		createdAt:  s.opts.Now(),
		start:      now,
		duration:   duration,
		queuedFor:  min(duration/10, time.Duration(float64(time.Second)*s.opts.TimeScale)),
		reserved:   p.EstimatedCredits,
		model:      model,
		runOptions: opts,
		inputs:     in,
		images:     ref.spec.imageCount,
		wake:       make(chan struct{}),
	}
	s.runs[rn.id] = rn
	s.runList = append(s.runList, rn)
	s.pending = append(s.pending, rn)
	s.settleLocked(now) // a zero-duration run is final at once
	s.mu.Unlock()

	if c.dropAfter || c.answerAfter != nil {
		return // a fault answers instead of the API
	}
	if !s.hold(r, rn) {
		if r.Context().Err() != nil {
			return // the client went away; the run carries on
		}
		body := encodeJSON(envelope{
			Status:  "GATEWAY_TIMEOUT_ERROR",
			Message: "The request timed out while waiting for the run to finish.",
			Data:    map[string]string{"runId": rn.id},
		})
		writeBody(w, http.StatusGatewayTimeout, "application/json", body)
		return
	}
	s.mu.Lock()
	d := rn.data(time.Now(), s.base(r))
	s.mu.Unlock()
	writeData(w, d)
}

// hold waits until rn is final (true) or the sync window passes, the server
// closes or the client goes away (false).
func (s *Server) hold(r *http.Request, rn *run) bool {
	deadline := time.Now().Add(max(s.opts.SyncWindow, 0))
	for {
		now := time.Now()
		s.mu.Lock()
		s.settleLocked(now)
		final, end := rn.final, rn.end()
		s.mu.Unlock()
		if final {
			return true
		}
		if !now.Before(deadline) {
			return false
		}
		wait := min(end.Sub(now), deadline.Sub(now))
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-t.C:
		case <-rn.wake:
		case <-s.closed:
			t.Stop()
			s.mu.Lock()
			s.settleLocked(time.Now())
			final := rn.final
			s.mu.Unlock()
			return final
		case <-r.Context().Done():
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// validateRun checks the inputs, runModel and runOptions of a create body
// (reference §8.8) and returns the resolved inputs, the effective model and
// the effective run options (the prompt's defaults overridden by the body's).
func (s *Server) validateRun(ref versionRef, body createBody) (resolvedInputs, string, map[string]string, error) {
	var none resolvedInputs
	if !hasJSON(body.Inputs) {
		return none, "", nil, invalid("inputs is required")
	}
	if !isObject(body.Inputs) {
		return none, "", nil, invalid("inputs must be an object")
	}
	var inputs struct {
		TextInputs  json.RawMessage `json:"textInputs"`
		ImageInputs json.RawMessage `json:"imageInputs"`
	}
	if err := json.Unmarshal(body.Inputs, &inputs); err != nil {
		return none, "", nil, invalid("inputs must be an object")
	}
	var text map[string]json.RawMessage
	if isObject(inputs.TextInputs) {
		_ = json.Unmarshal(inputs.TextInputs, &text)
	}
	var images []json.RawMessage
	if hasJSON(inputs.ImageInputs) {
		if err := json.Unmarshal(inputs.ImageInputs, &images); err != nil {
			return none, "", nil, invalid("imageInputs must be an array")
		}
	}
	res, err := ref.spec.validateInputs(text, images)
	if err != nil {
		return none, "", nil, err
	}

	p := ref.prompt
	modelName := p.Model
	if hasJSON(body.RunModel) {
		var m string
		if json.Unmarshal(body.RunModel, &m) != nil {
			return none, "", nil, invalid("runModel must be a string")
		}
		if m != "" {
			modelName = m
		}
	}
	model, ok := fixtureResources.model(modelName)
	if !ok {
		return none, "", nil, invalid("Unknown runModel '%s'", modelName)
	}
	if model.Modality != p.Modality {
		return none, "", nil, invalid("runModel '%s' is a %s model; this prompt needs a %s model", modelName, model.Modality, p.Modality)
	}
	opts := map[string]string{}
	if modelName == p.Model {
		for k, v := range p.RunOptions {
			if s, ok := v.(string); ok && k != "image" {
				opts[k] = s
			}
		}
	}
	if hasJSON(body.RunOptions) {
		var given map[string]json.RawMessage
		if !isObject(body.RunOptions) || json.Unmarshal(body.RunOptions, &given) != nil {
			return none, "", nil, invalid("runOptions must be an object")
		}
		keys := make([]string, 0, len(given))
		for k := range given {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "image" {
				continue // legacy nested option, stripped (§10.1)
			}
			var v string
			if json.Unmarshal(given[k], &v) != nil {
				return none, "", nil, invalid("runOptions values must be strings (key '%s')", k)
			}
			if msg := model.checkOption(k, v); msg != "" {
				return none, "", nil, validationError(msg)
			}
			opts[k] = v
		}
	}
	return res, modelName, opts, nil
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("runId")
	if !isUUID(id) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid runId")
		return
	}
	now := time.Now()
	s.mu.Lock()
	s.settleLocked(now)
	rn := s.runs[strings.ToLower(id)]
	if rn == nil || !s.sameAccountLocked(rn.key, c.key) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Run not found")
		return
	}
	d := rn.data(now, s.base(r))
	s.mu.Unlock()
	writeData(w, d)
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	after, before := q.Get("startingAfter"), q.Get("endingBefore")
	if after != "" && !isUUID(after) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid startingAfter")
		return
	}
	if before != "" && !isUUID(before) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid endingBefore")
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(now)
	var mine []*run // newest first
	for i := len(s.runList) - 1; i >= 0; i-- {
		if s.sameAccountLocked(s.runList[i].key, c.key) {
			mine = append(mine, s.runList[i])
		}
	}
	slices.SortStableFunc(mine, func(a, b *run) int {
		if c := b.createdAt.Compare(a.createdAt); c != 0 {
			return c
		}
		return int(b.seq - a.seq)
	})
	cursor := func(id string) (int, bool) {
		if id == "" {
			return -1, true
		}
		i := slices.IndexFunc(mine, func(rn *run) bool { return strings.EqualFold(rn.id, id) })
		return i, i >= 0
	}
	afterIdx, ok1 := cursor(after)
	beforeIdx, ok2 := cursor(before)
	if !ok1 || !ok2 {
		writeError(w, http.StatusNotFound, "Run not found")
		return
	}
	if after != "" && before != "" {
		writeError(w, http.StatusUnprocessableEntity, "startingAfter and endingBefore cannot be combined")
		return
	}
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			writeError(w, http.StatusUnprocessableEntity, "limit must be an integer between 1 and 50")
			return
		}
		limit = n
	}
	status := q.Get("status")
	switch status {
	case "", StatusQueued, StatusRunning, StatusSucceeded, StatusFailed:
	default:
		writeError(w, http.StatusUnprocessableEntity, "status must be one of queued, running, succeeded, failed")
		return
	}
	var since, until int64
	var hasSince, hasUntil bool
	for _, p := range []struct {
		name string
		v    *int64
		has  *bool
	}{{"since", &since, &hasSince}, {"until", &until, &hasUntil}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeError(w, http.StatusUnprocessableEntity, p.name+" must be a Unix time in seconds")
				return
			}
			*p.v, *p.has = n, true
		}
	}
	if hasSince && hasUntil && since >= until {
		writeError(w, http.StatusUnprocessableEntity, "since must be less than until")
		return
	}
	match := func(rn *run) bool {
		if status != "" && rn.status(now) != status {
			return false
		}
		if hasSince && rn.createdAt.Before(time.Unix(since, 0)) {
			return false
		}
		if hasUntil && !rn.createdAt.Before(time.Unix(until, 0)) {
			return false
		}
		return true
	}
	var window []*run
	switch {
	case after != "":
		window = mine[afterIdx+1:]
	case before != "":
		window = mine[:beforeIdx]
	default:
		window = mine
	}
	var matched []*run
	for _, rn := range window {
		if match(rn) {
			matched = append(matched, rn)
		}
	}
	hasMore := len(matched) > limit
	if hasMore {
		if before != "" {
			matched = matched[len(matched)-limit:] // the page nearest the cursor
		} else {
			matched = matched[:limit]
		}
	}
	base := s.base(r)
	rows := make([]runRow, 0, len(matched))
	for _, rn := range matched {
		rows = append(rows, rn.row(now, base))
	}
	writeData(w, map[string]any{"rows": rows, "hasMore": hasMore})
}

// RunInfo describes a run for tests.
type RunInfo struct {
	// RunID, PromptID and PromptVersionID identify the run and what it ran.
	RunID           string
	PromptID        string
	PromptVersionID string
	// Status is queued, running, succeeded or failed.
	Status string
	// CreatedAt and FinishedAt are on the Options.Now clock; FinishedAt is
	// zero until the run is final.
	CreatedAt, FinishedAt time.Time
	// Reserved is the estimate reserved at creation; Cost is the final
	// charge (0 until final).
	Reserved, Cost int
	// Model and RunOptions are the effective model and options (the
	// prompt's defaults, overridden by the request).
	Model      string
	RunOptions map[string]string
	// TextInputs holds every input's effective value (defaults applied;
	// multi-selects joined with ", "); Selections the multi-select choices.
	TextInputs map[string]string
	Selections map[string][]string
	// ImageInputs is the number of images sent.
	ImageInputs int
}

func (r *run) info(now time.Time) RunInfo {
	ri := RunInfo{
		RunID:           r.id,
		PromptID:        r.prompt.PromptID,
		PromptVersionID: r.versionID,
		Status:          r.status(now),
		CreatedAt:       r.createdAt,
		Reserved:        r.reserved,
		Model:           r.model,
		RunOptions:      map[string]string{},
		TextInputs:      map[string]string{},
		Selections:      map[string][]string{},
		ImageInputs:     r.images,
	}
	if r.final {
		ri.FinishedAt, ri.Cost = r.finishedAt, r.cost
	}
	for k, v := range r.runOptions {
		ri.RunOptions[k] = v
	}
	for k, v := range r.inputs.text {
		ri.TextInputs[k] = v
	}
	for k, v := range r.inputs.selections {
		ri.Selections[k] = slices.Clone(v)
	}
	return ri
}

// Runs returns the runs of key's account in creation order.
func (s *Server) Runs(key string) []RunInfo {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(now)
	var out []RunInfo
	for _, rn := range s.runList {
		if s.sameAccountLocked(rn.key, key) {
			out = append(out, rn.info(now))
		}
	}
	return out
}

// Run returns the run with id runID, whoever owns it.
func (s *Server) Run(runID string) (RunInfo, bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(now)
	rn := s.runs[strings.ToLower(runID)]
	if rn == nil {
		return RunInfo{}, false
	}
	return rn.info(now), true
}

// FinishRun makes the run finish now (a POST holding it answers at once).
// Unknown or already final runs are left alone.
func (s *Server) FinishRun(runID string) {
	now := time.Now()
	s.mu.Lock()
	rn := s.runs[strings.ToLower(runID)]
	if rn == nil || rn.final {
		s.mu.Unlock()
		return
	}
	if now.Before(rn.end()) {
		rn.forced = now
	}
	s.settleLocked(now)
	s.mu.Unlock()
	rn.wakeOnce.Do(func() { close(rn.wake) })
}

// sameAccountLocked reports whether two keys belong to one account, which
// sees the runs of both.
func (s *Server) sameAccountLocked(a, b string) bool {
	return a == b || (s.accounts[a] != nil && s.accounts[a] == s.accounts[b])
}

// newRunID returns a new run id (a random UUID, from Options.IDs when
// set). Called with s.mu held.
func (s *Server) newRunID() string {
	if s.opts.IDs != nil {
		if id, err := uuid.NewRandomFromReader(s.opts.IDs); err == nil {
			return id.String()
		}
	}
	return uuid.NewString()
}
