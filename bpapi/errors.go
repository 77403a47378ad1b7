package bpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The error codes the API puts in the envelope's status field.
const (
	CodeBadRequest      = "BAD_REQUEST_ERROR"
	CodeUnauthorized    = "UNAUTHORIZED_ERROR"
	CodePaymentRequired = "PAYMENT_REQUIRED_ERROR"
	CodeNotFound        = "NOT_FOUND_ERROR"
	CodeGone            = "GONE_ERROR"
	CodeValidation      = "VALIDATION_ERROR"
	CodeTooManyRequests = "TOO_MANY_REQUESTS_ERROR"
	CodeServer          = "SERVER_ERROR"
	CodeGatewayTimeout  = "GATEWAY_TIMEOUT_ERROR"
)

// APIError is an answer from the API that is not a success: a non-2xx status
// or an envelope whose status is not SUCCESS. Code is empty when the body was
// not an envelope (an HTML page from a proxy, say); Message then holds a
// short excerpt of the body.
type APIError struct {
	Method     string        // HTTP method of the request
	Path       string        // request path, without host or query
	HTTPStatus int           // e.g. 422
	Code       string        // envelope status, e.g. "VALIDATION_ERROR"
	Message    string        // envelope message, or an excerpt of a non-JSON body
	RunID      string        // data.runId, sent with a 504 from POST /v1/runs
	RetryAfter time.Duration // from the Retry-After header, when present
	Data       []byte        // the envelope's raw data, when not null
}

// Error implements error. It never contains the API key.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.HTTPStatus)
	}
	msg := fmt.Sprintf("betterprompt %s %s: HTTP %d %s", e.Method, e.Path, e.HTTPStatus, code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RunID != "" {
		msg += " (runId " + e.RunID + ")"
	}
	return msg
}

// asAPIError unwraps err to an *APIError.
func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}

func hasStatus(err error, status int, code string) bool {
	ae, ok := asAPIError(err)
	return ok && (ae.HTTPStatus == status || (code != "" && ae.Code == code))
}

// IsNotFound reports whether err is a 404 NOT_FOUND_ERROR.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound, CodeNotFound) }

// IsUnauthorized reports whether err is a 401: the key is missing, invalid or revoked.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized, CodeUnauthorized) }

// IsPaymentRequired reports whether err is a 402: too few credits or no active Pro plan.
func IsPaymentRequired(err error) bool {
	return hasStatus(err, http.StatusPaymentRequired, CodePaymentRequired)
}

// IsValidation reports whether err is a 422 VALIDATION_ERROR.
func IsValidation(err error) bool {
	return hasStatus(err, http.StatusUnprocessableEntity, CodeValidation)
}

// IsRateLimited reports whether err is a 429.
func IsRateLimited(err error) bool {
	return hasStatus(err, http.StatusTooManyRequests, CodeTooManyRequests)
}

// IsGone reports whether err is a 410: the resource (an output URL) expired.
func IsGone(err error) bool { return hasStatus(err, http.StatusGone, CodeGone) }

// TimedOutRunID returns the run id carried by a 504 GATEWAY_TIMEOUT_ERROR
// answer to POST /v1/runs. Such an answer is not a failure: the run goes on
// and can be polled with GetRun.
func TimedOutRunID(err error) (string, bool) {
	ae, ok := asAPIError(err)
	if !ok || ae.RunID == "" {
		return "", false
	}
	if ae.HTTPStatus != http.StatusGatewayTimeout && ae.Code != CodeGatewayTimeout {
		return "", false
	}
	return ae.RunID, true
}

// ErrOutcomeUnknown is wrapped by CreateRun errors after which a run may or
// may not exist upstream (the connection broke after the request was sent, a
// 5xx, a 504 without a run id). Such a request is never retried, because a
// retry could start a second paid run; look the run up with ListRuns instead.
var ErrOutcomeUnknown = errors.New("the run may have been created")
