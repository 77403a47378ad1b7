package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

var interrupt = os.Interrupt

// results holds whatever parts ran.
type results struct {
	opts      options
	args      []string
	machine   machine
	start     time.Time
	took      time.Duration
	loads     []string // load average around each part
	cold      *coldStart
	over      *overhead
	http      []httpLoad
	reuse     []connReuse
	waits     []waitResult
	gobench   []goBench
	store     *storeResult
	benchCmd  string
	benchCPU  string
	profiles  string
	failures  []string
	binSource string
}

// serverBinary returns the server binary to measure: -bin, or one built
// from the module root.
func serverBinary(o options) (bin, source string, cleanup func(), err error) {
	if o.bin != "" {
		return o.bin, "-bin " + o.bin, func() {}, nil
	}
	logf("building the server (go build) in %s", o.root)
	bin, cleanup, err = buildBinary(o.root)
	return bin, "go build -o <tmp>/bpmcp . (default flags)", cleanup, err
}

type machine struct {
	GoVersion, CPU, Kernel, Commit string
	Cores                          int
	MemGiB                         float64
}

func measure(o options, args []string) error {
	r := &results{opts: o, args: args, start: time.Now(), machine: describeMachine(o.root)}
	cat, err := loadCatalogue(o.root)
	if err != nil {
		return err
	}
	needBinary := o.only["coldstart"] || o.only["overhead"] || o.only["http"] || o.only["store"]
	var bin string
	var up *upstream
	if needBinary {
		var cleanup func()
		if bin, r.binSource, cleanup, err = serverBinary(o); err != nil {
			return err
		}
		defer cleanup()
		if up, err = startUpstream(newFake(cat)); err != nil {
			return err
		}
		defer up.close()
	}
	step := func(name string, f func() error) {
		if !o.only[name] {
			return
		}
		before := loadAvg()
		t0 := time.Now()
		logf("part %s…", name)
		if err := f(); err != nil {
			logf("part %s failed: %v", name, err)
			r.failures = append(r.failures, fmt.Sprintf("%s: %v", name, err))
		}
		r.loads = append(r.loads, fmt.Sprintf("%s %s → %s (%.0f s)", name, before, loadAvg(), time.Since(t0).Seconds()))
	}
	step("coldstart", func() (err error) {
		if st, err := os.Stat(bin); err == nil {
			defer func() {
				if r.cold != nil {
					r.cold.BinaryBytes = st.Size()
				}
			}()
		}
		r.cold, err = measureColdStart(bin, up, o.runs)
		return err
	})
	step("overhead", func() (err error) {
		up.swap(newFake(cat))
		r.over, err = measureOverhead(bin, up, o.calls)
		return err
	})
	step("http", func() error {
		for _, mode := range o.httpModes {
			rows, err := measureHTTP(bin, up, func() { up.swap(newFake(cat)) }, mode == "stateless", o.levels, o.httpWarm, o.httpDuration)
			if err != nil {
				return err
			}
			r.http = append(r.http, rows...)
		}
		var err error
		r.reuse, err = measureConnReuse(up, func() { up.swap(newFake(cat)) }, o.levels[len(o.levels)-1], o.httpDuration)
		return err
	})
	step("waiting", func() (err error) {
		r.waits, err = measureWaiting(cat, waitScenarios, o.waitScale)
		return err
	})
	step("store", func() (err error) {
		r.store, err = measureStore(bin, up, func() { up.swap(newFastFake(cat)) }, o.pick(500, 100), 16, o.httpDuration)
		return err
	})
	step("gobench", func() (err error) {
		r.gobench, r.benchCmd, r.benchCPU, err = runGoBenchmarks(o.root, o.benchtime)
		return err
	})
	if o.profileDir != "" && up != nil {
		logf("profiles…")
		p, err := profileServer(o.profileDir, up, cat)
		if err != nil {
			r.failures = append(r.failures, fmt.Sprintf("profile: %v", err))
		}
		r.profiles = p
	}
	r.took = time.Since(r.start)

	var buf bytes.Buffer
	r.write(&buf)
	os.Stdout.Write(buf.Bytes())
	if o.out != "" {
		if err := rewriteSection(o.out, buf.Bytes()); err != nil {
			return err
		}
		logf("rewrote the results section of %s", o.out)
	}
	if len(r.failures) > 0 {
		return fmt.Errorf("%d part(s) failed", len(r.failures))
	}
	return nil
}

var waitScenarios = []waitScenario{
	{Run: 3 * time.Second},
	{Run: 30 * time.Second},
	{Run: 150 * time.Second},
	{Run: 150 * time.Second, Agent: true},
	// Longer than the default wait, shorter than the API's sync window: the
	// POST is still held when get_run starts polling.
	{Run: 80 * time.Second, Agent: true},
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func describeMachine(root string) machine {
	m := machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemGiB = float64(kb) / (1 << 20)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// Markers delimit the generated section of the markdown file.
const (
	beginMarker = "<!-- bench:results:begin (generated by go run ./bench -out; do not edit by hand) -->"
	endMarker   = "<!-- bench:results:end -->"
)

// rewriteSection replaces the text between the markers of path with
// section; a missing file is created with the section alone.
func rewriteSection(path string, section []byte) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return os.WriteFile(path, []byte(beginMarker+"\n"+string(section)+endMarker+"\n"), 0o644)
	}
	if err != nil {
		return err
	}
	out, err := replaceSection(string(old), string(section))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func replaceSection(doc, section string) (string, error) {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	if i < 0 || j < i {
		return "", errors.New("the results markers are missing; add the lines\n" + beginMarker + "\n" + endMarker)
	}
	return doc[:i+len(beginMarker)] + "\n" + section + doc[j:], nil
}

// write renders the markdown report.
func (r *results) write(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := r.machine
	mode := "full"
	if r.opts.quick {
		mode = "quick (smoke figures, not the reference)"
	}
	cmdline := "go run ./bench"
	if len(r.args) > 0 {
		cmdline += " " + strings.Join(r.args, " ")
	}
	p("Measured %s with `%s` (%s run, %.0f s). Machine: %s, %d cores, %.0f GiB, %s; %s; commit %s. Server binary: %s.\n\n",
		r.start.UTC().Format("2006-01-02 15:04 MST"), cmdline, mode, r.took.Seconds(), m.CPU, m.Cores, m.MemGiB, m.Kernel, m.GoVersion, m.Commit, r.binSource)
	if len(r.loads) > 0 {
		p("Load average (1, 5, 15 min) before → after each part: %s.\n\n", strings.Join(r.loads, "; "))
	}
	if len(r.failures) > 0 {
		p("**Failed parts:**\n\n")
		for _, f := range r.failures {
			p("- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
		p("\n")
	}
	r.writeSummary(p)
	r.writeColdStart(p)
	r.writeOverhead(p)
	r.writeHTTP(p)
	r.writeWaiting(p)
	r.writeStore(p)
	r.writeGoBench(p)
	r.writeListSize(p)
	if r.profiles != "" {
		p("### Profiles\n\n%s\n", r.profiles)
	}
}

type printer func(format string, args ...any)

// mb converts KiB from /proc into decimal megabytes.
func mb(kib int64) float64 { return float64(kib) * 1024 / 1e6 }

const (
	coldTarget     = 10 * time.Millisecond
	rssTargetMB    = 15.0
	overheadTarget = 300 * time.Microsecond
	listTarget     = 6000 // bytes
	delayTarget    = 0.10 // of the run time
	intervalTarget = 2 * time.Second
)

func (r *results) writeSummary(p printer) {
	p("### Summary\n\n| Part | Measure | Figure | Target | Status |\n|---|---|---|---|---|\n")
	if c := r.cold; c != nil {
		med := c.Runs.median()
		p("| 1 | Cold start: spawn → `initialize` response, median of %d | %s | ≤ 10 ms | %s |\n", len(c.Runs), ms(med), verdict(med <= coldTarget))
		p("| 1 | RSS after `tools/list` (VmRSS; peak VmHWM) | %.1f MB; peak %.1f MB | ≤ 15 MB | %s |\n",
			mb(c.Status.VmRSS), mb(c.Status.VmHWM), verdict(mb(c.Status.VmHWM) <= rssTargetMB))
	}
	if o := r.over; o != nil {
		d50 := o.MCP.quantile(0.5) - o.Direct.quantile(0.5)
		d99 := o.MCP.quantile(0.99) - o.Direct.quantile(0.99)
		p("| 2 | Per-call overhead over stdio (`get_credits` − direct GET), p50; p99 | %s; %s | p50 ≤ 0.3 ms | %s |\n", ms(d50), ms(d99), verdict(d50 <= overheadTarget))
	}
	if len(r.http) > 0 {
		errs, calls := 0, 0
		best := map[string]float64{}
		for _, h := range r.http {
			errs += h.Errors
			calls += h.Calls
			k := h.Mode + " " + h.Tool
			best[k] = max(best[k], h.perSecond())
		}
		p("| 3 | HTTP load: errors over %d calls | %d | 0 | %s |\n", calls, errs, verdict(errs == 0))
		for _, h := range r.http {
			if h.Concurrency == r.opts.levels[len(r.opts.levels)-1] {
				p("| 3 | HTTP %s mode, `%s`, concurrency %d: calls/s; p50; p99 | %.0f/s; %s; %s | (no target) | – |\n",
					h.Mode, h.Tool, h.Concurrency, h.perSecond(), ms(h.Latency.quantile(0.5)), ms(h.Latency.quantile(0.99)))
			}
		}
	}
	if len(r.waits) > 0 {
		worstDelay, worstInterval := 0.0, time.Duration(1<<62)
		for _, wr := range r.waits {
			worstDelay = max(worstDelay, wr.Delay.Seconds()/wr.Run.Seconds())
			worstInterval = min(worstInterval, wr.interval())
		}
		p("| 4 | Waiting: delay between the run finishing upstream and the tool returning, worst of %d runs | %.1f%% of the run time | ≤ 10%% | %s |\n",
			len(r.waits), 100*worstDelay, verdict(worstDelay <= delayTarget))
		p("| 4 | Waiting: mean time between upstream requests, worst run | one per %s | ≥ 2 s | %s |\n",
			secs(worstInterval), verdict(worstInterval >= intervalTarget))
	}
	if len(r.gobench) > 0 {
		p("| 5 | Go benchmarks with allocations | %d benchmarks, see below | (no target) | – |\n", len(r.gobench))
	}
	if c := r.cold; c != nil && c.ListLine > 0 {
		p("| 6 | `tools/list` response, %d tools | %d bytes ≈ %d tokens | ≤ 6 KB | %s |\n",
			len(c.ToolSizes), c.ListLine, (c.ListLine+3)/4, verdict(c.ListLine <= listTarget))
	}
	p("\n")
}

func (r *results) writeColdStart(p printer) {
	c := r.cold
	if c == nil {
		return
	}
	p("### 1. Cold start and memory\n\n")
	p("Each run spawns the binary over stdio (`os/exec`), writes `initialize` at once, and stops the clock when the response line has been read; ")
	p("then sends `notifications/initialized` and `tools/list` and reads `/proc/<pid>/status` after the answer. One unmeasured run first warms the page cache. ")
	p("The server runs with `BETTERPROMPT_API_KEY` and `BETTERPROMPT_BASE_URL` pointing at the fake in the bench process (nothing is sent upstream at start-up). ")
	p("Memory is the median of the runs; MB are 10⁶ bytes. Binary size: %.1f MB.\n\n", float64(c.BinaryBytes)/1e6)
	p("| Variant | Runs | Min | Median | Max | VmRSS | VmHWM | RssAnon | RssFile | Threads |\n|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, s sample, st *procStatus) {
		p("| %s | %d | %s | %s | %s |", name, len(s), ms(s.quantile(0)), ms(s.median()), ms(s.quantile(1)))
		if st == nil {
			p(" – | – | – | – | – |\n")
			return
		}
		p(" %.1f MB | %.1f MB | %.1f MB | %.1f MB | %d |\n", mb(st.VmRSS), mb(st.VmHWM), mb(st.RssAnon), mb(st.RssFile), st.Threads)
	}
	row("server with a key and a base URL (the target)", c.Runs, &c.Status)
	row("`--sandbox` (starts a fake API inside the process; for information)", c.SandboxRuns, &c.Sandbox)
	row("`bpmcp --version`: spawn → exit (the floor of any start)", c.VersionRuns, nil)
	p("\n")
	if len(c.Inits) > 0 {
		p("Package initialisation, which every start pays before `main` (`GODEBUG=inittrace=1 bpmcp --version`): %d packages, %s in total, %.2f MB allocated in %d allocations. The slowest:\n\n",
			len(c.Inits), ms(c.InitClock), float64(c.InitBytes)/1e6, c.InitAlloc)
		p("| Package | Init time | Bytes allocated | Allocations |\n|---|---|---|---|\n")
		for _, pi := range c.Inits[:min(5, len(c.Inits))] {
			p("| `%s` | %s | %d | %d |\n", pi.Pkg, ms(pi.Clock), pi.Bytes, pi.Alloc)
		}
		p("\n")
	}
}

func (r *results) writeOverhead(p printer) {
	o := r.over
	if o == nil {
		return
	}
	p("### 2. Per-call overhead over stdio\n\n")
	p("%d sequential calls on each side, in alternating blocks of %d after 200 warm-up calls each; rate limits off on both sides "+
		"(`BPMCP_RATE_LIMIT=-1`, fake `RateLimit: -1`). The MCP side is `tools/call get_credits` through the binary over stdio, "+
		"driven by the bench's own minimal JSON-RPC client (one line written, newline-delimited lines read, one small `json.Unmarshal` per answer; not mcp-go's client). "+
		"The direct side is `GET /v1/me/credits` on the same fake from the bench process (`net/http`, keep-alive, envelope decoded). "+
		"The overhead rows subtract the direct quantile from the MCP quantile.\n\n", o.Calls, overheadBlock)
	p("| Path | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n")
	q := func(s sample) string {
		return fmt.Sprintf("%s | %s | %s | %s", ms(s.quantile(0.5)), ms(s.quantile(0.9)), ms(s.quantile(0.99)), ms(s.quantile(1)))
	}
	p("| `get_credits` over stdio | %s |\n", q(o.MCP))
	p("| direct `GET /v1/me/credits` | %s |\n", q(o.Direct))
	diff := func(x float64) string {
		return ms(o.MCP.quantile(x) - o.Direct.quantile(x))
	}
	p("| **overhead** | **%s** | %s | %s | – |\n\n", diff(0.5), diff(0.9), diff(0.99))
	p("Server process CPU (user+system, from `/proc/<pid>/stat`, 10 ms ticks): %s for %d calls = %.0f µs per call. "+
		"Upstream TCP connections opened during the measured calls: %d.\n\n",
		o.ServerCPU, o.Calls, float64(o.ServerCPU.Microseconds())/float64(o.Calls), o.UpstreamConns)
}

func (r *results) writeHTTP(p printer) {
	if len(r.http) == 0 {
		return
	}
	p("### 3. HTTP throughput\n\n")
	p("`--transport http --addr 127.0.0.1:0`, rate limits off on both sides. Each of N clients initializes once (protocol 2025-11-25), then calls the tool in a closed loop "+
		"for %s after %s of discarded warm-up. *Session* mode is the default (each client has its own `Mcp-Session-Id`); *stateless* is `--stateless`. "+
		"`search_prompts` uses the query \"email\". The load generator and the fake API share the 2 cores with the server, so the rates are a floor on what the server alone could do; "+
		"server CPU per call (from `/proc`) is the figure that does not depend on them.\n\n", r.opts.httpDuration, r.opts.httpWarm)
	p("| Mode | Tool | Concurrency | Calls | Calls/s | p50 | p99 | Errors | Server CPU per call | Upstream requests | Upstream connections opened |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, h := range r.http {
		errs := fmt.Sprint(h.Errors)
		if h.Errors > 0 {
			errs = fmt.Sprintf("**%d** (%s)", h.Errors, tail(h.FirstError, 80))
		}
		cpu := "–"
		if h.Calls > 0 {
			cpu = fmt.Sprintf("%.0f µs", float64(h.ServerCPU.Microseconds())/float64(h.Calls))
		}
		p("| %s | `%s` | %d | %d | %.0f | %s | %s | %s | %s | %d | %d |\n", h.Mode, h.Tool, h.Concurrency, h.Calls, h.perSecond(),
			ms(h.Latency.quantile(0.5)), ms(h.Latency.quantile(0.99)), errs, cpu, h.UpstreamReqs, h.UpstreamConns)
	}
	p("\n")
	if len(r.reuse) > 0 {
		p("**Upstream connection reuse** (in process, no MCP: %d goroutines calling `bpapi.Client.Credits` on the fake in a closed loop for %s; connections counted by the fake's listener):\n\n",
			r.reuse[0].Concurrency, r.opts.httpDuration)
		p("| Client | Calls/s | p50 | p99 | Errors | Connections opened | Per 1000 calls |\n|---|---|---|---|---|---|---|\n")
		for _, c := range r.reuse {
			p("| %s | %.0f | %s | %s | %d | %d | %.0f |\n", c.Label, float64(c.Calls)/c.Duration.Seconds(), ms(c.Latency.quantile(0.5)), ms(c.Latency.quantile(0.99)),
				c.Errors, c.Conns, 1000*float64(c.Conns)/float64(max(c.Calls, 1)))
		}
		p("\n")
	}
}

func (r *results) writeWaiting(p printer) {
	if len(r.waits) == 0 {
		return
	}
	p("### 4. Waiting efficiency\n\n")
	if r.opts.waitScale == 1 {
		w := betterprompt.DefaultWaitConfig()
		p("Real time. In process: `betterprompt.Toolset` with `betterprompt.DefaultWaitConfig()` (PollMin %v, PollMax %v, CreateTimeout %v, default wait %v) and a `bpapi.Client` with the default rate limit (5/s), "+
			"calling the tool handlers directly (the MCP transport is measured in part 2), against a fake with its defaults (sync window 120 s, rate limit 5/s). ",
			w.PollMin, w.PollMax, w.CreateTimeout, w.Default)
	} else {
		p("Accelerated %g×: in process, `betterprompt.Toolset` with every `betterprompt.DefaultWaitConfig()` duration multiplied by %g, the fake's run durations (`TimeScale`) and sync window (120 s) multiplied by the same factor, "+
			"`wait_seconds` scaled and both rate limits divided by it; times below are divided by it back to real-time seconds. HTTP round trips are not scaled, so delays are slightly pessimistic. ",
			1/r.opts.waitScale, r.opts.waitScale)
	}
	p("The prompt is `cold-email-opener` with `durationMs` set to the run time. `get_prompt` is called first (as an agent does; it fills the configuration cache) and is not counted. " +
		"Requests are every request the fake logged from the `run_prompt` call to the final answer; the delay is the moment the final tool call returned minus the run's `RunInfo.FinishedAt`.\n\n")
	p("| Scenario | Tool calls | POST /v1/runs | GET /v1/runs/{id} | GET /v1/runs | Other | Requests | One request per | Delay after finish | Delay / run time | Upstream request times (s after run_prompt) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, wr := range r.waits {
		times := make([]string, len(wr.RequestTimes))
		for i, t := range wr.RequestTimes {
			times[i] = fmt.Sprintf("%.1f", t.Seconds())
		}
		p("| %s | %d | %d | %d | %d | %d | %d | %s | %s | %.1f%% | %s |\n", wr.label(), wr.ToolCalls, wr.Posts, wr.Polls, wr.Lists, wr.Other, wr.requests(),
			secs(wr.interval()), ms(wr.Delay), 100*wr.Delay.Seconds()/wr.Run.Seconds(), strings.Join(times, ", "))
	}
	p("\n")
}

func (r *results) writeGoBench(p printer) {
	if len(r.gobench) == 0 {
		return
	}
	p("### 5. Go benchmarks\n\n`%s` (CPU: %s).\n\n", r.benchCmd, r.benchCPU)
	p("| Package | Benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|---|\n")
	for _, b := range r.gobench {
		p("| %s | %s | %.0f | %d | %d |\n", strings.TrimPrefix(b.Pkg, "github.com/bpmcp/bpmcp/"), b.Name, b.NsPerOp, b.BytesPerOp, b.AllocsPerOp)
	}
	p("\n")
}

func (r *results) writeListSize(p printer) {
	c := r.cold
	if c == nil || c.ListLine == 0 {
		return
	}
	p("### 6. Size of `tools/list`\n\n")
	p("The whole JSON-RPC response line is %d bytes, of which the `tools` array is %d bytes; tokens are approximated as bytes / 4 (≈ %d tokens). The `initialize` response is %d bytes.\n\n",
		c.ListLine, c.ToolsBytes, (c.ListLine+3)/4, c.InitLine)
	p("| Tool | Bytes | ≈ Tokens | description | inputSchema | outputSchema | annotations | annotations.title = title | destructive/idempotentHint on a read-only tool | `required` in outputSchema |\n|---|---|---|---|---|---|---|---|---|---|\n")
	var sum toolSize
	for _, t := range c.ToolSizes {
		p("| `%s` | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", t.Name, t.Bytes, (t.Bytes+3)/4, t.Description, t.Input, t.Output, t.Annotations, t.DupTitle, t.ReadOnlyHints, t.OutputRequired)
		sum.Bytes += t.Bytes
		sum.Description += t.Description
		sum.Input += t.Input
		sum.Output += t.Output
		sum.Annotations += t.Annotations
		sum.DupTitle += t.DupTitle
		sum.ReadOnlyHints += t.ReadOnlyHints
		sum.OutputRequired += t.OutputRequired
	}
	p("| **all** | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n\n", sum.Bytes, (sum.Bytes+3)/4, sum.Description, sum.Input, sum.Output, sum.Annotations, sum.DupTitle, sum.ReadOnlyHints, sum.OutputRequired)
	p("The last three columns are bytes that could go without changing what a tool does (removing a member saves `\"key\":value` and a comma). "+
		"Without them the response would be %d bytes (duplicate titles only: %d; read-only hints only: %d; output `required` only: %d).\n\n",
		c.ListLine-sum.DupTitle-sum.ReadOnlyHints-sum.OutputRequired, c.ListLine-sum.DupTitle, c.ListLine-sum.ReadOnlyHints, c.ListLine-sum.OutputRequired)
}
