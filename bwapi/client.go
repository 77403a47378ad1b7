package bwapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bpmcp/bpmcp/internal/calltrace"

	"github.com/bpmcp/bpmcp/internal/secret"
)

// DefaultBaseURL is the API root.
const DefaultBaseURL = "https://betterwaifu.com/api/v1"

// APIKey is a BetterWaifu key (bw_…), a secret.String.
type APIKey = secret.String

// Options configure a Client.
type Options struct {
	// BaseURL is the API root, default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>".
	APIKey APIKey
	// HTTPClient performs the requests; default: one that follows no
	// redirects.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// RequestTimeout bounds each call, retries included (default 30 s).
	RequestTimeout time.Duration
	// Logger receives a debug line per request (never the key). Nil
	// discards them.
	Logger *slog.Logger
	// Observe, when set, is told of every attempt: method, path (ids
	// included), HTTP status (0 when no answer came) and duration.
	Observe func(method, path string, status int, d time.Duration)
}

// Client calls the BetterWaifu API with one key. It is safe for concurrent
// use.
type Client struct {
	base      string
	baseErr   error
	httpc     *http.Client
	userAgent string
	timeout   time.Duration
	log       *slog.Logger
	observe   func(method, path string, status int, d time.Duration)
	cred      *credential // behind a pointer so that printing a Client never shows the key
}

type credential struct {
	key  APIKey
	hash [32]byte
}

// New returns a client; an unusable BaseURL is reported by every call.
func New(opts Options) *Client {
	c := &Client{httpc: opts.HTTPClient, userAgent: opts.UserAgent, timeout: opts.RequestTimeout, log: opts.Logger, observe: opts.Observe}
	c.base = strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/")
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	if u, err := url.Parse(c.base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.baseErr = fmt.Errorf("betterwaifu: invalid base URL %q: want http(s)://host/path", c.base)
	}
	if c.httpc == nil {
		c.httpc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.userAgent == "" {
		c.userAgent = "bpmcp"
	}
	if c.timeout == 0 {
		c.timeout = 30 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.cred = newCredential(opts.APIKey)
	return c
}

func newCredential(k APIKey) *credential {
	s := strings.TrimSpace(k.Reveal())
	if len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
		s = strings.TrimSpace(s[7:])
	}
	return &credential{key: APIKey(s), hash: sha256.Sum256([]byte(s))}
}

// WithAPIKey returns a copy of c that uses key.
func (c *Client) WithAPIKey(key APIKey) *Client {
	cp := *c
	cp.cred = newCredential(key)
	return &cp
}

// KeyID is a short, non-reversible identity of the key, for state kept per
// key.
func (c *Client) KeyID() string { return "bw-" + hex.EncodeToString(c.cred.hash[:8]) }

// HasAPIKey reports whether the client has a key.
func (c *Client) HasAPIKey() bool { return c.cred.key != "" }

// Account reads the account (GET /account).
func (c *Client) Account(ctx context.Context) (*Account, error) {
	var a Account
	if err := c.get(ctx, "/account", &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Models lists the models that can generate (GET /models). The result is
// never nil.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	var out struct {
		Models []Model `json:"models"`
	}
	if err := c.get(ctx, "/models", &out); err != nil {
		return nil, err
	}
	if out.Models == nil {
		out.Models = []Model{}
	}
	return out.Models, nil
}

// Generation reads a generation (GET /generate/{id}).
func (c *Client) Generation(ctx context.Context, id string) (*Generation, error) {
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 200 {
		return nil, errors.New("betterwaifu: a generation id is 1 to 200 characters")
	}
	var g Generation
	if err := c.get(ctx, "/generate/"+url.PathEscape(id), &g); err != nil {
		return nil, err
	}
	if g.ID == "" {
		g.ID = id
	}
	return &g, nil
}

// Generate starts a generation (POST /generate). It is sent once: a
// failure after the request may have reached the API wraps
// ErrOutcomeUnknown; a 201 without an id the client can find is ErrNoID.
// The request is sent again only when the connection could not be made.
func (c *Client) Generate(ctx context.Context, req GenerateRequest) (*Generation, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("betterwaifu: encode the request: %w", err)
	}
	status, h, resp, err := c.send(ctx, http.MethodPost, "/generate", body, false)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, c.apiError(http.MethodPost, "/generate", status, h, resp)
	}
	id, st := idOf(resp)
	if id == "" {
		return nil, fmt.Errorf("%w (HTTP %d: %s)", ErrNoID, status, excerpt(resp))
	}
	if st == "" {
		st = Queued
	}
	var g Generation
	_ = json.Unmarshal(resp, &g) // the rest, when the body is a generation
	g.ID, g.Status = id, st
	return &g, nil
}

// get reads path into out, retrying connection failures and 5xx answers.
func (c *Client) get(ctx context.Context, path string, out any) error {
	status, h, body, err := c.send(ctx, http.MethodGet, path, nil, true)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return c.apiError(http.MethodGet, path, status, h, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &APIError{Method: http.MethodGet, Path: path, Status: status, Message: "the answer is not the JSON expected: " + excerpt(body)}
	}
	return nil
}

const (
	maxBody     = 4 << 20
	readRetries = 2
)

// send performs one call. A read (idempotent) is retried on a connection
// failure or a 5xx; a POST only when the connection could not be made.
func (c *Client) send(ctx context.Context, method, path string, body []byte, idempotent bool) (int, http.Header, []byte, error) {
	if c.baseErr != nil {
		return 0, nil, nil, c.baseErr
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		status, h, resp, err := c.attempt(ctx, method, path, body)
		retry := attempt < readRetries && ctx.Err() == nil &&
			(err != nil && (idempotent || isDialError(err)) || idempotent && status >= 500)
		if !retry {
			if err != nil && !idempotent && !isDialError(err) {
				return 0, nil, nil, fmt.Errorf("%w: %s %s: %v", ErrOutcomeUnknown, method, path, err)
			}
			return status, h, resp, err
		}
		select {
		case <-ctx.Done():
			return 0, nil, nil, fmt.Errorf("betterwaifu: %s %s: %w", method, path, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 300 * time.Millisecond):
		}
	}
}

func (c *Client) attempt(ctx context.Context, method, path string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("betterwaifu: %s %s: %w", method, path, err)
	}
	if c.cred.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred.key.Reveal())
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	calltrace.CountRequest(ctx)
	resp, err := c.httpc.Do(req)
	if c.observe != nil {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		c.observe(method, path, status, time.Since(start))
	}
	if err != nil {
		c.log.DebugContext(ctx, "betterwaifu request failed", "method", method, "path", path, "err", withoutURL(err))
		return 0, nil, nil, fmt.Errorf("betterwaifu: %s %s: %w", method, path, withoutURL(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(b) > maxBody {
		err = fmt.Errorf("the answer is larger than %d bytes", maxBody)
	}
	c.log.DebugContext(ctx, "betterwaifu request", "method", method, "path", path, "status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("betterwaifu: %s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, resp.Header, secret.Redact(b, c.cred.key.Reveal()), nil
}

// apiError reads an error answer: {"error": "..."} or anything else.
func (c *Client) apiError(method, path string, status int, h http.Header, body []byte) error {
	e := &APIError{Method: method, Path: path, Status: status}
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil {
		var s string
		switch {
		case json.Unmarshal(env.Error, &s) == nil && s != "":
			e.Message = s
		case env.Message != "":
			e.Message = env.Message
		case len(env.Error) > 0:
			e.Message = excerpt(env.Error)
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
		if len(bytes.TrimSpace(body)) > 0 {
			e.Message += ": " + excerpt(body)
		}
	}
	if len(e.Message) > 1000 {
		e.Message = e.Message[:1000] + "…"
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// isDialError reports a connection that was never made: nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// withoutURL drops the URL that net/http puts in its errors (it repeats the
// base URL, which may carry credentials a user pasted into it).
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact returns s with the client's key replaced by a placeholder, raw,
// JSON-escaped or percent-encoded (secret.Redact).
func (c *Client) Redact(s string) string {
	return string(secret.Redact([]byte(s), c.cred.key.Reveal()))
}
