package bpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bpmcp/bpmcp/state"
)

// DefaultBaseURL is the BetterPrompt API's base URL. It includes the /v1
// prefix; endpoint paths such as /runs are appended to it.
const DefaultBaseURL = "https://api.betterprompt.me/v1"

// DefaultUserAgent is the User-Agent sent when Options.UserAgent is empty.
const DefaultUserAgent = "bpmcp/dev"

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultRateLimit      = 5                // requests per second per API key (the documented limit)
	DefaultBurst          = 2                // rate-limiter burst; below the API's own, so arrival jitter cannot trip it
	DefaultRequestTimeout = 30 * time.Second // deadline of one read call, retries included
	DefaultMaxRetries     = 3                // retries of a retryable request
	DefaultMaxRetryWait   = 30 * time.Second // total waiting between attempts of one call
	DefaultMaxBodyBytes   = 8 << 20          // response body cap (8 MiB)
)

// Options configures a Client. The zero value of every field selects its
// default.
type Options struct {
	// BaseURL is the API root including /v1, default DefaultBaseURL. The
	// local fake and tests point it elsewhere.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>". A key that already
	// starts with "Bearer " is not prefixed twice. An empty key sends no
	// Authorization header at all, and the API answers 401.
	APIKey APIKey
	// HTTPClient performs the requests. The default has a tuned transport
	// and no overall Timeout, because POST /v1/runs is held open for up to
	// about two minutes; per-call deadlines come from the context.
	HTTPClient *http.Client
	// UserAgent is sent with every request, default DefaultUserAgent.
	UserAgent string
	// RateLimit is the client-side limit in requests per second per API
	// key, default 5; a negative value disables the limiter.
	RateLimit float64
	// Limiter, when set, replaces the built-in limiter (RateLimit and Burst
	// are then ignored): a shared store can then hold the limit of every
	// replica that uses a key.
	Limiter Limiter
	// Burst is the limiter's burst, default 2. The API's own bucket holds
	// about 5 requests; a client that bursts as much as the server allows
	// gets a 429 whenever two requests arrive a little closer together than
	// they were sent, so it keeps a margin.
	Burst int
	// RequestTimeout bounds every call except CreateRun (whose answer the
	// API holds for up to ~120 s; bound it with ctx), retries included.
	// Default 30 s; negative means no bound beyond ctx.
	RequestTimeout time.Duration
	// MaxRetries caps the retries of one call, default 3; negative means
	// no retries.
	MaxRetries int
	// MaxRetryWait caps the total time one call spends waiting between
	// attempts (backoff and Retry-After together), default 30s. A wait that
	// would exceed what is left of it is not started: the call returns the
	// last error instead. A negative value allows no waiting at all.
	MaxRetryWait time.Duration
	// MaxBodyBytes caps the size of a response body, default 8 MiB. A larger
	// body is an error, never silently truncated.
	MaxBodyBytes int64
	// Logger, when set, receives one debug line per attempt (method, path,
	// status, duration, attempt) and one per retry. It never sees the key.
	Logger *slog.Logger
	// Observe, when set, is told of every attempt: its method, its path
	// (relative to the base URL, ids included), the HTTP status (0 when no
	// answer came) and its duration. Metrics use it.
	Observe func(method, path string, status int, d time.Duration)
}

// Client is a BetterPrompt API client. It is safe for concurrent use. Create
// it with New; derive clients for other API keys with WithAPIKey.
type Client struct {
	baseURL  string // without trailing slash, e.g. https://api.betterprompt.me/v1
	basePath string // the base URL's escaped path, e.g. /v1
	baseErr  error  // set when Options.BaseURL is unusable

	httpc     *http.Client
	userAgent string
	cred      *credential // behind a pointer so that printing a Client never shows the key
	limiter   Limiter     // nil: no client-side limit

	// resourcesStale is set when an answer asks for the resources to be
	// read again (action-require: update-resources); shared by every copy
	// made with WithAPIKey.
	resourcesStale *atomic.Bool

	maxRetries     int
	maxRetryWait   time.Duration
	requestTimeout time.Duration
	maxBodyBytes   int64
	backoffBase    time.Duration // first backoff step; tests shorten it
	log            *slog.Logger
	observe        func(method, path string, status int, d time.Duration)
}

// credential is an API key prepared for use.
type credential struct {
	key    APIKey   // the normalized key (no "Bearer " prefix, no surrounding space)
	header string   // the Authorization header value, "" when there is no key
	hash   [32]byte // sha256 of the key: KeyID is made of it
	err    error    // set when the key cannot be put into a header
}

// New returns a client configured by opts. It never fails: an unusable
// BaseURL or API key is reported by every call instead.
func New(opts Options) *Client {
	c := &Client{
		httpc:          opts.HTTPClient,
		userAgent:      opts.UserAgent,
		maxRetries:     opts.MaxRetries,
		maxRetryWait:   opts.MaxRetryWait,
		requestTimeout: opts.RequestTimeout,
		maxBodyBytes:   opts.MaxBodyBytes,
		backoffBase:    250 * time.Millisecond,
		log:            opts.Logger,
		observe:        opts.Observe,
	}
	c.baseURL, c.basePath, c.baseErr = parseBaseURL(opts.BaseURL)
	if c.httpc == nil {
		c.httpc = DefaultHTTPClient()
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	switch {
	case c.maxRetryWait == 0:
		c.maxRetryWait = DefaultMaxRetryWait
	case c.maxRetryWait < 0:
		c.maxRetryWait = 0
	}
	switch {
	case c.requestTimeout == 0:
		c.requestTimeout = DefaultRequestTimeout
	case c.requestTimeout < 0:
		c.requestTimeout = 0
	}
	if c.maxBodyBytes <= 0 {
		c.maxBodyBytes = DefaultMaxBodyBytes
	}
	limit, burst := opts.RateLimit, opts.Burst
	if limit == 0 {
		limit = DefaultRateLimit
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	switch {
	case opts.Limiter != nil:
		c.limiter = opts.Limiter
	case limit > 0:
		c.limiter = state.NewRateLimiter(limit, burst)
	}
	c.cred = newCredential(opts.APIKey)
	c.resourcesStale = new(atomic.Bool)
	return c
}

// ResourcesChanged reports whether an answer since the last call asked
// clients to read GET /v1/resources again (the header action-require:
// update-resources that the official CLI honours), and clears the mark.
func (c *Client) ResourcesChanged() bool { return c.resourcesStale.Swap(false) }

// WithAPIKey returns a copy of c that authenticates with key. The copy is
// cheap: it shares c's HTTP client and rate limiter, so every client derived
// from the same New call that uses one key waits on one limit.
func (c *Client) WithAPIKey(key APIKey) *Client {
	cp := *c
	cp.cred = newCredential(key)
	return &cp
}

// KeyID is a short, non-reversible identity of the client's API key, as the
// API reads it ("Bearer k" and "k" are one key). State kept per key (run
// handles, wait slots, caches) is keyed by it.
func (c *Client) KeyID() string { return hex.EncodeToString(c.cred.hash[:8]) }

// HasAPIKey reports whether the client has a non-empty API key.
func (c *Client) HasAPIKey() bool { return c.cred.key != "" }

// BaseURL returns the API root the client talks to, without a trailing
// slash.
func (c *Client) BaseURL() string { return c.baseURL }

// CloseIdleConnections closes the idle keep-alive connections of the
// client's HTTP client (shared by every client derived with WithAPIKey), for
// a clean shutdown. Requests in flight are not affected.
func (c *Client) CloseIdleConnections() { c.httpc.CloseIdleConnections() }

// DefaultHTTPClient returns an HTTP client for the API: the standard
// transport's proxy settings and dial, TLS and idle timeouts, no overall
// timeout, and no redirects.
func DefaultHTTPClient() *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	// Enough idle connections for many concurrent calls (polling runs,
	// multi-tenant HTTP mode): each one not kept is a new TLS handshake.
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 0, 128
	return &http.Client{
		Transport: t,
		// A redirect is reported, not followed: following one would turn
		// POST /v1/runs into a GET and hide a wrong BaseURL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func parseBaseURL(raw string) (base, path string, err error) {
	if strings.TrimSpace(raw) == "" {
		raw = DefaultBaseURL
	}
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	u, perr := url.Parse(raw)
	if perr != nil {
		// url.Parse's error repeats the URL; keep only its reason.
		var ue *url.Error
		if errors.As(perr, &ue) {
			perr = ue.Err
		}
		return raw, "", fmt.Errorf("invalid BaseURL: %w", perr)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return raw, "", errors.New("invalid BaseURL: the scheme must be http or https")
	}
	if u.Host == "" {
		return raw, "", errors.New("invalid BaseURL: no host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return raw, "", errors.New("invalid BaseURL: it must not have a query or fragment")
	}
	return raw, u.EscapedPath(), nil
}

func newCredential(k APIKey) *credential {
	s := strings.TrimSpace(k.Reveal())
	const p = "bearer"
	if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) &&
		(len(s) == len(p) || s[len(p)] == ' ' || s[len(p)] == '\t') {
		s = strings.TrimSpace(s[len(p):])
	}
	cr := &credential{key: APIKey(s), hash: sha256.Sum256([]byte(s))}
	if s == "" {
		return cr
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			cr.err = errors.New("the API key contains characters that cannot be sent in an HTTP header")
			return cr
		}
	}
	cr.header = "Bearer " + s
	return cr
}

// SearchPrompts searches published prompts (GET /v1/prompts/publish?q=).
// The query is trimmed; an empty query is an error and sends nothing. Video
// prompts are never returned. The result is never nil.
func (c *Client) SearchPrompts(ctx context.Context, query string) ([]PromptSummary, error) {
	q := strings.TrimSpace(query)
	if q == "" {
		return nil, fmt.Errorf("betterprompt: search prompts: %w", ErrEmptyQuery)
	}
	var out struct {
		Rows []PromptSummary `json:"rows"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/prompts/publish", query: url.Values{"q": {q}}, out: &out})
	if err != nil {
		return nil, err
	}
	if out.Rows == nil {
		out.Rows = []PromptSummary{}
	}
	return out.Rows, nil
}

// GetPrompt returns a published prompt at its latest version, or at
// versionID when that is not empty (GET /v1/prompts/{promptId}?versionId=).
func (c *Client) GetPrompt(ctx context.Context, promptID, versionID string) (*PromptVersion, error) {
	if err := c.checkID("promptId", promptID); err != nil {
		return nil, err
	}
	var q url.Values
	if versionID != "" {
		if err := c.checkID("versionId", versionID); err != nil {
			return nil, err
		}
		q = url.Values{"versionId": {versionID}}
	}
	var out PromptVersion
	if err := c.do(ctx, request{method: http.MethodGet, path: "/prompts/" + url.PathEscape(promptID), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPromptVersions lists up to ten published versions of a prompt, newest
// first (GET /v1/prompts/{promptId}/versions). Only older documentation
// describes this endpoint.
func (c *Client) ListPromptVersions(ctx context.Context, promptID string) (*VersionList, error) {
	if err := c.checkID("promptId", promptID); err != nil {
		return nil, err
	}
	var out VersionList
	if err := c.do(ctx, request{method: http.MethodGet, path: "/prompts/" + url.PathEscape(promptID) + "/versions", out: &out}); err != nil {
		return nil, err
	}
	if out.Versions == nil {
		out.Versions = []VersionRef{}
	}
	return &out, nil
}

// GetPromptVersion returns one published prompt version
// (GET /v1/prompt-versions/{promptVersionId}).
func (c *Client) GetPromptVersion(ctx context.Context, versionID string) (*PromptVersion, error) {
	if err := c.checkID("promptVersionId", versionID); err != nil {
		return nil, err
	}
	var out PromptVersion
	if err := c.do(ctx, request{method: http.MethodGet, path: "/prompt-versions/" + url.PathEscape(versionID), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateRun starts a run and waits for it (POST /v1/runs). The API holds
// the request for up to about two minutes; give ctx a deadline above that
// if you want the API's answer rather than your own timeout.
//
// A run that does not finish in the API's window comes back as an error for
// which TimedOutRunID reports the run id: the run goes on, poll it with
// GetRun. The request is retried only when no connection could be made.
// A 429 is returned as it is (IsRateLimited; RetryAfter says when to try
// again): it normally means nothing was created, but a proxy may answer 429
// after the API created the run, so look in the run list before sending it
// again. The API's documented refusals (400, 401, 402, 404, 422) mean that
// nothing was started. Any other failure after the request may have reached
// the API (a 5xx, another 4xx, a 504 without a run id, a broken connection,
// a deadline, an unreadable success answer) wraps ErrOutcomeUnknown, and
// also the *APIError when there was an HTTP answer: a run may exist, so
// look for it with ListRuns before creating it again.
func (c *Client) CreateRun(ctx context.Context, req CreateRunRequest) (*Run, error) {
	if err := c.checkID("promptVersionId", req.PromptVersionID); err != nil {
		return nil, err
	}
	if req.Inputs.TextInputs == nil {
		req.Inputs.TextInputs = map[string]string{} // the API expects an object
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("betterprompt: create run: encoding the request: %w", err)
	}
	var out Run
	check := func() string {
		if out.RunID == "" {
			return "the answer has no runId"
		}
		return ""
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: "/runs", body: body, out: &out, check: check}); err != nil {
		return nil, err
	}
	if out.Outputs == nil {
		out.Outputs = []Output{}
	}
	return &out, nil
}

// GetRun reads a run (GET /v1/runs/{runId}); poll it while its status is
// not final.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	if err := c.checkID("runId", runID); err != nil {
		return nil, err
	}
	var out Run
	if err := c.do(ctx, request{method: http.MethodGet, path: "/runs/" + url.PathEscape(runID), out: &out}); err != nil {
		return nil, err
	}
	if out.Outputs == nil {
		out.Outputs = []Output{}
	}
	return &out, nil
}

// ListRuns returns one page of the caller's runs, newest first
// (GET /v1/runs). Zero-valued parameters are left out of the query; the
// cursors must be run ids (UUIDs).
func (c *Client) ListRuns(ctx context.Context, p ListRunsParams) (*RunList, error) {
	q := url.Values{}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		if err := c.checkID("startingAfter", p.StartingAfter); err != nil {
			return nil, err
		}
		q.Set("startingAfter", p.StartingAfter)
	}
	if p.EndingBefore != "" {
		if err := c.checkID("endingBefore", p.EndingBefore); err != nil {
			return nil, err
		}
		q.Set("endingBefore", p.EndingBefore)
	}
	if p.Status != "" {
		q.Set("status", string(p.Status))
	}
	if p.Since != 0 {
		q.Set("since", strconv.FormatInt(p.Since, 10))
	}
	if p.Until != 0 {
		q.Set("until", strconv.FormatInt(p.Until, 10))
	}
	var out RunList
	if err := c.do(ctx, request{method: http.MethodGet, path: "/runs", query: q, out: &out}); err != nil {
		return nil, err
	}
	if out.Rows == nil {
		out.Rows = []Run{}
	}
	for i := range out.Rows {
		if out.Rows[i].Outputs == nil {
			out.Rows[i].Outputs = []Output{}
		}
	}
	return &out, nil
}

// Me returns the account that owns the API key (GET /v1/me). It is the
// cheapest way to check a key.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var out User
	if err := c.do(ctx, request{method: http.MethodGet, path: "/me", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Credits returns the account's remaining credit balance
// (GET /v1/me/credits, data.credits). A fractional balance is rounded down.
func (c *Client) Credits(ctx context.Context) (int, error) {
	var out struct {
		Credits *json.Number `json:"credits"`
	}
	var credits int
	check := func() string {
		if out.Credits == nil {
			return "the answer has no credits"
		}
		if n, err := out.Credits.Int64(); err == nil {
			credits = int(n)
			return ""
		}
		f, err := out.Credits.Float64()
		if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
			return "credits is not a usable number"
		}
		credits = int(math.Floor(f))
		return ""
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/me/credits", out: &out, check: check}); err != nil {
		return 0, err
	}
	return credits, nil
}

// Resources returns the models a run may use and the run options each one
// accepts (GET /v1/resources: data.resources.models and data.hash).
func (c *Client) Resources(ctx context.Context) (*Resources, error) {
	var out struct {
		Hash      string `json:"hash"`
		Resources *struct {
			Models []Model `json:"models"`
		} `json:"resources"`
		Models []Model `json:"models"` // tolerated: models directly under data
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/resources", out: &out}); err != nil {
		return nil, err
	}
	res := &Resources{Hash: out.Hash, Models: out.Models}
	if out.Resources != nil && out.Resources.Models != nil {
		res.Models = out.Resources.Models
	}
	if res.Models == nil {
		res.Models = []Model{}
	}
	return res, nil
}
