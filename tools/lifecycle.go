package tools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/server"
)

// The run lifecycle. The API holds POST /v1/runs until the run ends or about
// two minutes pass (then 504 with the run id), and the run id exists only in
// that answer. Hosts cancel tool calls after about 60 s. So a run is started
// by a POST that runs detached from the tool call (it cannot be retried: a
// second POST would be a second paid run), and the call waits for it only as
// long as the agent asked. If the wait ends first, the agent gets a handle
// that get_run resolves later: the upstream run id once known (from the
// POST's answer, or found earlier in GET /v1/runs), or a local handle until
// then. A run is therefore never started twice and its id is never lost
// while the process lives.

// runTracker keeps the runs this process started.
type runTracker struct {
	mu      sync.Mutex
	byID    map[string]*submission // local handle → submission
	claimed map[string]bool        // upstream run ids already tied to a submission
	wg      sync.WaitGroup         // background POSTs
}

// submission is one POST /v1/runs and what became of it.
type submission struct {
	handle    string // local id handed out before the upstream id is known
	tenant    string // keyTag of the API key; handles are private to a key
	versionID string
	submitted time.Time
	done      chan struct{} // closed when the POST has answered or failed

	// Guarded by runTracker.mu.
	runID    string     // upstream id, from the answer or from recovery
	run      *bpapi.Run // the POST's 200 answer
	err      error      // the POST's failure (not a 504 with a run id)
	finished time.Time

	abandoned atomic.Bool // the tool call that started it has ended
}

// keepSubmissions is how long a handle stays resolvable (output URLs expire
// after 24 h anyway); maxSubmissions bounds the memory it takes.
const (
	keepSubmissions = 24 * time.Hour
	maxSubmissions  = 10000
)

// submit starts the POST in the background and returns at once.
func (t *runTracker) submit(ctx context.Context, d *Deps, c *bpapi.Client, tenant string, req bpapi.CreateRunRequest) *submission {
	s := &submission{
		handle: uuid.NewString(), tenant: tenant, versionID: req.PromptVersionID,
		submitted: time.Now(), done: make(chan struct{}),
	}
	t.mu.Lock()
	if t.byID == nil {
		t.byID, t.claimed = make(map[string]*submission), make(map[string]bool)
	}
	t.sweepLocked(s.submitted)
	t.byID[s.handle] = s
	t.mu.Unlock()

	t.wg.Add(1)
	// The POST must outlive the call (a cancelled POST loses the run id), so
	// it runs on a context that the call's cancellation does not reach.
	postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.Wait.CreateTimeout)
	go func() {
		defer t.wg.Done()
		defer cancel()
		run, err := c.CreateRun(postCtx, req)
		t.mu.Lock()
		switch id, timedOut := bpapi.TimedOutRunID(err); {
		case err == nil:
			s.run, s.runID = run, run.RunID
		case timedOut:
			s.runID = id
		default:
			s.err = err
		}
		if s.runID != "" {
			t.claimed[s.runID] = true
		}
		s.finished = time.Now()
		runID := s.runID
		t.mu.Unlock()
		close(s.done)
		log := d.logger().With("handle", s.handle, "prompt_version_id", s.versionID)
		switch {
		case err != nil && runID == "":
			log.Warn("starting a run failed", "err", err)
		case s.abandoned.Load():
			// Nobody waits for this answer any more: log the id so it is not lost.
			log.Info("run started after its tool call ended; it continues upstream", "run_id", runID)
		default:
			log.Debug("run started", "run_id", runID)
		}
	}()
	return s
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

// state reads what is known of a submission.
func (t *runTracker) state(s *submission) (runID string, run *bpapi.Run, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.runID, s.run, s.err
}

// sweepLocked forgets old submissions so memory stays bounded.
func (t *runTracker) sweepLocked(now time.Time) {
	if len(t.byID) < maxSubmissions/2 {
		return
	}
	for h, s := range t.byID {
		if !s.finished.IsZero() && now.Sub(s.finished) > keepSubmissions || len(t.byID) >= maxSubmissions && !s.finished.IsZero() {
			delete(t.byID, h)
			delete(t.claimed, s.runID)
		}
	}
}

// wait blocks until every background POST has answered or ctx ends; the
// server calls it on shutdown so that no run id is lost to an exit.
func (t *runTracker) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recover looks for the run of a submission whose POST has not answered, in
// the account's newest runs. It claims a run only when the match is certain:
// one unclaimed run of that version created since the submission, and no
// other unresolved submission of the same version and key that could own it.
func (t *runTracker) recover(ctx context.Context, c *bpapi.Client, s *submission) string {
	if id, _, _ := t.state(s); id != "" {
		return id
	}
	t.mu.Lock()
	for _, o := range t.byID {
		if o != s && o.tenant == s.tenant && o.versionID == s.versionID && o.runID == "" && o.finished.IsZero() {
			t.mu.Unlock()
			return "" // ambiguous: two runs of the same prompt in flight
		}
	}
	t.mu.Unlock()

	since := s.submitted.Add(-5 * time.Second)
	list, err := c.ListRuns(ctx, bpapi.ListRunsParams{Limit: 20, Since: since.Unix()})
	if err != nil {
		return ""
	}
	var found []string
	for _, r := range list.Rows {
		if r.PromptVersionID != s.versionID {
			continue
		}
		if created, err := time.Parse(time.RFC3339Nano, r.CreatedAt); err == nil && created.Before(since) {
			continue
		}
		found = append(found, r.RunID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.runID != "" {
		return s.runID
	}
	var candidate string
	for _, id := range found {
		if t.claimed[id] {
			continue
		}
		if candidate != "" {
			return "" // more than one: cannot tell which is ours
		}
		candidate = id
	}
	if candidate != "" {
		s.runID = candidate
		t.claimed[candidate] = true
	}
	return candidate
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
	deadline time.Time
	progress *progressReporter
}

// awaitSubmission waits for a run started by this process.
func (w *waiter) awaitSubmission(ctx context.Context, s *submission) (waitOutcome, error) {
	t := &w.d.runs
	timer := time.NewTimer(time.Until(w.deadline))
	defer timer.Stop()
	tick := time.NewTicker(w.d.Wait.ProgressEvery)
	defer tick.Stop()
	w.progress.send(ctx, "Starting the run") // at once, so the host sees the call is alive
	for {
		if id, run, err := t.state(s); id != "" || err != nil || run != nil {
			switch {
			case run != nil && run.Status.Final():
				return waitOutcome{run: run}, nil
			case id != "":
				return w.awaitRun(ctx, id, s.versionID)
			default:
				return w.afterFailedCreate(ctx, s, err)
			}
		}
		select {
		case <-s.done:
		case <-tick.C:
			w.progress.send(ctx, "Starting the run")
		case <-timer.C:
			// The API is still holding the POST. Try to learn the run id from
			// the run list, so the agent can follow the run even if this
			// process ends; otherwise hand out the local handle.
			if id := t.recover(ctx, w.c, s); id != "" {
				return w.snapshot(ctx, id, s.versionID)
			}
			return waitOutcome{handle: s.handle, version: s.versionID}, nil
		case <-ctx.Done():
			s.abandoned.Store(true)
			w.d.logger().Info("tool call ended while starting a run; the run goes on upstream",
				"handle", s.handle, "prompt_version_id", s.versionID, "reason", context.Cause(ctx))
			return waitOutcome{}, ctx.Err()
		}
	}
}

// afterFailedCreate handles a POST that failed. When the failure leaves it
// unknown whether a run was created, the run list says; the POST is never
// sent again.
func (w *waiter) afterFailedCreate(ctx context.Context, s *submission, err error) (waitOutcome, error) {
	if !errors.Is(err, bpapi.ErrOutcomeUnknown) {
		return waitOutcome{}, err
	}
	if id := w.d.runs.recover(ctx, w.c, s); id != "" {
		w.d.logger().Warn("the request that started a run failed, but the run exists", "run_id", id, "err", err)
		return w.awaitRun(ctx, id, s.versionID)
	}
	return waitOutcome{}, failf(err, "Starting the run failed (%s). It is not certain whether BetterPrompt started it: "+
		"no new run of this prompt shows in the account's recent runs yet. Do not simply retry: first call get_run with "+
		"run_id=%s in a minute (it looks again), then run_prompt again only if it reports no run.",
		describeError(err), s.handle)
}

// snapshot reads a run once, without waiting.
func (w *waiter) snapshot(ctx context.Context, runID, version string) (waitOutcome, error) {
	run, err := w.c.GetRun(ctx, runID)
	if err != nil {
		if ctx.Err() != nil {
			return waitOutcome{}, ctx.Err()
		}
		// The id is known and must not be lost: report it as queued.
		return waitOutcome{run: &bpapi.Run{RunID: runID, PromptVersionID: version, Status: bpapi.RunQueued}}, nil
	}
	if run.PromptVersionID == "" {
		run.PromptVersionID = version
	}
	return waitOutcome{run: run}, nil
}

// awaitRun polls a run with backoff until it is final or the deadline passes.
func (w *waiter) awaitRun(ctx context.Context, runID, version string) (waitOutcome, error) {
	interval := w.d.Wait.PollMin
	var last *bpapi.Run
	for {
		run, err := w.c.GetRun(ctx, runID)
		switch {
		case err == nil:
			if run.PromptVersionID == "" {
				run.PromptVersionID = version
			}
			last = run
			if run.Status.Final() {
				return waitOutcome{run: run}, nil
			}
		case ctx.Err() != nil:
			w.abandon(ctx, runID)
			return waitOutcome{}, ctx.Err()
		case bpapi.IsNotFound(err), bpapi.IsUnauthorized(err), bpapi.IsPaymentRequired(err), errors.Is(err, bpapi.ErrInvalidID):
			return waitOutcome{}, err
		default:
			// A transient failure after retries: keep the id and try again.
			w.d.logger().Warn("polling a run failed; will try again", "run_id", runID, "err", err)
		}
		if last == nil {
			last = &bpapi.Run{RunID: runID, PromptVersionID: version, Status: bpapi.RunQueued}
		}
		remaining := time.Until(w.deadline)
		if remaining <= 0 {
			return waitOutcome{run: last}, nil
		}
		w.progress.send(ctx, fmt.Sprintf("Run %s is %s", runID, last.Status))
		if err := w.sleep(ctx, min(interval, remaining)); err != nil {
			w.abandon(ctx, runID)
			return waitOutcome{}, err
		}
		interval = min(interval*3/2, w.d.Wait.PollMax)
	}
}

// sleep waits for d, sending progress at least every ProgressEvery.
func (w *waiter) sleep(ctx context.Context, d time.Duration) error {
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
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *waiter) abandon(ctx context.Context, runID string) {
	w.d.logger().Info("tool call ended while waiting; the run goes on upstream", "run_id", runID, "reason", context.Cause(ctx))
}

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
