// Package fakeapi is an in-process fake of the BetterPrompt REST API
// (https://api.betterprompt.me/v1), written from the project's reference
// document (shared/reference/betterprompt-api.md) and independently of the
// Go client in package bpapi, so that a field misspelt in the client cannot
// hide behind the same misspelling in the fake.
//
// It serves every test of the MCP server, the server's --sandbox mode and the
// agent evaluation harnesses. Passing against it should mean working against
// the real API, so it is strict where the reference is precise (envelope,
// status codes, documented messages, order of checks, input validation) and
// configurable where the real behaviour is unknown.
//
// # What it serves
//
//   - GET /v1/prompts/publish?q=                 search (§7.1; video prompts never returned)
//   - GET /v1/prompts/{promptId}[?versionId=]   one prompt, latest or pinned version (§7.2)
//   - GET /v1/prompts/{promptId}/versions       version list (§7.3, older docs)
//   - GET /v1/prompt-versions/{promptVersionId} one version (§7.4)
//   - POST /v1/runs                             create a run and hold until it ends or the sync window passes (§7.5, §9.2)
//   - GET /v1/runs/{runId}                      read or poll a run (§7.6)
//   - GET /v1/runs                              list runs, cursor pagination and filters (§7.7)
//   - GET /v1/me, GET /v1/me/credits            user and balance (§7.8, §7.9)
//   - GET /v1/resources                         the §10.4 fixture, byte for byte
//   - GET /v1/skills?q=, GET /v1/skills/{name}  the CLI-only routes (§7.11), newer row shape
//   - GET /v1/                                  health, no authentication
//   - GET /files/{runId}/{n}.{ext}?expires=     media outputs: real PNG / MP4 bytes, 410 after expiry
//
// Route names (used by [Server.InjectFault], [Server.Count] and
// [Request].Route) are Go 1.22 mux patterns: "POST /v1/runs",
// "GET /v1/runs/{runId}", "GET /files/{runId}/{file}", and so on. The fake
// does its own routing, so /v1/prompts/publish is always matched before
// /v1/prompts/{promptId}, and an unknown path or method is a 404
// NOT_FOUND_ERROR envelope (never a 405 or a redirect).
//
// # Inferred behaviour
//
// The following is not stated by any source and is the fake's reading of the
// evidence (reference tags "inferred"); each is a decision to revisit once the
// live API has been observed:
//
//   - Order of checks: fault injection (it stands for a proxy in front of the
//     API) → route → auth (401; lapsed plan → 402) → per-key token-bucket rate
//     limit (429, Retry-After) → JSON body (400) → UUID format (422) →
//     existence (404) → input and option validation (422) → credits (402) →
//     execute.
//   - Messages other than the three documented ones ("Invalid promptVersionId",
//     "Run not found", the 504 message) are invented (reference §4.4).
//   - Input validation (§8.8): text inputs are required unless they have a
//     default; "" needs allowEmpty (else the default, else 422); selects are
//     required; multi-selects may be a JSON array or a ", "-joined string,
//     split by matching option keys (§8.9); unknown input keys are ignored;
//     the image count must match exactly. runModel must be a model of the
//     prompt's modality in /v1/resources; runOptions keys and values must be
//     among that model's availableRunOptions; a legacy "image" option key is
//     stripped. An absent "inputs" object is a 422 (the field is required).
//   - Legacy prompt versions (fixtures with "inputsJTD" instead of "config")
//     are served with an "inputsJTD" field in place of "config" on
//     /v1/prompts/{id} and /v1/prompt-versions/{id}, and as
//     {"inputsJTD": ...} in search rows' "configs" and skills' inputMetadata.
//   - Run lifecycle: "queued" for 10% of the run's duration (at most one
//     scaled second), then "running", then "succeeded" or "failed".
//     Durations use the real (monotonic) clock scaled by Options.TimeScale;
//     createdAt, since/until and URL expiry use Options.Now. The run's
//     finish time on the Now clock is createdAt plus its real duration.
//   - Credits: estimatedCredits is reserved at creation (402 when the
//     balance is lower); a succeeded run settles to the fixture's credits. A
//     failed run is settled the same way (it used model time) unless
//     Options.RefundFailed, which refunds the whole reservation (tokens 0,
//     list-row credits null). List rows show credits null until a run is
//     final and whenever it cost nothing.
//   - A client that goes away during the POST hold does not stop the run; it
//     is charged as usual (open question 22).
//   - Media URLs are http(s)://<request host>/files/<runId>/<n>.<ext>?expires=<unix>,
//     n being the 1-based position in outputs, valid for Options.URLTTL from
//     the run's finish time; the expires parameter acts as a signature (a
//     URL with another value is a 404). The same URLs are returned on every
//     read (no re-signing).
//   - Search ranks by simple word matches over title, slug and description
//     and returns at most 20 rows; no match gives "rows": [].
//   - GET /v1/runs cursors follow Stripe's semantics: startingAfter gives the
//     runs older than the cursor run, endingBefore the runs newer than it
//     (the page nearest the cursor, still newest first). An unknown cursor
//     run is a 404 "Run not found".
//   - Rate limiting is a strict token bucket per key (Burst tokens, refilled
//     at RateLimit per second); 429 answers carry Retry-After in whole
//     seconds (at least 1). Health and media requests are not limited.
//     Clients must keep a margin below it (bpapi's limiter bursts 2).
//   - Text outputs may contain {{inputKey}} placeholders, replaced by the
//     run's resolved input values.
package fakeapi
