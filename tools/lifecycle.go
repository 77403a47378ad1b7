package tools

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/mark3labs/mcp-go/server"
)

// The run lifecycle. The API holds POST /v1/runs until the run ends or about
// two minutes pass (then 504 with the run id), and the run id exists only in
// that answer. Hosts cancel tool calls after about 60 s. So a run is started
// by a POST that runs detached from the tool call (it cannot be retried: a
// second POST would be a second paid run), and the call waits for it only as
// long as the agent asked. If the wait ends first, the agent gets an id that
// get_run resolves: the upstream run id when it is known for certain, or a
// local handle that this process maps to the run id once the API answers.
// A run is therefore never started twice, and its id is always logged.

// runTracker keeps the runs this process started.
type runTracker struct {
	mu        sync.Mutex
	byID      map[string]*submission // local handle → submission
	claimed   map[string]bool        // upstream run ids already tied to a submission
	closing   bool                   // shutting down: no new runs
	stop      chan struct{}          // closed when shutting down; ends detached waits
	lastSweep time.Time
	wg        sync.WaitGroup // background POSTs
}

// stopping returns a channel closed when the server shuts down.
func (t *runTracker) stopping() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop == nil {
		t.stop = make(chan struct{})
	}
	return t.stop
}

// submission is one POST /v1/runs and what became of it. The fields after
// done are guarded by runTracker.mu.
type submission struct {
	handle    string // local id handed out before the upstream id is known
	tenant    string // keyTag of the API key; handles are private to a key
	versionID string
	submitted time.Time
	done      chan struct{} // closed when the POST has answered or failed
	log       *slog.Logger

	runID     string     // upstream id, from the answer or found in the run list
	run       *bpapi.Run // the POST's 200 answer, until a waiter takes it
	err       error      // the POST's failure (not a 504 with a run id)
	finished  time.Time
	abandoned bool // no tool call waits for it any more
}

// keepSubmissions is how long a handle stays resolvable (output URLs expire
// after 24 h anyway); maxSubmissions bounds the memory it takes, and
// minKeep protects recent handles from eviction whatever the count.
const (
	keepSubmissions = 24 * time.Hour
	maxSubmissions  = 10000
	minKeep         = time.Hour
)

// errShuttingDown refuses a run while the server stops.
var errShuttingDown = &toolError{msg: "The server is shutting down; nothing was run and no credits were spent. Try again once it is back."}

// submit starts the POST in the background and returns at once.
func (t *runTracker) submit(ctx context.Context, d *Deps, c *bpapi.Client, tenant string, req bpapi.CreateRunRequest) (*submission, error) {
	s := &submission{
		handle: newHandle(time.Now()), tenant: tenant, versionID: req.PromptVersionID,
		submitted: time.Now(), done: make(chan struct{}),
	}
	s.log = d.logger().With("handle", s.handle, "prompt_version_id", s.versionID)
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil, errShuttingDown
	}
	if t.byID == nil {
		t.byID, t.claimed = make(map[string]*submission), make(map[string]bool)
	}
	t.sweepLocked(s.submitted)
	t.byID[s.handle] = s
	t.wg.Add(1) // under mu, so wait() cannot miss it
	t.mu.Unlock()

	// The POST must outlive the call (a cancelled POST loses the run id), so
	// it runs on a context that the call's cancellation does not reach.
	postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.Wait.CreateTimeout)
	go func() {
		defer t.wg.Done()
		defer cancel()
		run, err := c.CreateRun(postCtx, req)
		t.finish(s, run, err)
	}()
	return s, nil
}

// finish records the POST's answer and logs the run id when no call waits
// for it, so that it is never lost.
func (t *runTracker) finish(s *submission, run *bpapi.Run, err error) {
	t.mu.Lock()
	previous := s.runID
	switch id, timedOut := bpapi.TimedOutRunID(err); {
	case err == nil:
		s.run, s.runID = run, run.RunID
	case timedOut:
		s.runID = id
	case errors.Is(err, bpapi.ErrOutcomeUnknown):
		s.err = err // a run found in the list may still be ours
	default:
		s.err, s.runID = err, "" // the API refused: nothing was started
	}
	if previous != "" && s.runID != previous {
		// The run list suggested another run; the API's answer is the truth.
		t.unclaimLocked(previous, s)
	}
	if s.runID != "" {
		t.claimed[s.runID] = true
	}
	s.finished = time.Now()
	runID, abandoned := s.runID, s.abandoned
	t.mu.Unlock()
	close(s.done)
	if previous != "" && runID != previous {
		s.log.Warn("the API's answer contradicts the run the run list suggested; following the API", "run_id", runID, "suggested_run_id", previous)
	}
	switch {
	case err != nil && runID == "":
		s.log.Warn("starting a run failed", "err", err)
	case abandoned:
		s.log.Info("run started after its tool call ended; it continues upstream", "run_id", runID)
	default:
		// Every paid run is on record, whatever happens to the call or the
		// process afterwards.
		s.log.Info("run started", "run_id", runID)
	}
}

// unclaimLocked releases a run id unless another submission holds it.
func (t *runTracker) unclaimLocked(runID string, except *submission) {
	for _, o := range t.byID {
		if o != except && o.runID == runID {
			return
		}
	}
	delete(t.claimed, runID)
}

// abandon records that no call waits for s any more and logs what is known,
// so that an id handed to no one is still on record.
func (t *runTracker) abandon(s *submission, reason error) {
	t.mu.Lock()
	s.abandoned = true
	runID := s.runID
	t.mu.Unlock()
	if runID != "" {
		s.log.Info("tool call ended before the run did; the run goes on upstream", "run_id", runID, "reason", reason)
	} else {
		s.log.Info("tool call ended while the API still held the request that starts the run; its id will be logged when it answers", "reason", reason)
	}
}

// lookup returns the submission behind a local handle, for the same key.
func (t *runTracker) lookup(handle, tenant string) *submission {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byID[handle]
	if s == nil || s.tenant != tenant {
		return nil
	}
	return s
}

// state reads what is known of a submission. The POST's 200 answer is handed
// to one caller only; later ones read the run upstream by its id.
func (t *runTracker) state(s *submission) (runID string, run *bpapi.Run, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	run, s.run = s.run, nil
	return s.runID, run, s.err
}

// runID reads a submission's upstream id without taking its answer.
func (t *runTracker) runID(s *submission) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.runID
}

// failedDefinitely reports whether the API refused the submission's POST,
// so that nothing was started.
func (t *runTracker) failedDefinitely(s *submission) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.err != nil && !errors.Is(s.err, bpapi.ErrOutcomeUnknown)
}

// sweepLocked forgets old submissions so memory stays bounded: those done
// for a day, and past the count limit the oldest done ones, but never one
// finished within minKeep, whose handle an agent may be about to use.
func (t *runTracker) sweepLocked(now time.Time) {
	if len(t.byID) < maxSubmissions && now.Sub(t.lastSweep) < time.Minute {
		return
	}
	t.lastSweep = now
	var evictable []*submission
	for h, s := range t.byID {
		switch {
		case s.finished.IsZero() || now.Sub(s.finished) < minKeep:
		case now.Sub(s.finished) > keepSubmissions:
			t.forgetLocked(h, s)
		default:
			evictable = append(evictable, s)
		}
	}
	if excess := len(t.byID) - maxSubmissions + 1; excess > 0 {
		slices.SortFunc(evictable, func(a, b *submission) int { return a.finished.Compare(b.finished) })
		for _, s := range evictable[:min(excess, len(evictable))] {
			t.forgetLocked(s.handle, s)
		}
	}
}

func (t *runTracker) forgetLocked(handle string, s *submission) {
	delete(t.byID, handle)
	t.unclaimLocked(s.runID, s)
}

// wait stops new runs and blocks until every background POST has answered
// (so each run id is known and logged) or ctx ends. The server calls it on
// shutdown.
func (t *runTracker) wait(ctx context.Context) error {
	t.stopping() // make sure the channel exists
	t.mu.Lock()
	if !t.closing {
		t.closing = true
		close(t.stop)
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// findRunID looks for the run of a submission whose POST has not answered,
// or whose answer was lost, in the account's newest runs. It claims a run
// only when the match is certain: the POST did not definitely fail, exactly
// one unclaimed run of that version was created in the submission's window,
// and no other submission of the same version and key without a run id could
// own it (checked before and after listing, since one may start meanwhile).
//
// It returns the run's id and, when it found the run in the list, the list
// row (a current snapshot, so the caller needs no second request). err is
// set only when the list could not be read: "not found" and "could not
// look" must not be confused, or an agent may pay for a run twice.
func (t *runTracker) findRunID(ctx context.Context, c *bpapi.Client, s *submission) (string, *bpapi.Run, error) {
	t.mu.Lock()
	if s.runID != "" || s.err != nil && !errors.Is(s.err, bpapi.ErrOutcomeUnknown) || t.competitorLocked(s) {
		id := s.runID
		t.mu.Unlock()
		return id, nil, nil
	}
	finished := s.finished
	t.mu.Unlock()

	// One second of slack for the clocks; the run cannot predate the POST,
	// nor follow a POST that has already failed.
	params := bpapi.ListRunsParams{Limit: 50, Since: s.submitted.Add(-time.Second).Unix()}
	if !finished.IsZero() {
		params.Until = finished.Add(5 * time.Second).Unix()
	}
	var found []*bpapi.Run
	for page := 0; ; page++ {
		list, err := c.ListRuns(ctx, params)
		if err != nil {
			s.log.Debug("looking for the run in the run list failed", "err", err)
			return "", nil, err
		}
		for i, r := range list.Rows {
			created, err := time.Parse(time.RFC3339Nano, r.CreatedAt)
			if r.PromptVersionID == s.versionID && err == nil && !created.Before(s.submitted.Add(-time.Second)) {
				found = append(found, &list.Rows[i])
			}
		}
		if !list.HasMore || len(list.Rows) == 0 {
			break
		}
		if page == 4 {
			return "", nil, errors.New("more than 250 runs were started since; the run list is too long to search")
		}
		params.StartingAfter = list.Rows[len(list.Rows)-1].RunID
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if s.runID != "" || s.err != nil && !errors.Is(s.err, bpapi.ErrOutcomeUnknown) || t.competitorLocked(s) {
		return s.runID, nil, nil
	}
	var candidate *bpapi.Run
	for _, r := range found {
		if t.claimed[r.RunID] {
			continue
		}
		if candidate != nil {
			return "", nil, nil // more than one: cannot tell which is ours
		}
		candidate = r
	}
	if candidate == nil {
		return "", nil, nil
	}
	s.runID = candidate.RunID
	t.claimed[candidate.RunID] = true
	s.log.Info("found the run in the run list while the API still held the request", "run_id", candidate.RunID)
	return candidate.RunID, candidate, nil
}

// competitorLocked reports whether another submission of the same version
// and key, started around the same time, has no run id yet and so could own
// any run found for s.
func (t *runTracker) competitorLocked(s *submission) bool {
	for _, o := range t.byID {
		if o == s || o.tenant != s.tenant || o.versionID != s.versionID || o.runID != "" {
			continue
		}
		if d := o.submitted.Sub(s.submitted); d > 10*time.Minute || d < -10*time.Minute {
			continue
		}
		if o.finished.IsZero() || errors.Is(o.err, bpapi.ErrOutcomeUnknown) {
			return true
		}
	}
	return false
}

// waitOutcome is what a wait learned about a run.
type waitOutcome struct {
	run     *bpapi.Run // latest state; nil when the run id is not known yet
	handle  string     // the id to give the agent when run is nil
	version string
}

// waiter waits for one run within a deadline, sending progress.
type waiter struct {
	d        *Deps
	c        *bpapi.Client
	tenant   string
	deadline time.Time
	progress *progressReporter
}

// lateWork bounds what a call still does after its deadline (looking the run
// up once), so that it answers before the host gives up.
const lateWork = 5 * time.Second

// bounded returns ctx limited to the call's deadline plus lateWork: no
// upstream call made while waiting may keep the agent past it.
func (w *waiter) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, w.deadline.Add(lateWork))
}

// awaitSubmission waits for a run started by this process.
func (w *waiter) awaitSubmission(ctx context.Context, s *submission) (waitOutcome, error) {
	t := &w.d.runs
	timer := time.NewTimer(time.Until(w.deadline))
	defer timer.Stop()
	tick := time.NewTicker(w.d.Wait.ProgressEvery)
	defer tick.Stop()
	for first := true; ; first = false {
		if id, run, err := t.state(s); id != "" || err != nil || run != nil {
			switch {
			case run != nil && run.Status.Final():
				return waitOutcome{run: run}, nil
			case id != "":
				return w.awaitRun(ctx, id, s.versionID, s)
			default:
				return w.afterFailedCreate(ctx, s, err)
			}
		}
		if first {
			w.progress.send(ctx, "Starting the run") // at once, so the host sees the call is alive
		}
		select {
		case <-s.done:
		case <-tick.C:
			w.progress.send(ctx, "Starting the run")
		case <-timer.C:
			select {
			case <-s.done:
				continue // the answer came at the deadline: use it
			default:
			}
			// The API still holds the POST. If the run shows in the run list
			// for certain, hand out its id (it survives a restart of this
			// process); otherwise the local handle, which get_run resolves.
			lctx, cancel := context.WithTimeout(ctx, lateWork)
			id, row, _ := t.findRunID(lctx, w.c, s)
			var out waitOutcome
			var err error
			switch {
			case row != nil:
				out = waitOutcome{run: row}
			case id != "":
				out, err = w.snapshot(lctx, id, s.versionID)
			}
			cancel()
			switch {
			case ctx.Err() != nil:
				t.abandon(s, context.Cause(ctx))
				return waitOutcome{}, w.cancelledAfterStart(s)
			case id != "" && err == nil:
				return out, nil
			case id != "":
				// Known but unreadable just now: the id is what matters.
				return waitOutcome{run: &bpapi.Run{RunID: id, PromptVersionID: s.versionID, Status: bpapi.RunRunning}}, nil
			}
			return waitOutcome{handle: s.handle, version: s.versionID}, nil
		case <-ctx.Done():
			t.abandon(s, context.Cause(ctx))
			return waitOutcome{}, w.cancelledAfterStart(s)
		}
	}
}

// cancelledAfterStart is the error of a call cancelled after its POST was
// sent: the agent must not start the run again.
func (w *waiter) cancelledAfterStart(s *submission) error {
	if w.d.runs.failedDefinitely(s) {
		return failf(context.Canceled, "The call was cancelled; BetterPrompt had refused to start the run, so nothing was spent.")
	}
	id := w.d.runs.runID(s)
	if id == "" {
		id = s.handle
	}
	return failf(context.Canceled, "The call was cancelled, but the run had already been started; it goes on upstream "+
		"(runs cannot be cancelled) and is charged. Do not call run_prompt again for it: call get_run with run_id=%s.", id)
}

// afterFailedCreate handles a POST that failed. When the failure leaves it
// unknown whether a run was created, the run list says; the POST is never
// sent again.
func (w *waiter) afterFailedCreate(ctx context.Context, s *submission, err error) (waitOutcome, error) {
	if !errors.Is(err, bpapi.ErrOutcomeUnknown) {
		return waitOutcome{}, failf(err, "%s Nothing was run and no credits were spent.", describeError(err))
	}
	lctx, cancel := w.bounded(ctx)
	id, _, listErr := w.d.runs.findRunID(lctx, w.c, s)
	cancel()
	switch {
	case id != "":
		s.log.Warn("the request that started a run failed, but the run exists", "run_id", id, "err", err)
		return w.awaitRun(ctx, id, s.versionID, s)
	case listErr != nil:
		return waitOutcome{}, failf(err, "Starting the run failed (%s), and the account's run list could not be read to "+
			"check whether BetterPrompt started it anyway (%s). Do not start it again yet: call get_run with run_id=%s "+
			"in a minute, which looks again.", briefError(err), briefError(listErr), s.handle)
	}
	return waitOutcome{}, failf(err, "Starting the run failed (%s). It is not certain whether BetterPrompt started it: "+
		"no new run of this prompt shows in the account's recent runs yet. Do not start it again yet: call get_run with "+
		"run_id=%s in a minute, which looks again; run the prompt again only if that finds no run.",
		briefError(err), s.handle)
}

// snapshot reads a run once, without waiting.
func (w *waiter) snapshot(ctx context.Context, runID, version string) (waitOutcome, error) {
	run, err := w.c.GetRun(ctx, runID)
	if err != nil {
		return waitOutcome{}, err
	}
	if run.PromptVersionID == "" {
		run.PromptVersionID = version
	}
	return waitOutcome{run: run}, nil
}

// awaitRun polls a run with backoff until it is final or the deadline
// passes. s, when not nil, is the submission the run belongs to: the run is
// known to exist, so a failure to read it never reads as "no such run", and
// the POST's answer, when it comes, is used (it may also correct the id).
func (w *waiter) awaitRun(ctx context.Context, runID, version string, s *submission) (waitOutcome, error) {
	interval := w.d.Wait.PollMin
	var last *bpapi.Run
	var lastErr error
	var posted <-chan struct{} // the POST's answer, when this process still waits for it
	if s != nil {
		posted = s.done
	}
	for {
		if posted != nil {
			select {
			case <-posted:
				posted = nil
				id, run, _ := w.d.runs.state(s)
				if run != nil && run.Status.Final() {
					return waitOutcome{run: run}, nil
				}
				if id != "" && id != runID {
					runID, last = id, nil // the API named the run: follow it, not the list's guess
				}
			default:
			}
		}
		pctx, cancel := w.bounded(ctx)
		run, err := w.c.GetRun(pctx, runID)
		cancel()
		switch {
		case err == nil:
			if run.PromptVersionID == "" {
				run.PromptVersionID = version
			}
			if last == nil && runAge(run) > 30*time.Second {
				interval = w.d.Wait.PollMax // an old run: no use polling fast
			}
			last, lastErr = run, nil
			if run.Status.Final() {
				return waitOutcome{run: run}, nil
			}
		case ctx.Err() != nil:
			return waitOutcome{}, w.ended(ctx, runID, s)
		case bpapi.IsUnauthorized(err), bpapi.IsPaymentRequired(err):
			return waitOutcome{}, failf(err, "%s The run id is %s: call get_run with it once that is fixed.", describeError(err), runID)
		case s == nil && (bpapi.IsNotFound(err) || errors.Is(err, bpapi.ErrInvalidID)):
			return waitOutcome{}, err // an id the agent gave that the API does not know
		case s == nil && isClientError(err):
			return waitOutcome{}, failf(err, "Reading run %s failed (%s).", runID, briefError(err))
		default:
			// Transient, or a run of ours the API does not show yet: keep
			// the id and try again until the deadline.
			lastErr = err
			w.d.logger().Warn("reading a run failed; will try again", "run_id", runID, "err", err)
		}
		remaining := time.Until(w.deadline)
		if remaining <= 0 {
			if last == nil {
				return waitOutcome{}, failf(lastErr, "Run %s could not be read just now (%s). It was started and goes on: do not "+
					"call run_prompt again for it; call get_run with run_id=%s in a moment.", runID, briefError(lastErr), runID)
			}
			return waitOutcome{run: last}, nil
		}
		status := "being read"
		if last != nil {
			status = string(last.Status)
		}
		w.progress.send(ctx, fmt.Sprintf("Run %s is %s", runID, status))
		if err := w.sleep(ctx, min(w.pollInterval(interval), remaining), posted); err != nil {
			return waitOutcome{}, w.ended(ctx, runID, s)
		}
		interval = min(interval*3/2, w.d.Wait.PollMax)
	}
}

// isClientError reports whether err is a 4xx answer other than 429.
func isClientError(err error) bool {
	var ae *bpapi.APIError
	return errors.As(err, &ae) && ae.HTTPStatus >= 400 && ae.HTTPStatus < 500 && ae.HTTPStatus != 429
}

// pollInterval stretches the interval when many calls wait with one key, so
// that their polls together stay within about 4 of the API's 5 requests per
// second and leave room for other calls.
func (w *waiter) pollInterval(base time.Duration) time.Duration {
	return max(base, time.Duration(w.d.waits.count(w.tenant))*time.Second/4)
}

// ended is the error of a call that ends while polling: the run goes on.
func (w *waiter) ended(ctx context.Context, runID string, s *submission) error {
	if s != nil {
		w.d.runs.abandon(s, context.Cause(ctx))
		return w.cancelledAfterStart(s)
	}
	w.d.logger().Info("tool call ended while waiting; the run goes on upstream", "run_id", runID, "reason", context.Cause(ctx))
	return ctx.Err()
}

// runAge is how long ago a run was created, or 0 when unknown.
func runAge(run *bpapi.Run) time.Duration {
	created, err := time.Parse(time.RFC3339Nano, run.CreatedAt)
	if err != nil {
		return 0
	}
	return time.Since(created)
}

// sleep waits for d, sending progress at least every ProgressEvery; it ends
// early when wake is closed.
func (w *waiter) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(w.d.Wait.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return nil
		case <-tick.C:
			w.progress.send(ctx, w.progress.lastMessage())
		case <-wake:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// briefError describes an upstream failure in a few words, without advice
// (the caller's message gives the advice).
func briefError(err error) string {
	var ae *bpapi.APIError
	if errors.As(err, &ae) {
		s := fmt.Sprintf("HTTP %d", ae.HTTPStatus)
		if ae.Code != "" {
			s += " " + ae.Code
		}
		if ae.Message != "" {
			s += ": " + ae.Message
		}
		return s
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return "no answer from the API"
}

// newHandle makes a local run handle: a UUID (version 8, a custom layout)
// whose first 48 bits are the submission time in Unix milliseconds, so that
// a handle this process no longer knows (after a restart, or from another
// replica) still says when its run was started.
func newHandle(at time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16|uint64(binary.BigEndian.Uint16(b[6:8])))
	b[6] = 0x80 | b[6]&0x0f // version 8
	b[8] = 0x80 | b[8]&0x3f // RFC 9562 variant
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// handleTime returns the submission time in a handle made by newHandle.
func handleTime(id string) (time.Time, bool) {
	if len(id) != 36 || id[14] != '8' || !strings.ContainsRune("89abAB", rune(id[19])) {
		return time.Time{}, false
	}
	raw, err := hex.DecodeString(id[:8] + id[9:13])
	if err != nil {
		return time.Time{}, false
	}
	at := time.UnixMilli(int64(binary.BigEndian.Uint64(append([]byte{0, 0}, raw...))))
	// A handle is made by this program: not before it existed, not in the future.
	if at.Before(handleEpoch) || at.After(time.Now().Add(time.Minute)) {
		return time.Time{}, false
	}
	return at, true
}

// handleEpoch predates every handle this program has made.
var handleEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// progressReporter sends notifications/progress when the caller asked for
// them (a progress token). Progress is the elapsed time in seconds, which
// only grows. The result, not the last notification, signals completion:
// mcp-go may deliver a notification after the result.
type progressReporter struct {
	token   any
	srv     *server.MCPServer
	start   time.Time
	mu      sync.Mutex
	last    float64
	message string
	logger  *slog.Logger
}

func newProgressReporter(ctx context.Context, d *Deps) *progressReporter {
	return &progressReporter{
		token: progressToken(ctx), srv: server.ServerFromContext(ctx),
		start: time.Now(), logger: d.logger(),
	}
}

func (p *progressReporter) lastMessage() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.message
}

func (p *progressReporter) send(ctx context.Context, what string) {
	if p == nil {
		return
	}
	elapsed := time.Since(p.start)
	p.mu.Lock()
	p.message = what
	value := float64(elapsed.Milliseconds()) / 1000
	if value <= p.last {
		value = p.last + 0.001
	}
	p.last = value
	p.mu.Unlock()
	if p.token == nil || p.srv == nil {
		return
	}
	// No total: how long a run takes is unknown, and a total would show a
	// progress bar stuck near its start.
	params := map[string]any{
		"progressToken": p.token,
		"progress":      value,
		"message":       fmt.Sprintf("%s (%d s elapsed)", what, int(elapsed.Seconds())),
	}
	if err := p.srv.SendNotificationToClient(ctx, "notifications/progress", params); err != nil {
		p.logger.Debug("progress notification not sent", "err", err)
	}
}
