package betterprompt

// SyncBuffer lets the external tests (package betterprompt_test) share the
// concurrency-safe log buffer of the internal ones.
type SyncBuffer = lockedBuffer
