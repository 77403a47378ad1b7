package bpapi

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Retry policy
//
// GET requests are idempotent and are retried, up to Options.MaxRetries times
// and within Options.MaxRetryWait of total waiting, after:
//   - 429: waiting for Retry-After (integer seconds or an HTTP date; 1 s when
//     absent or unreadable) plus a little jitter;
//   - 502 and 503 (usually a proxy or a deploy): waiting for Retry-After when
//     sent, else an exponential backoff (250 ms, 500 ms, 1 s, ... with jitter);
//   - 500 and 504: once only, with backoff, since a server error that repeats
//     is unlikely to go away within one call;
//   - a connection failure (refused, reset, closed before the answer, an
//     answer cut short): backoff.
//
// POST /v1/runs costs credits and has no idempotency key, so it is retried
// only when the API certainly did not start a run: when no connection could
// be made at all (a dial or DNS error before any byte was sent). A 429 is
// returned to the caller rather than retried, because a proxy in between may
// answer 429 after the API created the run: the caller looks in the run list
// first. Everything else that happens after the request may have reached the
// API, including a 4xx the API does not document, is final and wraps
// ErrOutcomeUnknown.
//
// A wait longer than what is left of MaxRetryWait, or one that would end
// after the context's deadline, is not started: the call returns its last
// error at once. Cancelling the context interrupts a wait immediately.

const (
	maxBackoff         = 8 * time.Second
	defaultRetryAfter  = time.Second
	retryAfterJitter   = 250 * time.Millisecond
	maxServerErrRetry  = 1 // retries of a GET answered 500 or 504
	maxRetryAfterValue = 24 * time.Hour
)

// retryAfter parses a Retry-After header: integer seconds or an HTTP date.
// It reports false when the header is absent or unreadable.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfterValue/time.Second) {
			return maxRetryAfterValue, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		switch {
		case d < 0:
			return 0, true
		case d > maxRetryAfterValue:
			return maxRetryAfterValue, true
		}
		return d, true
	}
	return 0, false
}

// backoff returns the jittered wait before retry number n (1-based):
// base·2^(n-1), randomised into its upper half, capped at maxBackoff.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// retryableConnError reports whether a failure to get a complete answer is
// worth another attempt: the connection was refused, reset or closed early,
// or timed out at the network level. Context errors, TLS verification errors
// and unknown hosts are not.
func retryableConnError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// isDialError reports whether err happened while connecting, before any
// byte of the request could be sent.
func isDialError(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}

// retryDecision says whether and after how long a failed attempt is retried.
// serverRetries counts the retries already spent on 500 and 504.
func (c *Client) retryDecision(r *request, o *outcome, serverRetries *int) (time.Duration, bool) {
	if o.apiErr != nil && o.status == http.StatusTooManyRequests && r.method == http.MethodGet {
		wait := defaultRetryAfter
		if o.hasRetryAfter {
			wait = o.apiErr.RetryAfter
		}
		return wait + rand.N(retryAfterJitter), true
	}
	if r.method != http.MethodGet {
		if o.connErr != nil && !o.maySent && retryableConnError(o.connErr) {
			return backoff(c.backoffBase, o.attempt), true
		}
		return 0, false
	}
	if o.connErr != nil {
		return backoff(c.backoffBase, o.attempt), retryableConnError(o.connErr)
	}
	if o.apiErr == nil {
		return 0, false
	}
	switch o.status {
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		if o.hasRetryAfter {
			return o.apiErr.RetryAfter, true
		}
		return backoff(c.backoffBase, o.attempt), true
	case http.StatusInternalServerError, http.StatusGatewayTimeout:
		if *serverRetries >= maxServerErrRetry {
			return 0, false
		}
		*serverRetries++
		return backoff(c.backoffBase, o.attempt), true
	}
	return 0, false
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
