// Package state keeps the per-key state that guards money and the
// upstream APIs: the request-rate limit of each key, the slots of the
// calls that wait for runs, and the line of callers of an upstream that
// runs one job at a time with a cooldown (Turns). Each piece is an interface defined where it is
// used (bpapi.Limiter, betterprompt.WaitSlots); this package holds the
// in-memory implementations, the default for a single process. The run
// engine's records (runs.Records) are the exception: their in-memory
// implementation stays in runs, whose types and rules they carry.
//
// The interfaces are written so that an implementation on a shared store
// (Redis, for replicas) can make every operation one atomic step: nothing
// here reads, decides in the process and writes back. A holder that dies
// leaks nothing: wait slots are leases that expire, and so is a turn.
// Per-key budgets belong here too, when they come.
//
// Keys are opaque identities such as bpapi.Client.KeyID (a hash prefix),
// never an API key itself.
package state

import "errors"

// ErrUnavailable is the error of a shared store that cannot be reached: a
// guard that cannot be checked refuses (fails closed), and callers word it
// "nothing was spent; try again".
var ErrUnavailable = errors.New("the shared state store is unavailable")
