package bpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bpmcp/bpmcp/internal/calltrace"
)

// request describes one API call.
type request struct {
	method string
	path   string     // escaped, relative to the base URL, e.g. "/runs/<id>"
	query  url.Values // nil or empty for none
	body   []byte     // JSON body; nil for none
	out    any        // where the envelope's data is decoded
	// check, when set, runs after a successful decode and returns a
	// description of what makes the payload unusable, or "".
	check func() string
}

// outcome is the result of one attempt.
type outcome struct {
	attempt       int
	err           error     // what the call returns if this attempt is the last
	status        int       // HTTP status; 0 when no answer arrived
	apiErr        *APIError // the API's (or a proxy's) non-success answer
	hasRetryAfter bool      // the answer carried a readable Retry-After
	connErr       error     // the connection failed before a complete answer
	maySent       bool      // the request may have reached the API
}

// do performs r with rate limiting and retries and decodes the envelope's
// data into r.out.
func (c *Client) do(ctx context.Context, r request) error {
	apiPath := c.basePath + r.path
	op := "betterprompt " + r.method + " " + apiPath
	if c.baseErr != nil {
		return fmt.Errorf("%s: %w", op, c.baseErr)
	}
	if c.cred.err != nil {
		return fmt.Errorf("%s: %w", op, c.cred.err)
	}
	target := c.baseURL + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	if r.method == http.MethodGet && c.requestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.requestTimeout)
		defer cancel()
	}
	var waited time.Duration
	serverRetries := 0
	for attempt := 1; ; attempt++ {
		if err := c.waitLimiter(ctx); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		o := c.attempt(ctx, &r, target, apiPath, attempt)
		if o.err == nil {
			return nil
		}
		final := c.finalError(&r, &o)
		if attempt > c.maxRetries {
			return final
		}
		wait, retry := c.retryDecision(&r, &o, &serverRetries)
		if !retry || waited+wait > c.maxRetryWait {
			return final
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return final
		}
		if c.log != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "betterprompt retry",
				slog.String("method", r.method), slog.String("path", apiPath),
				slog.Int("attempt", attempt), slog.Duration("wait", wait))
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: %w (while waiting to retry after: %v)", op, err, final)
		}
		waited += wait
	}
}

// finalError is the error a call returns when o is its last attempt. For
// POST /v1/runs it wraps ErrOutcomeUnknown when a run may exist.
func (c *Client) finalError(r *request, o *outcome) error {
	if r.method == http.MethodGet || !o.maySent {
		return o.err
	}
	if o.apiErr != nil && o.connErr == nil {
		if refusedBeforeRunning(o.status) {
			return o.err // refused by the API before anything ran
		}
		if o.status == http.StatusGatewayTimeout && o.apiErr.RunID != "" {
			return o.err // the run exists and goes on: poll o.apiErr.RunID
		}
	}
	return &outcomeUnknownError{err: o.err}
}

// refusedBeforeRunning reports whether an answer to POST /v1/runs with this
// status means that no run was started: the API's documented refusals
// (malformed request, key, credits, unknown version, validation) and the
// statuses a server gives a request it did not process. A 429 is among
// them, although a proxy in between may answer 429 after the API created
// the run: the caller looks in the run list before sending it again. Any
// other 4xx (a 408 or 409 from a proxy, say) leaves the outcome unknown.
func refusedBeforeRunning(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden,
		http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		return true
	}
	return false
}

// attempt sends r once and reads the answer.
func (c *Client) attempt(ctx context.Context, r *request, target, apiPath string, n int) outcome {
	o := outcome{attempt: n}
	calltrace.CountRequest(ctx)
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	var trace sendTrace
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace.clientTrace()), r.method, target, body)
	if err != nil {
		o.err = fmt.Errorf("betterprompt %s %s: building the request: %w", r.method, apiPath, withoutURL(err))
		return o
	}
	if c.cred.header != "" {
		req.Header.Set("Authorization", c.cred.header)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	start := time.Now()
	resp, err := c.httpc.Do(req)
	if err != nil {
		o.connErr = withoutURL(err)
		o.maySent = trace.maySent(o.connErr)
		o.err = c.connError(ctx, r.method, apiPath, "", o.connErr)
		c.logAttempt(ctx, r.method, apiPath, 0, time.Since(start), n, o.connErr)
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	if strings.EqualFold(strings.TrimSpace(resp.Header.Get("Action-Require")), "update-resources") {
		c.resourcesStale.Store(true)
	}
	o.maySent = true
	raw, readErr := readBody(resp.Body, c.maxBodyBytes)
	// An answer that echoes the key (a debugging proxy, say), raw, escaped
	// or percent-encoded, must not carry it into decoded data, an error, a
	// log line or a tool result.
	raw = c.redactBytes(raw)
	c.logAttempt(ctx, r.method, apiPath, resp.StatusCode, time.Since(start), n, readErr)
	switch {
	case readErr == nil && resp.StatusCode >= 300 && resp.StatusCode <= 399:
		o.apiErr = &APIError{HTTPStatus: resp.StatusCode,
			Message: "the API answered with a redirect, which the client does not follow; check BaseURL"}
	case errors.Is(readErr, errBodyTooLarge):
		o.apiErr = &APIError{HTTPStatus: resp.StatusCode, Message: fmt.Sprintf(
			"response body is larger than the %d-byte limit: %s", c.maxBodyBytes, excerpt(raw))}
		o.apiErr.RetryAfter, o.hasRetryAfter = retryAfter(resp.Header)
	case readErr != nil:
		o.connErr = readErr
		o.err = c.connError(ctx, r.method, apiPath, fmt.Sprintf("HTTP %d, reading the body: ", resp.StatusCode), readErr)
		return o
	default:
		skipped, apiErr := decodeAnswer(resp.StatusCode, resp.Header, raw, r.out, r.check)
		if apiErr == nil {
			if skipped != "" && c.log != nil {
				c.log.LogAttrs(ctx, slog.LevelWarn, "betterprompt answer has a field of an unexpected type; ignored it",
					slog.String("method", r.method), slog.String("path", apiPath), slog.String("field", skipped))
			}
			return o
		}
		o.apiErr = apiErr
		_, o.hasRetryAfter = retryAfter(resp.Header)
	}
	o.apiErr.Method, o.apiErr.Path = r.method, apiPath
	o.err = o.apiErr
	return o
}

// connError describes a failure to get a complete answer. When the context
// ended, the error wraps the context's error.
func (c *Client) connError(ctx context.Context, method, apiPath, prefix string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("betterprompt %s %s: %s%w", method, apiPath, prefix, err)
		}
		return fmt.Errorf("betterprompt %s %s: %s%w (%v)", method, apiPath, prefix, ctxErr, err)
	}
	if prefix == "" {
		prefix = "no answer: "
	}
	return fmt.Errorf("betterprompt %s %s: %s%w", method, apiPath, prefix, err)
}

func (c *Client) logAttempt(ctx context.Context, method, apiPath string, status int, d time.Duration, n int, err error) {
	if c.observe != nil {
		c.observe(method, apiPath, status, d)
	}
	if c.log == nil || !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method), slog.String("path", apiPath), slog.Int("status", status),
		slog.Duration("duration", d), slog.Int("attempt", n),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "betterprompt request", attrs...)
}

var errBodyTooLarge = errors.New("response body too large")

// readBody reads at most limit bytes of body. A longer body yields what was
// read and errBodyTooLarge.
func readBody(body io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > limit {
		return b[:limit], errBodyTooLarge
	}
	return b, nil
}

// withoutURL unwraps a *url.Error so that no URL ends up in an error
// message.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// sendTrace records whether an attempt got as far as a connection.
type sendTrace struct {
	getConn atomic.Bool // the transport started looking for a connection
	gotConn atomic.Bool // the transport got one: the request may have been sent
}

func (t *sendTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { t.getConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { t.gotConn.Store(true) },
	}
}

// maySent reports whether a request that failed with err may have reached
// the server. It says no only when that is certain: the transport traced a
// connection attempt that never produced a connection, or the error is a
// dial error.
func (t *sendTrace) maySent(err error) bool {
	if t.gotConn.Load() {
		return true
	}
	if t.getConn.Load() {
		return false
	}
	return !isDialError(err)
}

// outcomeUnknownError wraps a CreateRun error after which a run may exist.
// errors.Is(err, ErrOutcomeUnknown) holds, and errors.As still finds the
// *APIError or the context's error inside.
type outcomeUnknownError struct{ err error }

func (e *outcomeUnknownError) Error() string {
	return e.err.Error() + " (outcome unknown: " + ErrOutcomeUnknown.Error() + "; look for it with ListRuns before creating it again)"
}

func (e *outcomeUnknownError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.err} }
