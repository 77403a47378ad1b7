// Package bpapi is a typed client for the BetterPrompt REST API
// (https://api.betterprompt.me/v1): prompt search and retrieval, runs,
// the account and its credits, and the models a run may use.
//
// Create one Client with New and derive per-key copies with
// Client.WithAPIKey. Every method takes a context first and returns typed
// values, or an error that can be inspected:
//
//   - *APIError (errors.As) for any answer that is not a success, with the
//     HTTP status, the envelope's error code and message, and the helpers
//     IsNotFound, IsValidation, IsRateLimited, TimedOutRunID and friends;
//   - ErrInvalidID (errors.Is) when an id is not a canonical UUID, in which
//     case nothing is sent;
//   - ErrOutcomeUnknown (errors.Is) when CreateRun failed after the request
//     may have reached the API, so a run may exist and cost credits;
//   - context.Canceled or context.DeadlineExceeded (errors.Is) when the
//     caller's context ended.
//
// The client keeps every API key out of errors and log lines, waits on a
// client-side rate limiter shared by all clients of one key (the API allows
// 5 requests per second), retries idempotent GETs after 429, 502, 503 and
// connection failures, and never retries POST /v1/runs once the request may
// have reached the API.
package bpapi
