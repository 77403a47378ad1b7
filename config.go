package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// config is every setting of the server. Each field is declared once: its
// environment variable and default (read by caarlos0/env), its flag name and
// its help text. Flags are built from these tags, so --help always lists
// every setting, and a flag wins over the environment.
type config struct {
	APIKey         bpapi.APIKey `env:"BETTERPROMPT_API_KEY" help:"BetterPrompt API key (Pro plan). Environment only, so it never shows in a process list"`
	BaseURL        string       `env:"BETTERPROMPT_BASE_URL" envDefault:"https://api.betterprompt.me/v1" flag:"base-url" help:"BetterPrompt API base URL, including /v1"`
	Prompts        []string     `env:"BETTERPROMPT_PROMPTS" envSeparator:"," flag:"prompts" help:"comma-separated prompts that get a tool of their own, each id[@version][=tool_name] (an id, a slug or a page link); loaded with the server's key at start-up"`
	InlinePreviews bool         `env:"BPMCP_INLINE_PREVIEWS" flag:"inline-previews" help:"embed downscaled previews of image outputs in results (under about 700 KB), for hosts that show images but not links; a call's inline_images overrides it (off: an image costs an agent's context)"`
	AllowPinning   bool         `env:"BPMCP_ALLOW_PINNING" flag:"allow-pinning" help:"offer pin_prompt, which gives a prompt a tool of its own while the server runs (not with --per-request-keys)"`
	Sandbox        bool         `env:"BPMCP_SANDBOX" flag:"sandbox" help:"run against built-in simulated APIs (BetterPrompt with sample prompts, and BetterWaifu): no account needed, nothing is spent"`

	BetterWaifuAPIKey   bwapi.APIKey  `env:"BETTERWAIFU_API_KEY" help:"BetterWaifu API key (bw_…; needs an active subscription). Environment only. When set, the BetterWaifu tools are offered"`
	BetterWaifuBaseURL  string        `env:"BETTERWAIFU_BASE_URL" envDefault:"https://betterwaifu.com/api/v1" flag:"betterwaifu-base-url" help:"BetterWaifu API base URL, including /api/v1"`
	BetterWaifuCooldown time.Duration `env:"BETTERWAIFU_COOLDOWN" envDefault:"60s" flag:"betterwaifu-cooldown" help:"least time between the end of one BetterWaifu generation and the start of the next, per key (the API's limit)"`

	Transport      string        `env:"BPMCP_TRANSPORT" envDefault:"stdio" flag:"transport" help:"stdio or http"`
	Addr           string        `env:"BPMCP_ADDR" envDefault:"127.0.0.1:8080" flag:"addr" help:"HTTP listen address; the MCP endpoint is /mcp. Loopback unless you change it"`
	Stateless      bool          `env:"BPMCP_STATELESS" flag:"stateless" help:"HTTP: no Mcp-Session-Id; every request stands alone (for load-balanced replicas)"`
	AllowedOrigins []string      `env:"BPMCP_ALLOWED_ORIGINS" envSeparator:"," flag:"allowed-origins" help:"HTTP: comma-separated browser origins allowed to call the server; requests with another Origin get 403"`
	AuthToken      secret.String `env:"BPMCP_AUTH_TOKEN" flag:"auth-token" help:"HTTP: bearer token callers must send in Authorization (prefer the environment variable)"`
	PerRequestKeys bool          `env:"BPMCP_PER_REQUEST_KEYS" flag:"per-request-keys" help:"HTTP: each request brings its own keys (X-BetterPrompt-Api-Key, X-BetterWaifu-Api-Key headers); the server's keys are never used"`
	ShutdownGrace  time.Duration `env:"BPMCP_SHUTDOWN_GRACE" envDefault:"30s" flag:"shutdown-grace" help:"HTTP: on SIGTERM, how long calls in flight may take; calls waiting for runs answer with their run id a little before it ends"`
	MaxBodyBytes   int64         `env:"BPMCP_MAX_BODY_BYTES" envDefault:"16777216" flag:"max-body-bytes" help:"HTTP: request body limit in bytes"`
	SessionIdleTTL time.Duration `env:"BPMCP_SESSION_IDLE_TTL" envDefault:"30m" flag:"session-idle-ttl" help:"HTTP: end a session after this long without a request; its id then gets 404 and the client starts a new session. More than 0"`
	MaxSessions    int           `env:"BPMCP_MAX_SESSIONS" envDefault:"10000" flag:"max-sessions" help:"HTTP: open sessions at most (about 12 KiB each); past it initialize gets 503 until sessions end or expire"`
	WaitDefault    time.Duration `env:"BPMCP_WAIT_DEFAULT" envDefault:"45s" flag:"wait-default" help:"how long run_prompt and get_run wait for a run when wait_seconds is not given (hosts time out after ~60 s)"`
	WaitMax        time.Duration `env:"BPMCP_WAIT_MAX" envDefault:"10m" flag:"wait-max" help:"the longest wait_seconds accepted"`
	RequestTimeout time.Duration `env:"BPMCP_REQUEST_TIMEOUT" envDefault:"30s" flag:"request-timeout" help:"timeout of one BetterPrompt API read (starting a run has its own, longer limit)"`
	MaxWaitsPerKey int           `env:"BPMCP_MAX_WAITS_PER_KEY" envDefault:"64" flag:"max-waits-per-key" help:"how many calls may wait for runs at once per API key; past it run_prompt refuses before spending and get_run answers without waiting"`
	ExclusiveKey   bool          `env:"BPMCP_EXCLUSIVE_KEY" flag:"exclusive-key" help:"only this server starts runs with the API key (no web app, CLI or other server process): a run found in the run list after a failed start is then known to be this server's; otherwise it is reported as unconfirmed"`
	RateLimit      float64       `env:"BPMCP_RATE_LIMIT" envDefault:"5" flag:"rate-limit" help:"BetterPrompt requests per second per API key (the API allows 5)"`
	BudgetCredits  int           `env:"BPMCP_BUDGET_CREDITS" flag:"budget-credits" help:"credits each API key may spend per --budget-window, per upstream (0: no budget); a run whose estimate would go past it is refused before anything is sent"`
	BudgetWindow   time.Duration `env:"BPMCP_BUDGET_WINDOW" envDefault:"24h" flag:"budget-window" help:"the budget's rolling window: a charge counts for this long after its run started"`
	ConfirmAbove   int           `env:"BPMCP_CONFIRM_ABOVE" flag:"confirm-above" help:"ask the user, through the client, before a run estimated above this many credits, or whose price is unknown (0: never ask)"`
	StateSecret    secret.String `env:"BPMCP_STATE_SECRET" help:"key that seals the state of a confirmation question; give every replica the same one (default: a random key per process). Environment only"`
	ReadOnly       bool          `env:"BPMCP_READ_ONLY" flag:"read-only" help:"offer only the tools that spend nothing (search, inspect, read runs and balances)"`
	Tools          []string      `env:"BPMCP_TOOLS" envSeparator:"," flag:"tools" help:"comma-separated allowlist of the tools to offer (default: all); with --read-only, those of them that spend nothing"`

	StateURL    secret.String `env:"BPMCP_STATE_URL" flag:"state-url" help:"redis://… (or rediss://…) of a Redis 7 or Valkey that every replica shares: the rate limit, wait slots, run records, budgets and BetterWaifu's line are kept there (default: in memory, one process)"`
	TraceFile   string        `env:"BPMCP_TRACE_FILE" flag:"trace" help:"append a JSON line per tool call to this file (tool, arguments with inline images as size and hash, outcome, run status and id, credits, duration, upstream requests; never a key)"`
	MetricsAddr string        `env:"BPMCP_METRICS_ADDR" flag:"metrics-addr" help:"serve Prometheus metrics at http://ADDR/metrics on a listener of their own (off by default)"`

	LogLevel  string `env:"BPMCP_LOG_LEVEL" envDefault:"info" flag:"log-level" help:"debug, info, warn or error (logs go to stderr)"`
	LogFormat string `env:"BPMCP_LOG_FORMAT" envDefault:"text" flag:"log-format" help:"text or json"`

	RecordDir        string  `env:"BPMCP_RECORD_DIR" flag:"record" help:"record every request to BetterPrompt and BetterWaifu, and its answer, into this directory (one JSON file each, keys redacted, output media downloaded), for --replay"`
	ReplayDir        string  `env:"BPMCP_REPLAY_DIR" flag:"replay" help:"answer from the recordings in this directory instead of the APIs: no key, no network; a call with no recording is an error that names it"`
	ReplaySpeed      float64 `env:"BPMCP_REPLAY_SPEED" flag:"replay-speed" help:"replay: wait the recorded time of each answer times this (0: answer at once, 1: as recorded)"`
	SandboxSeed      int64   `env:"BPMCP_SANDBOX_SEED" flag:"sandbox-seed" help:"sandbox: make the simulated APIs' choices (run ids) the same from one start to the next (0: different each time)"`
	SandboxTimeScale float64 `env:"BPMCP_SANDBOX_TIME_SCALE" envDefault:"1" flag:"sandbox-time-scale" help:"sandbox: multiply simulated run durations (0.1 = ten times faster)"`

	Version bool `flag:"version" help:"print the version and exit"`
}

// errHelp reports that --help was asked for and the usage printed.
var errHelp = flag.ErrHelp

// loadConfig reads the environment, then the flags, which win.
func loadConfig(args []string, environ map[string]string, stderr io.Writer) (config, error) {
	var c config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return c, fmt.Errorf("environment: %w", err)
	}
	fs := flag.NewFlagSet("bpmcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr) }
	v := reflect.ValueOf(&c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("flag")
		if name == "" {
			continue
		}
		fs.Var(&fieldValue{v.Field(i)}, name, f.Tag.Get("help"))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.AllowedOrigins = splitList(strings.Join(c.AllowedOrigins, ","))
	c.Tools = splitList(strings.Join(c.Tools, ","))
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q; see --help", fs.Arg(0))
	}
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	if c.Transport != "stdio" && c.Transport != "http" {
		errs = append(errs, fmt.Errorf("--transport must be stdio or http, got %q", c.Transport))
	}
	if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		errs = append(errs, fmt.Errorf("BETTERPROMPT_BASE_URL must be an http(s) URL, got %q", c.BaseURL))
	}
	if !strings.HasPrefix(c.BetterWaifuBaseURL, "http://") && !strings.HasPrefix(c.BetterWaifuBaseURL, "https://") {
		errs = append(errs, fmt.Errorf("BETTERWAIFU_BASE_URL must be an http(s) URL, got %q", c.BetterWaifuBaseURL))
	}
	if c.BetterWaifuCooldown <= 0 {
		errs = append(errs, errors.New("--betterwaifu-cooldown must be more than 0 (the API allows one generation per 60 s)"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat))
	}
	if c.WaitDefault <= 0 || c.WaitMax <= 0 || c.WaitDefault > c.WaitMax {
		errs = append(errs, errors.New("--wait-default and --wait-max must be more than 0, and --wait-default at most --wait-max"))
	}
	if c.MaxWaitsPerKey <= 0 || c.MaxBodyBytes <= 0 || c.MaxSessions <= 0 {
		errs = append(errs, errors.New("--max-waits-per-key, --max-body-bytes and --max-sessions must be more than 0"))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("--shutdown-grace must be more than 0"))
	}
	if c.SessionIdleTTL <= 0 {
		// 0 does not mean "never": sessions kept for ever are the unbounded
		// memory this setting exists to prevent.
		errs = append(errs, errors.New("--session-idle-ttl must be more than 0 (sessions are not kept for ever; for long-idle clients use a long duration such as 24h)"))
	}
	if u := c.StateURL.Reveal(); u != "" && !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") && !strings.HasPrefix(u, "unix://") {
		errs = append(errs, errors.New("--state-url must be a redis://, rediss:// or unix:// URL"))
	}
	if _, err := betterprompt.ParsePins(c.Prompts); err != nil {
		errs = append(errs, fmt.Errorf("--prompts: %w", err))
	}
	if c.ConfirmAbove < 0 {
		errs = append(errs, errors.New("--confirm-above must be 0 (never ask) or more"))
	}
	if c.BudgetCredits < 0 || c.BudgetWindow <= 0 {
		errs = append(errs, errors.New("--budget-credits must be 0 (no budget) or more, and --budget-window more than 0"))
	}
	if c.SandboxTimeScale <= 0 {
		errs = append(errs, errors.New("--sandbox-time-scale must be more than 0"))
	}
	if c.ReplayDir != "" && (c.Sandbox || c.RecordDir != "") {
		errs = append(errs, errors.New("--replay answers from recordings: it goes with neither --sandbox nor --record"))
	}
	if c.ReplaySpeed < 0 {
		errs = append(errs, errors.New("--replay-speed must be 0 (at once) or more"))
	}
	return errors.Join(errs...)
}

// printUsage lists every setting with its flag, environment variable and
// default, from the same tags that define them.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `bpmcp: an MCP server for BetterPrompt: search published prompts, read their inputs, run them
and get their text, image and video outputs.

Usage:
  bpmcp [flags]                    serve MCP over stdio (what desktop hosts launch)
  bpmcp --transport http           serve Streamable HTTP at http://127.0.0.1:8080/mcp
  bpmcp --sandbox                  try it with a simulated API and sample prompts

Settings (a flag wins over its environment variable):
`)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FLAG\tENVIRONMENT\tDEFAULT\tMEANING")
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		f := t.Field(i)
		flagName := "-"
		if n := f.Tag.Get("flag"); n != "" {
			flagName = "--" + n
		}
		envName := f.Tag.Get("env")
		if envName == "" {
			envName = "-"
		}
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", flagName, envName, def, f.Tag.Get("help"))
	}
	fmt.Fprintln(tw, "  --help\t-\t-\tshow this help")
	_ = tw.Flush()
}

// fieldValue adapts a config field to flag.Value.
type fieldValue struct{ v reflect.Value }

func (f *fieldValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	switch f.v.Kind() {
	case reflect.Slice:
		parts := make([]string, f.v.Len())
		for i := range parts {
			parts[i] = f.v.Index(i).String()
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(f.v.Interface())
	}
}

func (f *fieldValue) Set(s string) error {
	switch f.v.Interface().(type) {
	case string, secret.String:
		f.v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.v.SetBool(b)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.v.SetInt(int64(d))
	case int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		f.v.SetInt(int64(n))
	case int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.v.SetInt(n)
	case float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.v.SetFloat(x)
	case []string:
		f.v.Set(reflect.ValueOf(splitList(s)))
	default:
		return fmt.Errorf("unsupported setting type %s", f.v.Type())
	}
	return nil
}

// splitList splits a comma-separated setting, dropping spaces and empty items.
func splitList(s string) []string {
	var list []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			list = append(list, p)
		}
	}
	return list
}

// IsBoolFlag lets boolean settings be given as --sandbox without a value.
func (f *fieldValue) IsBoolFlag() bool { return f.v.Kind() == reflect.Bool }
