package tools

// SyncBuffer lets the external tests (package tools_test) share the
// concurrency-safe log buffer of the internal ones.
type SyncBuffer = lockedBuffer
