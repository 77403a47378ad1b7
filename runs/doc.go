// Package runs starts and follows long-running jobs of an upstream API that
// charges for each one, so that a job is never started twice, no job id is
// lost, one caller's job is never handed to another, and every submission
// ends in a definitive state.
//
// The upstream is seen through Upstream, bound to one caller's key: a job is
// started by a request that may be held for a long time and whose answer
// carries the job id; jobs can be read by id and listed by creation time.
// Tool calls are cancelled by their hosts long before that, so a job is
// started by a request that runs detached from the call (it cannot be
// retried: a second request would be a second paid job), and the call waits
// for it only as long as the caller asked. If the wait ends first, the
// caller gets an id that Engine.Follow resolves: the upstream job id when it
// is known for certain, or a local handle that the engine's records map to
// the job id once the upstream answers (handles.go).
//
// The records of the submissions and the jobs they claim are behind Records
// (records.go): in memory by default (MemoryRecords), or on a store that
// several processes share, so that any of them answers for a handle. Each
// rule that guards money is one step of Records, which such a store makes
// atomic, and waiters read the records again rather than rely on a wake-up
// within the process.
//
// When the start request fails in a way that leaves it unknown whether a job
// was created, the account's job list is the only witness, and it cannot say
// whose job a row is. A job found there is this call's only when nothing
// else could have started it (recovery.go); otherwise the caller is told
// which jobs may be its own, and decides. Every job id the engine learns is
// logged.
package runs
