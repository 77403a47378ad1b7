package bwapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is an answer other than success: an HTTP status with the
// {"error": ...} message, or a body that could not be read.
type APIError struct {
	Method, Path string
	Status       int
	// Message is the API's error message, or what was wrong with the body.
	Message string
	// RetryAfter is the Retry-After the answer carried (429), 0 if none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("betterwaifu: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// ErrOutcomeUnknown marks a failed POST /generate that may have reached the
// API: a generation may have started, and the request is not sent again.
var ErrOutcomeUnknown = errors.New("betterwaifu: the request may have reached the API; whether it started a generation is unknown")

// ErrNoID says a 201 answer to POST /generate carried no generation id the
// client could find: a generation started, but it cannot be followed.
var ErrNoID = errors.New("betterwaifu: the generation was accepted but the answer carried no id")

func statusOf(err error) (int, string) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status, strings.ToLower(ae.Message)
	}
	return 0, ""
}

// IsModeration reports whether the API refused a prompt as flagged by its
// moderation (the status is undocumented: 400 or 403 with that message).
func IsModeration(err error) bool {
	st, msg := statusOf(err)
	return (st == http.StatusBadRequest || st == http.StatusForbidden || st == http.StatusUnprocessableEntity) &&
		(strings.Contains(msg, "moderation") || strings.Contains(msg, "flagged"))
}

// IsUnauthorized reports a 401: the key is missing, invalid or revoked.
func IsUnauthorized(err error) bool { st, _ := statusOf(err); return st == http.StatusUnauthorized }

// IsPaymentRequired reports a 402: too few credits.
func IsPaymentRequired(err error) bool {
	st, _ := statusOf(err)
	return st == http.StatusPaymentRequired
}

// IsForbidden reports a 403 that is not a moderation refusal: no active
// subscription, or a model the plan does not allow.
func IsForbidden(err error) bool {
	st, _ := statusOf(err)
	return st == http.StatusForbidden && !IsModeration(err)
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool { st, _ := statusOf(err); return st == http.StatusNotFound }

// IsBusy reports a 429: a generation is active or the cooldown has not
// passed. RetryAfter says how long to wait when the API said.
func IsBusy(err error) (busy bool, retryAfter time.Duration) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		return true, ae.RetryAfter
	}
	return false, 0
}

// IsBadRequest reports a 400 that is not a moderation refusal.
func IsBadRequest(err error) bool {
	st, _ := statusOf(err)
	return st == http.StatusBadRequest && !IsModeration(err)
}
