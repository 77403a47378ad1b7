// Command bpmcp is an MCP server for BetterPrompt: it lets AI agents search
// BetterPrompt's marketplace of published prompts, read a prompt's inputs as
// a JSON Schema, run it and get its text, image and video outputs, over stdio
// or Streamable HTTP. Run it with --help for its settings.
package main

import (
	"cmp"
	"context"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/bwapi"
	bwfake "github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/calltrace"
	"github.com/bpmcp/bpmcp/internal/cassette"
	"github.com/bpmcp/bpmcp/internal/metrics"
	"github.com/bpmcp/bpmcp/internal/seal"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/state/redisstate"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it comes from the module's build information.
var version = ""

// catalogue holds the sample prompts that --sandbox serves.
//
//go:embed testdata/catalogue/*.json
var catalogue embed.FS

func main() {
	environ := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	// A host that closes its end of stdio must not kill the server with
	// SIGPIPE before it has drained its runs: writes fail with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal then interrupts the drain
	}()
	os.Exit(run(ctx, os.Args[1:], environ, os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code. stdout is reserved
// for the MCP protocol: everything else goes to stderr.
func run(ctx context.Context, args []string, environ map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(args, environ, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bpmcp: %v\n", err)
		return 2
	}
	if cfg.Version {
		fmt.Fprintf(stderr, "bpmcp %s\n", programVersion())
		return 0
	}
	logger := newLogger(cfg, stderr)

	apiKey, baseURL := cfg.APIKey, cfg.BaseURL
	bwKey, bwBaseURL := cfg.BetterWaifuAPIKey, cfg.BetterWaifuBaseURL
	var episodeKey func(header, episode string) secret.String
	if cfg.Sandbox {
		sandbox, err := startSandbox(cfg)
		if err != nil {
			logger.Error("cannot start the sandbox", "err", err)
			return 1
		}
		defer sandbox.close()
		episodeKey = sandbox.episodes.key
		apiKey, baseURL = fakeapi.SandboxKey, sandbox.baseURL
		bwKey, bwBaseURL = bwfake.SandboxKey, sandbox.bwBaseURL
		logger.Warn("SANDBOX MODE: using simulated BetterPrompt and BetterWaifu APIs with sample prompts; outputs are not real and nothing is spent",
			"api", baseURL, "betterwaifu_api", bwBaseURL)
	} else if cfg.ReplayDir != "" {
		rp, err := startReplay(cfg)
		if err != nil {
			logger.Error("cannot replay", "err", err)
			return 1
		}
		defer rp.close()
		apiKey, baseURL = rp.bpKey, rp.baseURL
		bwKey, bwBaseURL = rp.bwKey, rp.bwBaseURL
		episodeKey = rp.episodeKey
		// The recordings already waited for BetterWaifu's cooldown; replayed,
		// a generation follows the one before at once.
		cfg.BetterWaifuCooldown = time.Millisecond
		logger.Warn("REPLAY MODE: answering from recordings; nothing is sent to the APIs", "dir", cfg.ReplayDir,
			"speed", cfg.ReplaySpeed, "api", baseURL)
	} else if apiKey == "" && !cfg.PerRequestKeys {
		logger.Warn("BETTERPROMPT_API_KEY is not set: every tool will answer with instructions to set it (or use --sandbox)")
	}

	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New()
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, m, logger)
		if err != nil {
			logger.Error("cannot serve the metrics", "addr", cfg.MetricsAddr, "err", err)
			return 1
		}
		defer stopMetrics()
	}
	store, err := openStore(cfg, m, logger)
	if err != nil {
		logger.Error("cannot use the shared state store", "err", err)
		return 2
	}
	if store != nil {
		defer store.close()
	}
	up := upstreams{apiKey: apiKey, baseURL: baseURL, bwKey: bwKey, bwBaseURL: bwBaseURL}
	if cfg.RecordDir != "" {
		rec, err := cassette.NewRecorder(cfg.RecordDir, secret.String(apiKey), secret.String(bwKey))
		if err != nil {
			logger.Error("cannot record", "err", err)
			return 2
		}
		defer rec.Close() // after the server: the last media downloads
		up.recorder = rec
		logger.Info("recording every API request and answer", "dir", cfg.RecordDir)
	}
	toolsets := buildToolsets(cfg, logger, m, store, up)
	keep, err := toolFilter(cfg, toolsets)
	if err != nil {
		fmt.Fprintf(stderr, "bpmcp: %v\n", err)
		return 2
	}
	if m != nil {
		keep = append(keep, mcpserver.WithMetrics(m))
	}
	if cfg.TraceFile != "" {
		trace, err := calltrace.Open(cfg.TraceFile)
		if err != nil {
			logger.Error("cannot write the trace", "err", err)
			return 2
		}
		defer func() { _ = trace.Close() }()
		keep = append(keep, mcpserver.WithTrace(trace))
	}
	keep = append(keep, mcpserver.WithMediaOrigins(mediaOrigins(baseURL, bwBaseURL)...))
	var ready func(context.Context) error
	if store != nil {
		ready = store.Ping
	}
	err = serve(ctx, cfg, logger, toolsets, keep, ready, episodeKey, stdin, stdout, stderr)
	// Runs whose POST is still held by the API would lose their id if the
	// process exited now: wait for their answers (the ids are logged), up to
	// a bound, and stop at a second signal. This happens however serving
	// ended.
	drain, cancel := context.WithTimeout(context.Background(), betterprompt.DefaultWaitConfig().CreateTimeout)
	defer cancel()
	for _, set := range toolsets {
		if err := set.Drain(drain); err != nil {
			logger.Warn("exiting before every started run reported its id; see the log lines above for the runs known so far")
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		logger.Error("server stopped", "err", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

// upstreams are the keys and base URLs the toolsets talk to (the sandbox's
// in sandbox mode).
type upstreams struct {
	apiKey    bpapi.APIKey
	baseURL   string
	bwKey     bwapi.APIKey
	bwBaseURL string
	recorder  *cassette.Recorder // --record; nil otherwise
}

// httpClient is the HTTP client of api's client when recording: next,
// through the recorder; nil otherwise (the client's own default).
func (u upstreams) httpClient(api string, next *http.Client) *http.Client {
	if u.recorder == nil {
		return nil
	}
	return u.recorder.Client(api, next)
}

// buildToolsets makes every toolset the server offers, with the spending
// controls they share; a new one is registered here.
func buildToolsets(cfg config, logger *slog.Logger, m *metrics.Metrics, store *sharedStore, up upstreams) []tools.Toolset {
	var limiter bpapi.Limiter
	if rate := cmp.Or(cfg.RateLimit, bpapi.DefaultRateLimit); store != nil && rate > 0 {
		// 0 is bpapi's default rate and a negative rate no limit, as
		// without a store.
		local := state.NewRateLimiter(rate, bpapi.DefaultBurst)
		limiter = store.RateLimiter(rate, bpapi.DefaultBurst).WithFallback(local)
	}
	client := bpapi.New(bpapi.Options{
		Limiter:        limiter,
		BaseURL:        up.baseURL,
		APIKey:         up.apiKey,
		UserAgent:      "bpmcp/" + programVersion(),
		RateLimit:      cfg.RateLimit,
		RequestTimeout: cfg.RequestTimeout,
		Logger:         logger,
		Observe:        observe(m, "betterprompt"),
		HTTPClient:     up.httpClient("betterprompt", bpapi.DefaultHTTPClient()),
	})
	// One ledger for both upstreams; each keeps its own budget in it.
	var budgets spending.Budgets = state.NewBudgets()
	if store != nil {
		budgets = store.Budgets()
	}
	policy := func() spending.Policy {
		return spending.Policy{Budget: cfg.BudgetCredits, Window: cfg.BudgetWindow, Budgets: budgets}
	}
	confirm := confirmer(cfg, logger, store)
	wait := betterprompt.DefaultWaitConfig()
	wait.Default, wait.Max = cfg.WaitDefault, cfg.WaitMax
	perRequest := cfg.PerRequestKeys && cfg.Transport == "http"
	pins, _ := betterprompt.ParsePins(cfg.Prompts) // checked with the settings
	bp := &betterprompt.Toolset{
		Pins:           pins,
		AllowPinning:   cfg.AllowPinning,
		InlinePreviews: cfg.InlinePreviews,
		Client:         client,
		PerRequestKeys: perRequest,
		Wait:           wait,
		Logger:         logger,
		Sandbox:        cfg.Sandbox,
		MaxWaitsPerKey: cfg.MaxWaitsPerKey,
		ExclusiveKey:   cfg.ExclusiveKey,
		Spending:       policy(),
		Confirm:        confirm,
		Metrics:        m,
	}
	if store != nil {
		bp.Slots, bp.Records = store.Slots(), store.Records()
	}
	toolsets := []tools.Toolset{bp}
	// BetterWaifu's tools are offered only to whoever can use them: with a
	// key, in the sandbox, or to callers that bring their own.
	if up.bwKey != "" || perRequest {
		bw := &betterwaifu.Toolset{
			InlinePreviews: cfg.InlinePreviews,
			Client: bwapi.New(bwapi.Options{
				BaseURL:        up.bwBaseURL,
				APIKey:         up.bwKey,
				UserAgent:      "bpmcp/" + programVersion(),
				RequestTimeout: cfg.RequestTimeout,
				Logger:         logger,
				Observe:        observe(m, "betterwaifu"),
				HTTPClient: up.httpClient("betterwaifu", &http.Client{
					CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}),
			}),
			PerRequestKeys: perRequest,
			WaitDefault:    cfg.WaitDefault,
			WaitMax:        cfg.WaitMax,
			Cooldown:       cfg.BetterWaifuCooldown,
			Logger:         logger,
			Sandbox:        cfg.Sandbox,
			Spending:       policy(),
			Confirm:        confirm,
			Metrics:        m,
		}
		if store != nil {
			// A place in line outlives the checks made before the first
			// turn (two API reads, each up to --request-timeout).
			bw.Turns = store.Turns(cfg.BetterWaifuCooldown, 0).WithPlaceTTL(2*cfg.RequestTimeout + 30*time.Second)
		}
		toolsets = append(toolsets, bw)
	}
	return toolsets
}

// sharedStore is the Redis that replicas share (--state-url).
type sharedStore struct {
	*redisstate.Store
	close func()
}

// openStore connects to --state-url, or returns nil without one. The
// client fails fast (short timeouts, one retry): a guard that cannot be
// checked refuses at once rather than hold the call.
func openStore(cfg config, m *metrics.Metrics, logger *slog.Logger) (*sharedStore, error) {
	if cfg.StateURL == "" {
		return nil, nil
	}
	opts, err := redis.ParseURL(cfg.StateURL.Reveal())
	if err != nil {
		return nil, errors.New("--state-url is not a Redis URL") // the URL may hold a password: not repeated
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = time.Second, time.Second, time.Second, 1
	opts.DisableIdentity = true          // CLIENT SETINFO is Redis 7.2+; on 7.0 and Valkey 7 it fails at every connection
	redis.SetLogger(redisLogger{logger}) // its own messages (a lost connection) as ours, at debug
	c := redis.NewClient(opts)
	if m != nil {
		redisstate.Observe(c, m.StoreOp)
	}
	return &sharedStore{Store: redisstate.New(c, ""), close: func() { _ = c.Close() }}, nil
}

// mediaOrigins are the origins the run viewer may load outputs from: the
// known hosts of both APIs, and the origins of the base URLs in use (the
// sandbox's fakes serve media themselves).
func mediaOrigins(baseURLs ...string) []string {
	out := slices.Clone(mcpserver.DefaultMediaOrigins)
	for _, b := range baseURLs {
		if u, err := url.Parse(b); err == nil && u.Scheme != "" && u.Host != "" {
			if o := u.Scheme + "://" + u.Host; !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

// redisLogger passes the Redis client's own log lines to the server's
// logger at debug level: an outage is told once, by the calls it refuses
// and by /readyz, not by a line per dial.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// observe counts an API client's requests in m (nil: not at all).
func observe(m *metrics.Metrics, api string) func(method, path string, status int, d time.Duration) {
	if m == nil {
		return nil
	}
	return func(method, path string, status int, d time.Duration) {
		m.Upstream(api, method, metrics.Route(path), status, d)
	}
}

// serveMetrics serves m at http://addr/metrics until the returned stop.
func serveMetrics(addr string, m *metrics.Metrics, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	logger.Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = hs.Close() }, nil
}

// confirmer is the user's confirmation above --confirm-above, or nil.
func confirmer(cfg config, logger *slog.Logger, store *sharedStore) *spending.Confirmer {
	if cfg.ConfirmAbove <= 0 {
		return nil
	}
	if cfg.StateSecret == "" && cfg.Transport == "http" {
		level := slog.LevelInfo
		if cfg.Stateless {
			level = slog.LevelWarn // load-balanced replicas: an answer would land on another and be refused
		}
		logger.Log(context.Background(), level, "BPMCP_STATE_SECRET is not set: a confirmation can be answered only through this process (set the same secret on every replica)")
	}
	c := &spending.Confirmer{Above: cfg.ConfirmAbove, Sealer: seal.New([]byte(cfg.StateSecret.Reveal()))}
	if store != nil {
		c.Nonces = store.Nonces() // one answer, one run, on every replica
	}
	return c
}

// toolFilter returns the option that offers only the configured tools
// (--read-only, --tools), or none; a name in --tools that no toolset has is
// an error that lists the names there are.
func toolFilter(cfg config, toolsets []tools.Toolset) ([]mcpserver.Option, error) {
	if !cfg.ReadOnly && len(cfg.Tools) == 0 {
		return nil, nil
	}
	allowed := map[string]bool{}
	if len(cfg.Tools) > 0 {
		names := mcpserver.ToolNames(toolsets)
		for _, n := range cfg.Tools {
			if !slices.Contains(names, n) {
				return nil, fmt.Errorf("--tools names %q, which this server does not offer here; its tools are: %s", n, strings.Join(names, ", "))
			}
			allowed[n] = true
		}
	}
	return []mcpserver.Option{mcpserver.WithToolFilter(func(t mcp.Tool) bool {
		return (len(allowed) == 0 || allowed[t.Name]) && (!cfg.ReadOnly || mcpserver.ReadOnly(t))
	})}, nil
}

// serve serves MCP on the configured transport until ctx ends or the
// client goes away.
func serve(ctx context.Context, cfg config, logger *slog.Logger, toolsets []tools.Toolset, keep []mcpserver.Option,
	ready func(context.Context) error, episodeKey func(header, episode string) secret.String,
	stdin io.Reader, stdout, stderr io.Writer) error {
	switch cfg.Transport {
	case "http":
		srv := mcpserver.New(programVersion(), toolsets, keep...)
		return mcpserver.ServeHTTP(ctx, srv, mcpserver.HTTPOptions{
			Toolsets:       toolsets,
			Ready:          ready,
			Addr:           cfg.Addr,
			Stateless:      cfg.Stateless,
			AllowedOrigins: cfg.AllowedOrigins,
			AuthToken:      cfg.AuthToken,
			PerRequestKeys: cfg.PerRequestKeys,
			EpisodeKey:     episodeKey,
			MaxBodyBytes:   cfg.MaxBodyBytes,
			SessionIdleTTL: cfg.SessionIdleTTL,
			MaxSessions:    cfg.MaxSessions,
			ShutdownGrace:  cfg.ShutdownGrace,
			WriteTimeout:   cfg.WaitMax + time.Minute,
			Logger:         logger,
		}, func(addr net.Addr) {
			logger.Info("serving MCP over Streamable HTTP", "url", "http://"+addr.String()+"/mcp", "version", programVersion())
			if ip, ok := addr.(*net.TCPAddr); ok && !ip.IP.IsLoopback() && cfg.AuthToken == "" {
				logger.Warn("listening beyond loopback without --auth-token: anyone who can reach this address can spend the account's credits")
			}
		})
	default:
		logger.Info("serving MCP over stdio", "version", programVersion())
		// One client: MCP tasks are safe to offer (see mcpserver.WithTasks).
		srv := mcpserver.New(programVersion(), toolsets, append(keep, mcpserver.WithTasks())...)
		return mcpserver.ServeStdio(ctx, srv, stdin, stdout, stderr, mcpserver.StdioOptions{
			Toolsets: toolsets,
			EOFGrace: cfg.WaitDefault + 15*time.Second,
		})
	}
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}))
}

// isTerminal reports whether w is a character device, so colours are used
// only where a person reads them.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func programVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}

// versionOf is the version a release build was given (ldflags), else the
// module's (go install …@v1.2.3), else "dev" with the commit it was built
// from when the build recorded it ("dev+0123456789ab", "-dirty" when the
// tree had changes). A build with -buildvcs=false records no commit.
func versionOf(fromLdflags string, bi *debug.BuildInfo) string {
	if fromLdflags != "" {
		return fromLdflags
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "dev"
	}
	v := "dev+" + rev[:min(12, len(rev))]
	if modified == "true" {
		v += "-dirty"
	}
	return v
}

// sandbox is the simulated APIs that --sandbox serves on loopback ports.
type sandbox struct {
	baseURL   string // BetterPrompt's
	bwBaseURL string // BetterWaifu's
	episodes  *episodes
	close     func()
}

func startSandbox(cfg config) (*sandbox, error) {
	sub, err := fs.Sub(catalogue, "testdata/catalogue")
	if err != nil {
		return nil, err
	}
	prompts, err := fakeapi.LoadCatalogue(sub)
	if err != nil {
		return nil, fmt.Errorf("load the sample catalogue: %w", err)
	}
	eps := newEpisodes()
	var ids io.Reader
	if cfg.SandboxSeed != 0 {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(cfg.SandboxSeed))
		ids = rand.NewChaCha8(seed)
	}
	fake := fakeapi.New(fakeapi.Options{
		IDs:        ids,
		Catalogue:  prompts,
		Keys:       map[string]fakeapi.Key{fakeapi.SandboxKey: {Credits: sandboxCredits}},
		NewAccount: eps.bpAccount,
		TimeScale:  cfg.SandboxTimeScale,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fake.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	// BetterWaifu's fake keeps the configured cooldown, so that the limits
	// the server keeps are the ones it meets; its jobs follow the time scale.
	bw := bwfake.New(bwfake.Options{
		NewAccount:  eps.bwAccount,
		Cooldown:    cfg.BetterWaifuCooldown,
		QueueTime:   time.Duration(float64(3*time.Second) * cfg.SandboxTimeScale),
		ProcessTime: time.Duration(float64(5*time.Second) * cfg.SandboxTimeScale),
	})
	bwln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = hs.Close()
		fake.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	eps.bp, eps.bw = fake, bw
	bws := &http.Server{Handler: bw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = bws.Serve(bwln) }()
	return &sandbox{
		baseURL:   "http://" + ln.Addr().String() + "/v1",
		bwBaseURL: "http://" + bwln.Addr().String() + "/api/v1",
		episodes:  eps,
		close: func() {
			_ = hs.Close()
			_ = bws.Close()
			fake.Close()
		},
	}, nil
}
