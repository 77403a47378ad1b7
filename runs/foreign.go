package runs

import (
	"context"
	"time"
)

// maxForeignCandidates bounds the candidate jobs of a foreign handle.
const maxForeignCandidates = 20

// foreignHandle answers for a job id the upstream does not know. A local
// handle from an engine that no longer knows it (a restart, another
// replica) says when its job was submitted and of which kind: the jobs of
// that kind started then are listed as candidates, so the caller can pick
// its job instead of starting it again, and once the start bound has passed
// without any, the job was certainly not started. cause is the upstream's
// answer to reading id.
func (e *Engine) foreignHandle(ctx context.Context, up Upstream, id string, cause error) (Outcome, error) {
	at, isHandle := HandleTime(id)
	if !isHandle {
		return Outcome{}, &ReadError{ID: id, Kind: NotFound, Err: cause}
	}
	from, to := e.foreignWindow(at)
	lk := &Look{At: time.Now()}
	lk.Final = lk.At.After(to)
	rows, err := listJobs(ctx, up, from, to, HandleKindMatcher(id))
	if err != nil {
		return Outcome{}, &ReadError{ID: id, Kind: NotFound, Err: cause, ListErr: err}
	}
	// A job known to be another call's is not this one's.
	if rows, err = e.rec.Unclaimed(ctx, rows, ""); err != nil {
		return Outcome{}, &ReadError{ID: id, Kind: NotFound, Err: cause, ListErr: err}
	}
	lk.Candidates = rows[:min(len(rows), maxForeignCandidates)]
	state := StateUnknown
	if len(rows) == 0 && lk.Final {
		state = StateNotStarted
	}
	for _, j := range lk.Candidates {
		e.log.Info("a run that may belong to a handle this process does not know shows in the run list",
			"handle", id, "run_id", j.ID, "created_at", j.CreatedAt, "status", j.Status)
	}
	return Outcome{Handle: id, State: state, Look: lk, Submitted: at, CertainAt: to, Foreign: true}, nil
}
