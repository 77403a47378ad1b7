package betterprompt

import (
	"time"

	"github.com/bpmcp/bpmcp/internal/syncbuf"
)

// SyncBuffer lets the external tests (package betterprompt_test) share the
// concurrency-safe log buffer of the internal ones.
type SyncBuffer = syncbuf.Buffer

// UpSince makes d behave as a server that started at: long enough ago, no
// POST of a previous instance can still create a run.
func UpSince(d *Toolset, at time.Time) { d.upSince = at }
