package mcpserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/internal/calltrace"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/tools"
)

// HTTPOptions configures the Streamable HTTP transport.
type HTTPOptions struct {
	Addr string // listen address; loopback by default
	// Ready, when set, says whether the server can serve calls that spend
	// (a shared store is reachable); /readyz answers 503 when it fails.
	Ready func(context.Context) error
	// Stateless serves without Mcp-Session-Id (every request stands alone),
	// which suits load-balanced replicas.
	Stateless bool
	// AllowedOrigins lists the browser origins allowed to call the server
	// (e.g. "http://localhost:6274"). A request with any other Origin gets
	// 403; requests without Origin (every non-browser client) pass.
	AllowedOrigins []string
	// AuthToken, when set, is the bearer token callers must send in
	// Authorization. It authenticates callers of this server only and is
	// never sent upstream.
	AuthToken secret.String
	// PerRequestKeys makes every request bring its own upstream key, in the
	// header each toolset names (multi-tenant mode).
	PerRequestKeys bool
	// EpisodeKey, when set, gives the upstream key of an episode (a request's
	// X-Bpmcp-Episode header) for a toolset's key header, or "": each
	// episode then works on an account of its own (the sandbox's isolated
	// episodes). Keys a caller sends (PerRequestKeys) come first.
	EpisodeKey func(header, episode string) secret.String
	// Toolsets are the server's toolsets: their key headers are read in
	// multi-tenant mode and allowed in CORS preflights, and on shutdown each
	// is told to make its waiting calls answer before their streams close.
	Toolsets []tools.Toolset
	// SessionIdleTTL ends a session (stateful mode) that has had no request
	// for this long: its state is freed and its id then gets 404, upon which
	// the spec has clients start a new session. Default 30 min.
	SessionIdleTTL time.Duration
	// MaxSessions caps open sessions (stateful mode): past it, initialize
	// gets 503 and open sessions carry on. Default 10,000.
	MaxSessions int
	// MaxStreams caps open GET event streams, all sessions together (a
	// session may hold one): past it, a GET gets 429. Default 1,000.
	MaxStreams        int
	MaxBodyBytes      int64         // request body limit; default 16 MiB
	ReadHeaderTimeout time.Duration // default 10 s: a client that sends headers slowly is cut off
	ReadTimeout       time.Duration // default 60 s
	WriteTimeout      time.Duration // default 11 min (longer than the longest wait)
	IdleTimeout       time.Duration // default 2 min
	ShutdownGrace     time.Duration // how long in-flight requests may finish on shutdown; default 30 s
	Logger            *slog.Logger
}

// DefaultHTTPOptions returns the defaults that HTTPOptions' zero fields
// take; the command line's defaults are checked against them.
func DefaultHTTPOptions() HTTPOptions {
	return HTTPOptions{
		Addr:              "127.0.0.1:8080",
		SessionIdleTTL:    30 * time.Minute,
		MaxSessions:       10000,
		MaxStreams:        1000,
		MaxBodyBytes:      16 << 20,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      11 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ShutdownGrace:     30 * time.Second,
	}
}

// setDefault sets *v to def when it is zero or negative.
func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (o HTTPOptions) withDefaults() HTTPOptions {
	def := DefaultHTTPOptions()
	if o.Addr == "" {
		o.Addr = def.Addr
	}
	setDefault(&o.SessionIdleTTL, def.SessionIdleTTL)
	setDefault(&o.MaxSessions, def.MaxSessions)
	setDefault(&o.MaxStreams, def.MaxStreams)
	setDefault(&o.MaxBodyBytes, def.MaxBodyBytes)
	setDefault(&o.ReadHeaderTimeout, def.ReadHeaderTimeout)
	setDefault(&o.ReadTimeout, def.ReadTimeout)
	setDefault(&o.WriteTimeout, def.WriteTimeout)
	setDefault(&o.IdleTimeout, def.IdleTimeout)
	setDefault(&o.ShutdownGrace, def.ShutdownGrace)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// NewHTTPHandler returns the HTTP handler: MCP at /mcp and a health check at
// /healthz, behind the security middleware. Call stop when the handler is no
// longer served: it ends the open sessions and the idle-session sweeper.
func NewHTTPHandler(s *server.MCPServer, opts HTTPOptions) (h http.Handler, stop func(context.Context) error) {
	t := newHTTPTransport(s, opts)
	return t.handler, t.streamable.Shutdown
}

// httpTransport is the HTTP handler and the parts of it that outlive a
// request.
type httpTransport struct {
	handler    http.Handler
	streamable *server.StreamableHTTPServer
	sessions   *sessionManager // nil in stateless mode
	posts      inflight        // POST requests being answered
	draining   atomic.Bool     // the shutdown has begun
}

// EpisodeHeader names the episode a call belongs to (an evaluation
// harness's run of one task); the trace records it.
const EpisodeHeader = "X-Bpmcp-Episode"

// episodeOf returns r's episode: at most 128 printable ASCII characters,
// else none.
func episodeOf(r *http.Request) string {
	id := strings.TrimSpace(r.Header.Get(EpisodeHeader))
	if len(id) > 128 {
		return ""
	}
	for _, c := range []byte(id) {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return id
}

func newHTTPTransport(s *server.MCPServer, opts HTTPOptions) *httpTransport {
	opts = opts.withDefaults()
	t := &httpTransport{}
	headers := keyHeaders(opts.Toolsets)
	streamOpts := []server.StreamableHTTPOption{
		server.WithStateLess(opts.Stateless),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			id := episodeOf(r)
			if id != "" {
				ctx = calltrace.WithEpisode(ctx, id)
			}
			for _, header := range headers {
				// A caller's own key counts only in multi-tenant mode;
				// otherwise the server's key serves every call and the
				// header is ignored.
				if key := strings.TrimSpace(r.Header.Get(header)); key != "" && opts.PerRequestKeys {
					ctx = tools.WithCallerKey(ctx, header, secret.String(key))
				} else if id != "" && opts.EpisodeKey != nil {
					if key := opts.EpisodeKey(header, id); key != "" {
						ctx = tools.WithCallerKey(ctx, header, key)
					}
				}
			}
			return ctx
		}),
		server.WithStreamableHTTPLogger(opts.Logger),
	}
	// Refused requests are told to retry once the sweeper has had a chance
	// to end idle sessions: it runs every TTL/2 (at least every second).
	retryAfter := min(max(opts.SessionIdleTTL/2, time.Second), time.Minute)
	if !opts.Stateless {
		// Stateless mode keeps no sessions, so it needs neither the id
		// manager nor the sweeper (which would only track the ids clients
		// make up).
		t.sessions = newSessionManager(opts.SessionIdleTTL, opts.MaxSessions, opts.Logger)
		streamOpts = append(streamOpts,
			server.WithSessionIdManager(t.sessions),
			server.WithSessionIdleTTL(opts.SessionIdleTTL))
	}
	t.streamable = server.NewStreamableHTTPServer(s, streamOpts...)

	var mcpHandler http.Handler = t.streamable
	mcpHandler = t.posts.track(mcpHandler)
	mcpHandler = limitStreams(opts.MaxStreams, retryAfter, mcpHandler)
	if t.sessions != nil {
		mcpHandler = guard(t.sessions, retryAfter, mcpHandler)
	}
	mcpHandler = limitBody(opts.MaxBodyBytes, mcpHandler)
	mcpHandler = noProxyBuffering(mcpHandler)
	if opts.EpisodeKey != nil {
		mcpHandler = refuseUnusableEpisode(mcpHandler)
	}
	if opts.AuthToken != "" {
		mcpHandler = requireBearer(opts.AuthToken, mcpHandler)
	}
	origins := newOriginSet(opts.AllowedOrigins)
	mcpHandler = allowCORS(origins, headers, mcpHandler)
	mcpHandler = checkOrigin(origins, mcpHandler)

	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	// /readyz says whether to send this replica calls: not while it drains,
	// nor while a guard it needs (a shared store) cannot be checked.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case t.draining.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"draining"}`)
		case opts.Ready != nil:
			if err := opts.Ready(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				b, _ := json.Marshal(map[string]string{"status": "not ready", "reason": err.Error()})
				_, _ = w.Write(b)
				return
			}
			fallthrough
		default:
			_, _ = io.WriteString(w, `{"status":"ready"}`)
		}
	})
	t.handler = mux
	return t
}

// ServeHTTP listens on opts.Addr and serves until ctx ends, then drains:
// in-flight requests get ShutdownGrace to finish.
func ServeHTTP(ctx context.Context, s *server.MCPServer, opts HTTPOptions, ready func(addr net.Addr)) error {
	opts = opts.withDefaults()
	if opts.PerRequestKeys && len(keyHeaders(opts.Toolsets)) == 0 {
		// Every call would be told to bring a key it has no header for.
		return errors.New("per-request keys need the toolsets whose key headers to read (HTTPOptions.Toolsets)")
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	opts.AllowedOrigins = slices.Concat(opts.AllowedOrigins, ownOrigins(ln.Addr()))
	t := newHTTPTransport(s, opts)
	// Handlers run on a context of their own, cancelled once the grace
	// period is over: a call still waiting then stops, logging its run id.
	base, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	srv := &http.Server{
		Handler:           t.handler,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	t.draining.Store(true)
	// Calls still waiting for runs answer a little before the grace ends,
	// so that each gets its answer (the run id, or a handle for get_run)
	// before its stream closes.
	beginShutdown(opts.Toolsets, answerWithin(opts.ShutdownGrace))
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownGrace)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(drain) }() // no new connections; waits for the open ones
	// The calls in flight are answered first; only then do the sessions,
	// and the GET streams that http.Server.Shutdown alone would wait for
	// forever, close. Closing a session earlier would end a call's stream
	// without its answer.
	t.posts.waitIdle(drain)
	_ = t.streamable.Shutdown(drain)
	if err := <-shutdown; err != nil {
		opts.Logger.Warn("calls still running after the shutdown grace period; stopping them", "grace", opts.ShutdownGrace)
		cancelHandlers()
		time.Sleep(100 * time.Millisecond) // let the cancelled handlers log their run ids
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// inflight counts the requests being answered.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0; nil means closed
}

// track counts the POST requests that next answers.
func (f *inflight) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		if f.n == 0 {
			f.idle = make(chan struct{})
		}
		f.n++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			if f.n--; f.n == 0 {
				close(f.idle)
			}
			f.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

// waitIdle waits until no request is being answered, or ctx ends.
func (f *inflight) waitIdle(ctx context.Context) {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// answerWithin is how long calls waiting for runs may go on once the
// shutdown starts: long enough to finish a run that is about to end, short
// enough that the answer is written before the grace period is over.
func answerWithin(grace time.Duration) time.Duration {
	return max(grace-2*time.Second, grace/2)
}

// originSet is the browser origins allowed to call the server, compared
// without regard to case or a trailing slash.
type originSet map[string]bool

func newOriginSet(allowed []string) originSet {
	set := make(originSet, len(allowed))
	for _, o := range allowed {
		set[normalizeOrigin(o)] = true
	}
	return set
}

func (s originSet) allows(origin string) bool { return s[normalizeOrigin(origin)] }

// checkOrigin answers 403 to a request whose Origin header is present and
// not allowed, as the MCP transport spec requires (mcp-go checks only Host).
// This stops a web page in the user's browser from driving a local server.
func checkOrigin(allowed originSet, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !allowed.allows(origin) {
			writeJSONError(w, http.StatusForbidden, "Origin not allowed: "+truncate(origin, 100)+"; add it to --allowed-origins to allow it")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// keyHeaders lists the headers in which callers bring their own keys.
func keyHeaders(sets []tools.Toolset) []string {
	var headers []string
	for _, ts := range sets {
		if h := ts.KeyHeader(); h != "" {
			headers = append(headers, h)
		}
	}
	return headers
}

// What a page from an allowed origin may send and read (CORS).
const (
	corsAllowMethods = "GET, POST, DELETE, OPTIONS"
	corsAllowHeaders = "Content-Type, Accept, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name"
	// Mcp-Session-Id must be readable for a page to continue its session;
	// the others explain a refusal.
	corsExposeHeaders = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Retry-After"
	corsMaxAge        = "7200" // seconds; Chromium caps it there
)

// allowCORS lets a page from an allowed origin (the MCP Inspector's, say)
// call the server from the browser. It answers the preflight itself, before
// the bearer check (a browser never sends Authorization on a preflight) and
// the body limit, and it marks every response, including the 401, 413, 429
// and 503 of the middleware after it, so the page can read why it was
// refused. A disallowed origin has been answered 403 by checkOrigin before.
//
// mcp-go's own CORS (server.WithStreamableHTTPCORS) is not used: it runs
// inside mcp-go's handler, after our middleware, so our refusals would lack
// the headers and its preflight would need the bearer token; and it compares
// origins exactly, where checkOrigin ignores case and a trailing slash.
func allowCORS(allowed originSet, keyHeaders []string, next http.Handler) http.Handler {
	allowHeaders := strings.Join(append([]string{corsAllowHeaders, EpisodeHeader}, keyHeaders...), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !allowed.allows(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", allowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}

// ownOrigins are the origins of the server's own loopback address (a page
// it served, were it to serve one). They are allowed, as the MCP conformance
// suite expects; they name this port on this machine only.
func ownOrigins(addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return nil
	}
	port := strconv.Itoa(tcp.Port)
	var out []string
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]"} {
		out = append(out, "http://"+host+":"+port, "https://"+host+":"+port)
	}
	return out
}

func normalizeOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

// requireBearer lets through only callers that present the configured token.
// The comparison takes the same time whatever the token, and the token never
// goes further: the upstream key comes from elsewhere.
func requireBearer(token secret.String, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token.Reveal()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		ok := len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") // the scheme is case-insensitive (RFC 9110)
		var got string
		if ok {
			got = auth[7:]
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bpmcp", error="invalid_token"`)
			writeJSONError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies, so one request cannot exhaust memory.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// refuseUnusableEpisode refuses a request whose X-Bpmcp-Episode cannot
// name an episode (see episodeOf) when episodes have accounts of their own
// (HTTPOptions.EpisodeKey): treated as no episode, it would work on the
// shared account, among every other caller's credits and runs.
func refuseUnusableEpisode(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values(EpisodeHeader)) > 0 && episodeOf(r) == "" {
			writeJSONError(w, http.StatusBadRequest, EpisodeHeader+" must be 1 to 128 printable ASCII characters")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noProxyBuffering asks reverse proxies not to buffer event streams, so
// progress notifications arrive while a run is waited for.
func noProxyBuffering(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Buffering", "no")
		next.ServeHTTP(w, r)
	})
}

// writeJSONError writes a JSON-RPC error without an id, which the transport
// spec allows for rejected HTTP requests: Invalid Request (-32600) for a
// request refused for what it is, and a server error (-32000) when the
// server is out of capacity (5xx, 429).
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	code := -32600
	if status >= 500 || status == http.StatusTooManyRequests {
		code = -32000
	}
	text, _ := json.Marshal(msg) // %q would escape as Go does, not always as JSON does
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","error":{"code":%d,"message":%s}}`, code, text)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
