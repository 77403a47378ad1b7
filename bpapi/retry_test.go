package bpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var okRun = answer(200, success(`{"runId":"`+runID+`","outputs":[],"runStatus":"succeeded","tokens":3}`))

func TestGetRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		opts     func(*Options)
		wantReqs int
		wantErr  int // HTTP status of the final APIError; 0 for success, -1 for a non-API error
	}{
		{"503 twice then ok", sequence(answer(503, "<html>busy</html>"), answer(503, failure("SERVICE_UNAVAILABLE", "", "")), okRun), nil, 3, 0},
		{"502 then ok", sequence(answer(502, "<html>bad gateway</html>"), okRun), nil, 2, 0},
		{"503 with Retry-After 0", sequence(answer(503, "", "Retry-After", "0"), okRun), nil, 2, 0},
		{"500 is retried once", answer(500, failure(CodeServer, "boom", "")), nil, 2, 500},
		{"500 then ok", sequence(answer(500, failure(CodeServer, "boom", "")), okRun), nil, 2, 0},
		{"504 is retried once", answer(504, "<html>gateway timeout</html>"), nil, 2, 504},
		{"503 until MaxRetries", answer(503, ""), nil, 4, 503},
		{"503, MaxRetries 1", answer(503, ""), func(o *Options) { o.MaxRetries = 1 }, 2, 503},
		{"503, retries disabled", answer(503, ""), func(o *Options) { o.MaxRetries = -1 }, 1, 503},
		{"404 is not retried", answer(404, failure(CodeNotFound, "Run not found", "")), nil, 1, 404},
		{"422 is not retried", answer(422, failure(CodeValidation, "Invalid runId", "")), nil, 1, 422},
		{"401 is not retried", answer(401, failure(CodeUnauthorized, "nope", "")), nil, 1, 401},
		{"hang-up then ok", sequence(func(w http.ResponseWriter, _ *http.Request) { hangUp(w) }, okRun), nil, 2, 0},
		{"hang-up always", func(w http.ResponseWriter, _ *http.Request) { hangUp(w) }, nil, 4, -1},
		{"body cut short then ok", sequence(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"status":"SUCCESS","data":{`))
		}, okRun), nil, 2, 0},
		{"429 Retry-After beyond MaxRetryWait is not waited for", answer(429, failure(CodeTooManyRequests, "slow", ""), "Retry-After", "100"), nil, 1, 429},
		{"503 Retry-After beyond MaxRetryWait", answer(503, "", "Retry-After", "31"), nil, 1, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []func(*Options){}
			if tt.opts != nil {
				opts = append(opts, tt.opts)
			}
			srv, c := newServer(t, tt.handler, opts...)
			start := time.Now()
			run, err := c.GetRun(context.Background(), runID)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if n := srv.count(); n != tt.wantReqs {
				t.Errorf("server saw %d requests, want %d", n, tt.wantReqs)
			}
			var ae *APIError
			switch {
			case tt.wantErr == 0:
				if err != nil || run.RunID != runID {
					t.Fatalf("GetRun = %+v, %v", run, err)
				}
			case tt.wantErr < 0:
				if err == nil || errors.As(err, &ae) {
					t.Fatalf("err = %v, want a connection error", err)
				}
			default:
				if !errors.As(err, &ae) || ae.HTTPStatus != tt.wantErr {
					t.Fatalf("err = %v, want HTTP %d", err, tt.wantErr)
				}
			}
		})
	}
}

// TestGetHonoursRetryAfter: two 429s with Retry-After: 1, then success. The
// protocol forbids retrying earlier, so at least 2 s must pass.
func TestGetHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	limited := answer(429, failure(CodeTooManyRequests, "Rate limit exceeded", ""), "Retry-After", "1")
	srv, c := newServer(t, sequence(limited, limited, okRun))
	start := time.Now()
	run, err := c.GetRun(context.Background(), runID)
	elapsed := time.Since(start)
	if err != nil || run.Status != RunSucceeded {
		t.Fatalf("GetRun = %+v, %v", run, err)
	}
	if n := srv.count(); n != 3 {
		t.Errorf("server saw %d requests, want 3", n)
	}
	if elapsed < 2*time.Second {
		t.Errorf("succeeded after %v, before the 2 s the server asked for", elapsed)
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	// An HTTP date in the past means "now".
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	srv, c := newServer(t, sequence(answer(429, failure(CodeTooManyRequests, "", ""), "Retry-After", past), okRun))
	if _, err := c.GetRun(context.Background(), runID); err != nil {
		t.Fatal(err)
	}
	if srv.count() != 2 {
		t.Errorf("server saw %d requests, want 2", srv.count())
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false},
		{"999999999", 24 * time.Hour, true},
		{time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		got, ok := retryAfter(h)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
		}
	}
	h := http.Header{"Retry-After": {future}}
	if got, ok := retryAfter(h); !ok || got < 85*time.Second || got > 90*time.Second {
		t.Errorf("retryAfter(%q) = %v, %v", future, got, ok)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base := 250 * time.Millisecond
	for n, want := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second, 4: 2 * time.Second, 10: maxBackoff, 100: maxBackoff} {
		for range 50 {
			got := backoff(base, n)
			if got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, got, want/2, want)
			}
		}
	}
}

// TestCancelStopsBackoff: a cancelled context ends a long Retry-After wait at
// once.
func TestCancelStopsBackoff(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, answer(429, failure(CodeTooManyRequests, "slow", ""), "Retry-After", "30"),
		func(o *Options) { o.MaxRetryWait = time.Minute; o.RequestTimeout = -1 })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.GetRun(ctx, runID)
	elapsed := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if elapsed > time.Second {
		t.Errorf("returned after %v, want about 100 ms", elapsed)
	}
	if srv.count() != 1 {
		t.Errorf("server saw %d requests, want 1", srv.count())
	}
}

// TestDeadlineBeforeRetryAfter: a wait that would end after the deadline is
// not started; the call returns the 429 at once.
func TestDeadlineBeforeRetryAfter(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, answer(429, failure(CodeTooManyRequests, "slow", ""), "Retry-After", "5"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetRun(ctx, runID)
	if !IsRateLimited(err) {
		t.Fatalf("err = %v, want the 429", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("returned after %v", elapsed)
	}
}

func TestGetDeadlineWhileWaitingForAnswer(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetRun(ctx, runID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if srv.count() != 1 {
		t.Errorf("server saw %d requests, want 1", srv.count())
	}
}

func TestCreateRunNeverRepeated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		timeout  time.Duration
		wantReqs int
		unknown  bool // errors.Is(err, ErrOutcomeUnknown)
		status   int  // HTTP status of the *APIError inside; 0 when none
		runID    string
		ctxErr   error
	}{
		{name: "500", handler: answer(500, failure(CodeServer, "Internal server error", "")), wantReqs: 1, unknown: true, status: 500},
		{name: "502 html", handler: answer(502, "<html>bad gateway</html>"), wantReqs: 1, unknown: true, status: 502},
		{name: "503", handler: answer(503, "", "Retry-After", "1"), wantReqs: 1, unknown: true, status: 503},
		{name: "504 without runId", handler: answer(504, "<html>gateway timeout</html>"), wantReqs: 1, unknown: true, status: 504},
		{name: "504 envelope without runId", handler: answer(504, failure(CodeGatewayTimeout, "timeout", "")), wantReqs: 1, unknown: true, status: 504},
		{name: "hang-up", handler: func(w http.ResponseWriter, _ *http.Request) { hangUp(w) }, wantReqs: 1, unknown: true},
		{name: "answer cut short", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"status":"SUCCESS","data":{"runId":`))
		}, wantReqs: 1, unknown: true},
		{name: "200 not JSON", handler: answer(200, "<html>ok</html>"), wantReqs: 1, unknown: true, status: 200},
		{name: "200 without runId", handler: answer(200, success(`{"runStatus":"succeeded"}`)), wantReqs: 1, unknown: true, status: 200},
		{name: "deadline while the API holds the request", handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			timeout: 100 * time.Millisecond, wantReqs: 1, unknown: true, ctxErr: context.DeadlineExceeded},
		{name: "504 with runId", handler: answer(504, failure(CodeGatewayTimeout, "The request timed out while waiting for the run to finish.", `{"runId":"`+runID+`"}`)),
			wantReqs: 1, status: 504, runID: runID},
		{name: "422", handler: answer(422, failure(CodeValidation, "Missing required input: topic", "")), wantReqs: 1, status: 422},
		{name: "402", handler: answer(402, failure(CodePaymentRequired, "Not enough credits", "")), wantReqs: 1, status: 402},
		{name: "400", handler: answer(400, failure(CodeBadRequest, "Request body must be valid JSON", "")), wantReqs: 1, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := newServer(t, tt.handler)
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			run, err := c.CreateRun(ctx, CreateRunRequest{PromptVersionID: versionID})
			if err == nil {
				t.Fatalf("CreateRun succeeded: %+v", run)
			}
			if n := srv.count(); n != tt.wantReqs {
				t.Errorf("server saw %d POSTs, want %d", n, tt.wantReqs)
			}
			if got := errors.Is(err, ErrOutcomeUnknown); got != tt.unknown {
				t.Errorf("errors.Is(err, ErrOutcomeUnknown) = %v, want %v; err = %v", got, tt.unknown, err)
			}
			if tt.unknown && !strings.Contains(err.Error(), "ListRuns") {
				t.Errorf("message %q does not say how to recover", err)
			}
			var ae *APIError
			if got := errors.As(err, &ae); got != (tt.status != 0) || (got && ae.HTTPStatus != tt.status) {
				t.Errorf("APIError = %v, want status %d; err = %v", ae, tt.status, err)
			}
			if id, ok := TimedOutRunID(err); id != tt.runID || ok != (tt.runID != "") {
				t.Errorf("TimedOutRunID = %q, %v", id, ok)
			}
			if tt.ctxErr != nil && !errors.Is(err, tt.ctxErr) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.ctxErr)
			}
		})
	}
}

// TestCreateRunNotRetriedAfter429: a 429 may come from a proxy after the
// API created the run, so CreateRun returns it for the caller to look in the
// run list, instead of sending the POST again.
func TestCreateRunNotRetriedAfter429(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, sequence(
		answer(429, failure(CodeTooManyRequests, "Rate limit exceeded", ""), "Retry-After", "1"),
		answer(200, success(`{"runId":"`+runID+`","outputs":[],"runStatus":"succeeded","tokens":58}`)),
	))
	_, err := c.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID, Inputs: RunInputs{TextInputs: map[string]string{"a": "b"}}})
	if !IsRateLimited(err) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("CreateRun error = %v; want a plain 429", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.RetryAfter != time.Second {
		t.Errorf("Retry-After not reported: %+v", ae)
	}
	if n := len(srv.requests()); n != 1 {
		t.Fatalf("server saw %d POSTs, want 1", n)
	}
}

// A 4xx the API does not document may come from a proxy after the API did
// the work: the outcome is unknown, not "refused".
func TestCreateRunUndocumented4xxIsUnknown(t *testing.T) {
	t.Parallel()
	for _, status := range []int{408, 409, 418, 499} {
		_, c := newServer(t, sequence(answer(status, failure("", "proxy says no", ""))))
		_, err := c.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID})
		if !errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("HTTP %d: err = %v; want ErrOutcomeUnknown", status, err)
		}
	}
	for _, status := range []int{400, 401, 402, 404, 422} {
		_, c := newServer(t, sequence(answer(status, failure("", "refused", ""))))
		if _, err := c.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID}); errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("HTTP %d: err = %v; a documented refusal is not unknown", status, err)
		}
	}
}

// TestDialErrorRetried: when no connection can be made, nothing was sent, so
// even POST /v1/runs is retried, and the final error does not claim that a
// run may exist.
func TestDialErrorRetried(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there any more: connections are refused
	var dials atomic.Int32
	dialer := &net.Dialer{}
	transport := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, a)
	}}
	t.Cleanup(transport.CloseIdleConnections)
	c := New(Options{BaseURL: "http://" + addr + "/v1", APIKey: testKey, HTTPClient: &http.Client{Transport: transport}, RateLimit: -1, MaxRetries: 2})
	c.backoffBase = time.Millisecond

	_, err = c.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want ECONNREFUSED", err)
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("a refused connection claims the outcome is unknown: %v", err)
	}
	if n := dials.Load(); n != 3 {
		t.Errorf("%d dials, want 3 (1 + MaxRetries)", n)
	}
	dials.Store(0)
	if _, err := c.Me(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET err = %v", err)
	}
	if n := dials.Load(); n != 3 {
		t.Errorf("GET: %d dials, want 3", n)
	}
}

// TestMaySent checks the classification used for POST: a transport that
// reports nothing through httptrace is assumed to have sent the request
// unless the error is a dial error.
func TestMaySent(t *testing.T) {
	t.Parallel()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	readErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		getConn, gotConn bool
		err              error
		want             bool
	}{
		{false, false, dialErr, false},
		{false, false, readErr, true},
		{false, false, errors.New("custom transport failed"), true},
		{true, false, context.Canceled, false},
		{true, true, dialErr, true},
		{true, true, readErr, true},
	}
	for i, tt := range tests {
		var s sendTrace
		s.getConn.Store(tt.getConn)
		s.gotConn.Store(tt.gotConn)
		if got := s.maySent(tt.err); got != tt.want {
			t.Errorf("case %d: maySent = %v, want %v", i, got, tt.want)
		}
	}
}

// TestCreateRunCustomTransportFailure: an error from a transport that does
// not trace is treated as "may have been sent".
func TestCreateRunCustomTransportFailure(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, syscall.ECONNRESET
	})
	c := New(Options{BaseURL: "http://example.invalid/v1", APIKey: testKey, HTTPClient: &http.Client{Transport: rt}, RateLimit: -1})
	c.backoffBase = time.Millisecond
	_, err := c.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID})
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("err = %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d attempts, want 1", calls.Load())
	}
	calls.Store(0)
	if _, err := c.Me(context.Background()); err == nil || calls.Load() != 4 {
		t.Errorf("GET: err %v after %d attempts, want 4", err, calls.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
