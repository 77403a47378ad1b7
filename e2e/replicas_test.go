package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	bwfake "github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/redistest"
)

// The replica test's keys: one per scenario, so that each scenario's rate,
// runs and budget are its own.
const (
	loadKey    = "bp_replicas_load"
	followKey  = "bp_replicas_follow"
	killKey    = "bp_replicas_kill"
	budgetKey  = "bp_replicas_budget"
	outageKey  = "bp_replicas_outage"
	replicasBW = "bw_replicas"

	bwCooldown = 2 * time.Second
	budget     = 200
)

// fleet is three replicas on one Redis behind HAProxy, with the fake APIs
// in this process.
type fleet struct {
	redis    *redistest.Server
	bp       *fakeapi.Server
	bw       *bwfake.Server
	replicas []*process
	urls     []string // each replica's /mcp
	lb       string   // HAProxy's /mcp
	servedBy sync.Map // replica name → *atomic.Int64, from HAProxy's X-Served-By

	schemasOnce sync.Once
	schemas     map[string]*jsonschema.Schema // every tool's outputSchema
}

// TestReplicasBehindHAProxy runs three replicas in --stateless HTTP mode
// on one Redis behind HAProxy round-robin, against a fake BetterPrompt API
// with the real, strict limit of 5 requests per second per key, and logs
// its figures. It needs haproxy and redis-server: e2e/run-replicas.sh
// installs them and runs it (.ci/run calls the script).
func TestReplicasBehindHAProxy(t *testing.T) {
	if os.Getenv("BPMCP_REPLICAS") == "" {
		t.Skip("the replica test runs from e2e/run-replicas.sh (called by .ci/run), which installs haproxy and redis-server")
	}
	f := startFleet(t)
	t.Run("1 sixty agents share one key's rate limit", f.sixtyAgents)
	t.Run("2 a run is followed through the other replicas", f.followAcross)
	t.Run("4a a budget holds across replicas", f.budgetAcross)
	t.Run("4b BetterWaifu generations one at a time", f.betterWaifuAcross)
	t.Run("3 a replica killed while it holds a POST", f.killHolder)
	t.Run("5 Redis stops and comes back", f.redisOutage)
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed; e2e/run-replicas.sh installs it (apt-get install haproxy)")
	}
	f := &fleet{redis: redistest.Start(t)}
	prompts, err := fakeapi.LoadCatalogue(os.DirFS("../testdata/catalogue"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]fakeapi.Key{}
	for _, k := range []string{loadKey, followKey, killKey, budgetKey, outageKey} {
		keys[k] = fakeapi.Key{Credits: 100000}
	}
	f.bp = fakeapi.New(fakeapi.Options{Catalogue: prompts, Keys: keys, SyncWindow: 3 * time.Second, TimeScale: 0.1,
		RateLimit: 5, Burst: 5})
	active := &bwfake.Subscription{Status: "active", Plan: "pro", EndDate: "2027-01-01T00:00:00.000Z"}
	f.bw = bwfake.New(bwfake.Options{Keys: map[string]bwfake.Key{replicasBW: {Username: "fleet", Credits: 1000, Subscription: active}},
		Cooldown: bwCooldown, QueueTime: 300 * time.Millisecond, ProcessTime: 700 * time.Millisecond})
	bpURL := serveLoopback(t, f.bp) + "/v1"
	bwURL := serveLoopback(t, f.bw) + "/api/v1"
	for i := 0; i < 3; i++ {
		p := start(t, []string{"--transport", "http", "--addr", "127.0.0.1:0", "--stateless", "--per-request-keys",
			"--state-url", "redis://" + f.redis.Addr, "--base-url", bpURL, "--betterwaifu-base-url", bwURL,
			"--betterwaifu-cooldown", bwCooldown.String(), "--budget-credits", strconv.Itoa(budget),
			"--log-format", "json", "--log-level", "debug"})
		select {
		case u := <-p.url:
			f.replicas, f.urls = append(f.replicas, p), append(f.urls, u)
		case <-time.After(20 * time.Second):
			t.Fatalf("replica %d did not report its address:\n%s", i+1, p.logs())
		}
	}
	f.lb = startHAProxy(t, haproxy, f.urls)
	return f
}

// serveLoopback serves h on a free loopback port until the test ends.
func serveLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// startHAProxy balances the replicas round-robin, each request on its own
// (the replicas are stateless), checks them on /healthz (a replica whose
// store is down still serves reads), and names the replica that answered
// in X-Served-By.
func startHAProxy(t *testing.T, bin string, urls []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var servers strings.Builder
	for i, u := range urls {
		host := strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/mcp")
		fmt.Fprintf(&servers, "  server r%d %s check inter 300ms fall 2 rise 1\n", i+1, host)
	}
	cfg := fmt.Sprintf(`global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 120s
  timeout server 120s
  retries 2
  option redispatch
frontend mcp
  bind %s
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /healthz
  http-response set-header X-Served-By %%[srv_name]
%s`, addr, servers.String())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", out.String())
		}
	})
	lb := "http://" + addr + "/mcp"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return lb
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not come up on %s:\n%s", addr, out.String())
		}
	}
}

// agentTransport adds the caller's keys to every request and counts which
// replica answered.
type agentTransport struct {
	headers http.Header
	f       *fleet
}

func (a *agentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range a.headers {
		r.Header[k] = v
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && a.f != nil {
		if name := resp.Header.Get("X-Served-By"); name != "" {
			n, _ := a.f.servedBy.LoadOrStore(name, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}
	return resp, err
}

// agent connects a Go SDK client to endpoint with the given BetterPrompt
// and BetterWaifu keys.
func (f *fleet) agent(t *testing.T, endpoint, bpKey string, progress *progressLog) *caller {
	t.Helper()
	h := http.Header{}
	h.Set("X-BetterPrompt-Api-Key", bpKey)
	h.Set("X-BetterWaifu-Api-Key", replicasBW)
	tr := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: &agentTransport{headers: h, f: f}}}
	if progress == nil {
		progress = &progressLog{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := newClient(progress).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	f.schemasOnce.Do(func() {
		list, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Errorf("tools/list: %v", err)
			return
		}
		f.schemas = outputSchemas(t, list.Tools)
	})
	return &caller{t: t, cs: cs, schemas: f.schemas}
}

// requestsOf returns the fake BetterPrompt API's log for key.
func (f *fleet) requestsOf(key string) []fakeapi.Request {
	var out []fakeapi.Request
	for _, r := range f.bp.Requests() {
		if r.KeyHash == fakeapi.HashKey(key) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fleet) posts(key string) int {
	n := 0
	for _, r := range f.requestsOf(key) {
		if r.Route == "POST /v1/runs" {
			n++
		}
	}
	return n
}

var searches = []string{"cold email", "podcast", "release notes", "meal plan", "sql", "packing list", "headline", "portrait", "icon", "research"}

// 1: sixty agents, each on its own connection through the load balancer,
// all with one key: the shared limiter keeps the fake's strict bucket
// (5/s, burst 5) from ever answering 429.
func (f *fleet) sixtyAgents(t *testing.T) {
	const agents = 60
	var wg sync.WaitGroup
	var failed atomic.Int64
	began := time.Now()
	for i := 0; i < agents; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := f.agent(t, f.lb, loadKey, nil)
			for _, call := range []struct {
				name string
				args map[string]any
			}{
				{"search_prompts", map[string]any{"query": searches[i%len(searches)]}},
				{"get_credits", map[string]any{}},
			} {
				res, err := c.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: call.name, Arguments: call.args})
				if err != nil {
					failed.Add(1)
					t.Errorf("agent %d %s: %v", i, call.name, err)
				} else if res.IsError {
					failed.Add(1)
					t.Errorf("agent %d %s: %s", i, call.name, textOf(res))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	reqs := f.requestsOf(loadKey)
	n429 := 0
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			n429++
		}
	}
	if len(reqs) < agents {
		t.Fatalf("only %d upstream requests for %d agents: the test did not load the key", len(reqs), agents)
	}
	first, last := reqs[0].Time, reqs[len(reqs)-1].Time
	// A strict bucket of 5 tokens refilled at 5/s allows the first 5 at
	// once and then one per 200 ms: past the burst, the rate is at most 5/s.
	sustained := float64(len(reqs)-5) / last.Sub(first).Seconds()
	maxIn1s := 0
	for i := range reqs {
		j := i
		for j < len(reqs) && reqs[j].Time.Sub(reqs[i].Time) < time.Second {
			j++
		}
		maxIn1s = max(maxIn1s, j-i)
	}
	served := map[string]int64{}
	f.servedBy.Range(func(k, v any) bool { served[k.(string)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("FIGURES 1: %d agents × 2 calls through HAProxy in %.1f s; %d tool-call failures; MCP requests per replica %v; "+
		"the fake saw %d requests with the key, %d answered 429; sustained rate %.2f/s over %.1f s (limit 5/s); at most %d in any 1 s (bucket allows 10)",
		agents, elapsed.Seconds(), failed.Load(), served, len(reqs), n429, sustained, last.Sub(first).Seconds(), maxIn1s)
	if n429 != 0 || f.bp.Count429() != 0 {
		t.Errorf("the fake answered 429 %d times (%d in all)", n429, f.bp.Count429())
	}
	if sustained > 5.05 {
		t.Errorf("sustained rate %.2f/s is over the key's 5/s", sustained)
	}
	if len(served) != 3 {
		t.Errorf("HAProxy spread the calls over %d replicas, not 3: %v", len(served), served)
	}
}

// researchRun is a run of the slow research prompt (3 s at the fake's
// time scale), whose POST the fake holds for its 3-s window.
func researchRun(wait float64) map[string]any {
	return map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": wait,
		"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "Is fusion near?"}}}
}

// 2: a run started through replica 1 with a short wait, followed through
// replicas 2 and 3 in turn until it ends.
func (f *fleet) followAcross(t *testing.T) {
	first := f.agent(t, f.urls[0], followKey, nil)
	res, out := first.call("run_prompt", researchRun(0.5), nil)
	id, _ := out["run_id"].(string)
	if res.IsError || id == "" {
		t.Fatalf("run_prompt through replica 1: %s", textOf(res))
	}
	others := []*caller{f.agent(t, f.urls[1], followKey, nil), f.agent(t, f.urls[2], followKey, nil)}
	status, calls := out["status"], 0
	for i := 0; status != "succeeded" && i < 20; i++ {
		res, out = others[i%2].call("get_run", map[string]any{"run_id": id, "wait_seconds": 2}, nil)
		calls++
		if res.IsError {
			t.Fatalf("get_run through replica %d: %s", 2+i%2, textOf(res))
		}
		status = out["status"]
		if outID, _ := out["run_id"].(string); outID != "" {
			id = outID
		}
	}
	outputs, _ := out["outputs"].([]any)
	t.Logf("FIGURES 2: started through replica 1 (answered %v); %d get_run calls through replicas 2 and 3 → %v with %d outputs; %d POST /v1/runs",
		"with "+strings.SplitN(id, "-", 2)[0]+"…", calls, status, len(outputs), f.posts(followKey))
	if status != "succeeded" || len(outputs) == 0 {
		t.Errorf("followed through the other replicas: %v\n%s", status, textOf(res))
	}
	if n := f.posts(followKey); n != 1 {
		t.Errorf("%d POSTs for one run", n)
	}
}

var coldEmailRun = map[string]any{"prompt_id": "cold-email-opener", "wait_seconds": 30,
	"inputs": map[string]any{"textInputs": map[string]any{"company_name": "Acme", "recipient_role": "CTO",
		"value_proposition": "We halve your cloud bill."}}}

// 4a: twenty concurrent runs estimated at 40 credits, through the load
// balancer, with a budget of 200 per key: five start, wherever they land.
func (f *fleet) budgetAcross(t *testing.T) {
	var wg sync.WaitGroup
	var started, refused, other atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := f.agent(t, f.lb, budgetKey, nil)
			res, out := c.call("run_prompt", coldEmailRun, nil)
			switch {
			case !res.IsError && out["status"] == "succeeded":
				started.Add(1)
			case res.IsError && strings.Contains(textOf(res), "budget"):
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("run %d: %s", i, textOf(res))
			}
		}()
	}
	wg.Wait()
	charged := 0
	for _, r := range f.bp.Runs(budgetKey) {
		charged += r.Cost
	}
	t.Logf("FIGURES 4a: 20 concurrent run_prompt (estimate 40) through HAProxy, budget %d: %d started, %d refused for the budget, %d other; "+
		"%d POSTs; %d credits charged by the fake", budget, started.Load(), refused.Load(), other.Load(), f.posts(budgetKey), charged)
	if started.Load() != 5 || refused.Load() != 15 || charged > budget {
		t.Errorf("the budget did not hold across replicas")
	}
}

// 4b: generations asked for at once through every replica reach the fake
// BetterWaifu one at a time, each after the previous one ended and the
// cooldown passed.
func (f *fleet) betterWaifuAcross(t *testing.T) {
	const n = 5
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := f.agent(t, f.urls[i%3], budgetKey, nil)
			res, out := c.call("betterwaifu_generate", map[string]any{"prompt": fmt.Sprintf("a lighthouse at dusk, take %d", i),
				"wait_seconds": 60}, nil)
			if res.IsError || out["status"] != "succeeded" {
				t.Errorf("generation %d through replica %d: %s", i, i%3+1, textOf(res))
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	gens := f.bw.Generations()
	sort.Slice(gens, func(i, j int) bool { return gens[i].Submitted.Before(gens[j].Submitted) })
	var gaps []string
	for i := 1; i < len(gens); i++ {
		gap := gens[i].Submitted.Sub(gens[i-1].Done)
		gaps = append(gaps, fmt.Sprintf("%.1fs", gap.Seconds()))
		if gap < bwCooldown {
			t.Errorf("generation %d started %v after the previous one ended, under the %v cooldown", i+1, gap, bwCooldown)
		}
	}
	t.Logf("FIGURES 4b: %d generations asked through replicas 1-3 at once: %d succeeded, %d reached the fake, gaps after the previous end %v (cooldown %v), %d × 429",
		n, ok.Load(), len(gens), gaps, bwCooldown, f.bw.Rejected429(replicasBW))
	if len(gens) != n || f.bw.Rejected429(replicasBW) != 0 {
		t.Errorf("%d generations reached the fake, %d refused with 429", len(gens), f.bw.Rejected429(replicasBW))
	}
}

var handleInProgress = regexp.MustCompile(`run_id=([0-9a-f-]{36})`)

// 3: replica 3 is killed while the fake holds its run's POST; the run is
// found through the others and nothing is started twice.
func (f *fleet) killHolder(t *testing.T) {
	progress := &progressLog{}
	victim := f.agent(t, f.urls[2], killKey, progress)
	go func() {
		params := &mcp.CallToolParams{Name: "run_prompt", Arguments: researchRun(30)}
		params.SetProgressToken("kill")
		_, _ = victim.cs.CallTool(context.Background(), params) // never answered: the replica dies
	}()
	var handle string
	for deadline := time.Now().Add(10 * time.Second); handle == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no handle in a progress notification")
		}
		progress.mu.Lock()
		for _, m := range progress.msgs {
			if h := handleInProgress.FindStringSubmatch(m); h != nil {
				handle = h[1]
			}
		}
		progress.mu.Unlock()
	}
	held := func() bool {
		for _, r := range f.requestsOf(killKey) {
			if r.Route == "POST /v1/runs" && r.Status == 0 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !held(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the POST never reached the fake")
		}
	}
	if err := f.replicas[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-f.replicas[2].exited
	runs := f.bp.Runs(killKey)
	if len(runs) != 1 {
		t.Fatalf("%d runs at the fake", len(runs))
	}
	// The agent follows its handle through the load balancer, which
	// now routes around the dead replica.
	c := f.agent(t, f.lb, killKey, nil)
	res, out := c.call("get_run", map[string]any{"run_id": handle, "wait_seconds": 20}, nil)
	found := strings.Contains(textOf(res), runs[0].RunID)
	confirmed := out["run_id"] == runs[0].RunID
	res2, out2 := c.call("get_run", map[string]any{"run_id": runs[0].RunID, "wait_seconds": 20}, nil)
	outputs, _ := out2["outputs"].([]any)
	t.Logf("FIGURES 3: replica 3 SIGKILLed while the fake held its POST; get_run(handle) through HAProxy: run %s found=%v (confirmed as the call's: %v); "+
		"get_run(run id) → %v with %d outputs; %d POST /v1/runs, %d run(s) at the fake",
		runs[0].RunID[:8], found, confirmed, out2["status"], len(outputs), f.posts(killKey), len(f.bp.Runs(killKey)))
	if res.IsError || !found {
		t.Errorf("the handle's run was not found through another replica:\n%s", textOf(res))
	}
	if res2.IsError || out2["status"] != "succeeded" || len(outputs) == 0 {
		t.Errorf("get_run of the run id: %s", textOf(res2))
	}
	if f.posts(killKey) != 1 || len(f.bp.Runs(killKey)) != 1 {
		t.Errorf("started twice")
	}
}

// 5: with Redis gone, spending is refused with nothing sent, reads are
// served and /readyz says not ready; with Redis back, all resume without a
// restart.
func (f *fleet) redisOutage(t *testing.T) {
	c := f.agent(t, f.lb, outageKey, nil)
	live := f.urls[:2] // replica 3 was killed in scenario 3
	f.redis.Stop()
	postsBefore := f.posts(outageKey)
	res, _ := c.call("run_prompt", coldEmailRun, nil)
	refused := res.IsError && strings.Contains(textOf(res), "nothing was run or spent")
	postsDuring := f.posts(outageKey) - postsBefore
	res, _ = c.call("search_prompts", map[string]any{"query": "cold email"}, nil)
	readOK := !res.IsError && strings.Contains(textOf(res), "Cold Email Opener")
	down := readyStatuses(live)
	f.redis.Restart(t)
	var up []int
	recovered := time.Now()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if up = readyStatuses(live); up[0] == http.StatusOK && up[1] == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis came back: %v", up)
		}
	}
	res, out := c.call("run_prompt", coldEmailRun, nil)
	t.Logf("FIGURES 5: Redis stopped: run_prompt refused=%v with %d POSTs, search_prompts served=%v, /readyz %v; "+
		"Redis back: /readyz %v after %.1f s, run_prompt → %v",
		refused, postsDuring, readOK, down, up, time.Since(recovered).Seconds(), out["status"])
	if !refused || postsDuring != 0 {
		t.Errorf("spending with the store gone was not refused with nothing sent")
	}
	if !readOK {
		t.Errorf("reads were not served with the store gone")
	}
	if down[0] != http.StatusServiceUnavailable || down[1] != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store gone: %v", down)
	}
	if res.IsError || out["status"] != "succeeded" {
		t.Errorf("run_prompt after Redis came back: %s", textOf(res))
	}
}

// readyStatuses returns each replica's /readyz status.
func readyStatuses(urls []string) []int {
	out := make([]int, len(urls))
	for i, u := range urls {
		resp, err := http.Get(strings.TrimSuffix(u, "/mcp") + "/readyz")
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		out[i] = resp.StatusCode
	}
	return out
}
