// Package fakeapi is an in-process fake of the BetterWaifu image API, for
// tests and the server's --sandbox mode. It is written from the reference
// (shared/reference/betterwaifu-api.md), independently of package bwapi, so
// that the client is tested against the contract rather than against
// itself.
//
// It enforces the API's limits per key: one active generation at a time
// and a cooldown between generations (counted from the later of
// submission and completion, the conservative reading), answering 429 with
// Retry-After otherwise. Generations go queued (with a queue position) →
// processing → succeeded or failed; their state is computed from the clock
// at each read, so tests inside a testing/synctest bubble drive it by
// advancing time. Succeeded generations link real WebP images that the
// fake serves. A prompt containing "flagged" is refused as moderation; one
// containing "glitch" fails. Faults can be injected per route, and every
// request is logged.
package fakeapi
