package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// sessionManager is the session id manager of the stateful HTTP transport
// (mcp-go's server.SessionIdManager). It remembers the ids it issued, so an
// unknown, expired or ended id is invalid and mcp-go answers 404, it
// bounds how many sessions are open at once, and it lets each hold one GET
// stream.
//
// Its memory is bounded: it holds only open sessions, at most max of them
// (plus initialize requests racing the check), and keeps no record of ended
// ones. None is needed, because ids are random and never issued twice, so a
// forgotten id stays unknown.
//
// Sessions end on DELETE, and when idle: mcp-go's sweeper
// (server.WithSessionIdleTTL, same TTL) clears its own state of a session
// idle for ttl and calls Terminate here. The manager also judges idleness
// itself, so an idle id gets 404 from the moment it is past its TTL rather
// than at the sweeper's next tick, and an id mcp-go somehow never swept still
// ends.
type sessionManager struct {
	ttl    time.Duration
	max    int              // open sessions at most
	now    func() time.Time // time.Now; replaced in tests
	logger *slog.Logger

	mu        sync.Mutex
	live      map[string]session
	highWater int       // the largest len(live) since live was last rebuilt
	full      bool      // the last initialize was refused; logged once per episode
	lastSweep time.Time // when expired sessions were last looked for at the cap
}

// session is what the manager knows of an open session.
type session struct {
	seen   time.Time // the last request, or the end of its last GET stream
	stream *stream   // its open GET stream, if any; an open stream is not idle
}

// stream is an open GET stream; cancel ends it.
type stream struct{ cancel context.CancelFunc }

var errUnknownSession = errors.New("unknown or ended session")

var _ server.SessionIdManager = (*sessionManager)(nil)

func newSessionManager(ttl time.Duration, maxSessions int, logger *slog.Logger) *sessionManager {
	return &sessionManager{ttl: ttl, max: maxSessions, now: time.Now, logger: logger, live: make(map[string]session)}
}

// Generate issues the id of a new session; mcp-go calls it for initialize.
// Admission (the session cap) is checked before, by guard.
func (m *sessionManager) Generate() string {
	id := "mcp-session-" + rand.Text()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[id] = session{seen: m.now()}
	m.highWater = max(m.highWater, len(m.live))
	m.logger.Debug("HTTP session started", "session", id, "open_sessions", len(m.live))
	return id
}

// Validate reports an unknown, ended or idle-expired id as an error, which
// mcp-go answers with 404; a valid id counts as activity.
func (m *sessionManager) Validate(id string) (terminated bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.touchLocked(id) {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session: on DELETE (after guard checked that the id is
// known), when mcp-go's sweeper finds it idle, and on shutdown. Its GET
// stream, if open, is closed. An unknown id is not an error: there is
// nothing left to end.
func (m *sessionManager) Terminate(id string) (notAllowed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endLocked(id)
	return false, nil
}

// known reports whether id is an open session, counting the request as
// activity.
func (m *sessionManager) known(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.touchLocked(id)
}

// admit reports whether a new session may start. At the cap it first looks
// for sessions past their TTL (at most once a second, since the scan costs a
// pass over every session), in case the sweeper has not ended them yet.
func (m *sessionManager) admit() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.live) >= m.max && m.now().Sub(m.lastSweep) >= time.Second {
		m.lastSweep = m.now()
		for id, s := range m.live {
			if m.expired(s) {
				m.endLocked(id)
			}
		}
	}
	ok := len(m.live) < m.max
	if !ok && !m.full {
		m.logger.Warn("too many open HTTP sessions: refusing new ones until some end or expire",
			"max_sessions", m.max, "idle_ttl", m.ttl)
	}
	m.full = !ok
	return ok
}

// atCapacity reports whether a new session would be refused now.
func (m *sessionManager) atCapacity() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live) >= m.max
}

// count is the number of open sessions.
func (m *sessionManager) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live)
}

// openStream records an open GET stream for session id, which cancel ends.
// It returns the HTTP status that refuses the stream (404 for an unknown
// session, 409 when the session has one open already) or 0 and a function
// to call when the stream ends.
func (m *sessionManager) openStream(id string, cancel context.CancelFunc) (status int, closed func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.touchLocked(id) {
		return http.StatusNotFound, nil
	}
	s := m.live[id]
	if s.stream != nil {
		return http.StatusConflict, nil
	}
	st := &stream{cancel: cancel}
	s.stream = st
	m.live[id] = s
	return 0, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		// The session may have ended, or may hold a newer stream.
		if s, ok := m.live[id]; ok && s.stream == st {
			s.stream, s.seen = nil, m.now()
			m.live[id] = s
		}
	}
}

// touchLocked reports whether id is an open session that is not past its
// TTL, and records the activity; an expired id is ended.
func (m *sessionManager) touchLocked(id string) bool {
	s, ok := m.live[id]
	if !ok {
		return false
	}
	if m.expired(s) {
		m.endLocked(id)
		return false
	}
	s.seen = m.now()
	m.live[id] = s
	return true
}

func (m *sessionManager) expired(s session) bool {
	return s.stream == nil && m.now().Sub(s.seen) > m.ttl
}

// endLocked forgets session id and closes its GET stream. Go maps never
// shrink, so once most sessions of a peak have ended the map is rebuilt at
// its current size: memory returns to what the open sessions need.
func (m *sessionManager) endLocked(id string) {
	s, ok := m.live[id]
	if !ok {
		return
	}
	delete(m.live, id)
	if s.stream != nil {
		s.stream.cancel()
	}
	m.logger.Debug("HTTP session ended", "session", id, "open_sessions", len(m.live))
	if m.highWater >= 1024 && len(m.live) <= m.highWater/4 {
		live := make(map[string]session, len(m.live))
		for k, v := range m.live {
			live[k] = v
		}
		m.live, m.highWater = live, len(live)
	}
}

// guard enforces the session rules in front of mcp-go:
//   - POST initialize is refused with 503 when the session cap is reached.
//     Only POSTs without Mcp-Session-Id have their body looked at (an
//     initialize normally carries none), plus, at the cap only, those with
//     one, so that a stale id cannot smuggle a new session past the cap.
//     Ordinary calls below the cap pay one look at the session count.
//   - GET (the standalone event stream) needs a known session id, and a
//     session may have one stream open (409 for a second).
//   - DELETE needs a known session id (404 otherwise; mcp-go would answer
//     200 to any id).
//
// POSTs with an unknown session id are answered 404 by mcp-go itself, which
// asks the manager. Requests in the 2026-07-28 era carry no session and go
// straight to mcp-go, which answers GET and DELETE with 405.
func guard(m *sessionManager, retryAfter time.Duration, next http.Handler) http.Handler {
	retry := strconv.Itoa(int(retryAfter.Round(time.Second) / time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(server.HeaderKeySessionID)
		modern := mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
		switch {
		case r.Method == http.MethodPost && (id == "" || m.atCapacity()):
			method, err := peekMethod(r)
			if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
				writeJSONError(w, http.StatusRequestEntityTooLarge, "request body too large")
				return
			}
			if method == string(mcp.MethodInitialize) && !m.admit() {
				w.Header().Set("Retry-After", retry)
				writeJSONError(w, http.StatusServiceUnavailable, fmt.Sprintf(
					"the server has too many open sessions (%d); retry later", m.max))
				return
			}
		case r.Method == http.MethodGet && !modern:
			if id == "" {
				writeJSONError(w, http.StatusBadRequest, "Mcp-Session-Id header is required: initialize first")
				return
			}
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			status, closed := m.openStream(id, cancel)
			switch status {
			case 0:
				defer closed()
				r = r.WithContext(ctx)
			case http.StatusNotFound:
				writeJSONError(w, status, errSessionGone)
				return
			default:
				writeJSONError(w, status, "this session already has an open GET stream; close it first")
				return
			}
		case r.Method == http.MethodDelete && !modern:
			if id == "" {
				writeJSONError(w, http.StatusBadRequest, "Mcp-Session-Id header is required")
				return
			}
			if !m.known(id) {
				writeJSONError(w, http.StatusNotFound, errSessionGone)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

const errSessionGone = "session not found: it ended, expired or never existed; send initialize without Mcp-Session-Id to start a new one"

// limitStreams caps open GET streams, all sessions together, answering 429
// past the cap. A session works without its GET stream, and a 4xx there is
// what clients shrug off: the official Go SDK (v1.8.0) ignores a 4xx on it
// but ends the whole connection on a 5xx, hence 429 rather than 503.
func limitStreams(maxStreams int, retryAfter time.Duration, next http.Handler) http.Handler {
	var (
		mu   sync.Mutex
		open int
	)
	retry := strconv.Itoa(int(retryAfter.Round(time.Second) / time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		ok := open < maxStreams
		if ok {
			open++
		}
		mu.Unlock()
		if !ok {
			w.Header().Set("Retry-After", retry)
			writeJSONError(w, http.StatusTooManyRequests, fmt.Sprintf(
				"the server has too many open GET streams (%d); the session works without one, or retry later", maxStreams))
			return
		}
		defer func() {
			mu.Lock()
			open--
			mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

// peekMethod returns the JSON-RPC method of a POST body and leaves the body
// whole for the next handler (the bytes read are put back in front of the
// rest). It reads only up to the "method" member, so for the usual body,
// where method comes before params, it reads a few hundred bytes. A body
// that is not a JSON object yields "" and is left for mcp-go to reject; an
// error is returned only when reading failed (as past the body limit).
func peekMethod(r *http.Request) (string, error) {
	var seen bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(r.Body, &seen))
	method, err := topLevelMethod(dec)
	r.Body = readCloser{io.MultiReader(&seen, r.Body), r.Body}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // not our business: mcp-go answers malformed JSON
	}
	return method, err
}

// topLevelMethod reads dec up to the top-level "method" member and returns
// its string value.
func topLevelMethod(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return "", err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		if key == "method" {
			var method string
			err := dec.Decode(&method)
			return method, err
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return "", nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
