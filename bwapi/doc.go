// Package bwapi is a typed client of the BetterWaifu image-generation API
// (https://betterwaifu.com/api/v1): the account, the models, starting a
// generation and reading it.
//
// Answers are bare JSON, and errors are {"error": "..."} bodies, returned
// as *APIError by HTTP status. Where the documentation is silent (the body
// of a 201, statuses it does not list) the client reads leniently and says
// what it could not find rather than guess.
//
// The API key is a secret.String: it never prints itself, and every body
// the client reads has the key redacted before anything is decoded, so no
// error, log line or decoded field can carry it.
//
// POST /generate starts a paid generation and is never sent twice once it
// may have reached the API: a failure after that is ErrOutcomeUnknown.
// Reads are retried on connection failures and 5xx answers.
package bwapi
