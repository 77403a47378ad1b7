package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/tools"
)

// StdioOptions configures the stdio transport.
type StdioOptions struct {
	// Toolsets are the server's toolsets. When ctx ends, before anything
	// stops, each is told to begin its shutdown: calls still waiting for
	// runs answer at once with what they know (the run id, or a handle for
	// get_run).
	Toolsets []tools.Toolset
	// ShutdownGrace is how long the calls already received may take to be
	// answered once ctx ends; default 5 s.
	ShutdownGrace time.Duration
	// EOFGrace is how long the calls already received may take to be
	// answered once the input closes (`printf … | bpmcp`); default 60 s,
	// enough for a run_prompt call's default wait. Past it, calls still
	// waiting answer with what they know, within ShutdownGrace.
	EOFGrace time.Duration
}

func (o StdioOptions) withDefaults() StdioOptions {
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 5 * time.Second
	}
	if o.EOFGrace <= 0 {
		o.EOFGrace = time.Minute
	}
	return o
}

// ServeStdio serves MCP over stdin and stdout until ctx ends or the input
// closes. Nothing else may write to out.
//
// Neither ending cancels the calls already received: the server answers
// them first, within a grace period, so that a host (or a shell pipe) gets
// every answer, and a call waiting for a run hands over its run id.
func ServeStdio(ctx context.Context, s *server.MCPServer, in io.Reader, out io.Writer, stderr io.Writer, opts StdioOptions) error {
	opts = opts.withDefaults()
	ss := server.NewStdioServer(s)
	// Tool calls run on a worker pool; size it for many concurrent runs,
	// since each run_prompt call occupies a worker while it waits.
	server.WithWorkerPoolSize(100)(ss) // mcp-go's maximum; above the default wait limit per key (64)
	server.WithQueueSize(1000)(ss)
	ss.SetErrorLogger(log.New(stderr, "mcp: ", 0))

	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	calls := &pendingCalls{empty: make(chan struct{})}
	close(calls.empty)
	// drain makes the calls still waiting for runs answer with what they
	// know, and stops mcp-go once every call received is answered or the
	// grace period has passed.
	drain := func() {
		beginShutdown(opts.Toolsets, 0)
		calls.waitEmpty(serveCtx, opts.ShutdownGrace)
		stopServing()
	}
	atEOF := func() {
		// No more requests can come; those received may take EOFGrace.
		calls.waitEmpty(serveCtx, opts.EOFGrace)
		drain()
	}
	reader := &trackingReader{r: in, calls: calls, atEOF: atEOF}
	writer := &trackingWriter{w: out, calls: calls}
	go func() {
		select {
		case <-ctx.Done():
			drain()
		case <-serveCtx.Done():
		}
	}()
	err := ss.Listen(serveCtx, reader, writer)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.Canceled):
		return nil // stopped by drain, after the input ended
	}
	return err
}

// pendingCalls tracks the JSON-RPC requests read from the client that have
// not been answered yet.
type pendingCalls struct {
	mu    sync.Mutex
	ids   map[string]bool
	empty chan struct{} // closed while no request is pending
}

func (p *pendingCalls) add(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids = make(map[string]bool)
	}
	if len(p.ids) == 0 {
		p.empty = make(chan struct{})
	}
	p.ids[id] = true
}

func (p *pendingCalls) done(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ids[id] {
		return
	}
	delete(p.ids, id)
	if len(p.ids) == 0 {
		close(p.empty)
	}
}

// waitEmpty waits until every request read has been answered, grace has
// passed, or ctx ends.
func (p *pendingCalls) waitEmpty(ctx context.Context, grace time.Duration) {
	p.mu.Lock()
	empty := p.empty
	p.mu.Unlock()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-empty:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// message is what the stdio wrappers read of one JSON-RPC message.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	Params struct {
		RequestID json.RawMessage `json:"requestId"`
	} `json:"params"`
}

// lines splits a stream into lines, keeping a partial line for later.
type lines struct {
	partial  []byte
	skipping bool // the current line is over maxTrackedLine: not read
}

// maxTrackedLine bounds the line kept to find a message's id; mcp-go
// refuses larger arguments anyway.
const maxTrackedLine = 48 << 20

func (l *lines) feed(p []byte, each func(line []byte)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if l.skipping = l.skipping || len(l.partial)+len(p) > maxTrackedLine; l.skipping {
				l.partial = l.partial[:0]
			} else {
				l.partial = append(l.partial, p...)
			}
			return
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
			l.partial = l.partial[:0]
		}
		if !l.skipping {
			each(line)
		}
		l.skipping = false
		p = p[i+1:]
	}
}

func idKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	return string(raw)
}

// trackingReader notes the requests the client sends, and holds back the
// end of the input until they are answered (see ServeStdio).
type trackingReader struct {
	r      io.Reader
	calls  *pendingCalls
	atEOF  func()
	lines  lines
	eofMu  sync.Once
	closed bool
}

func (t *trackingReader) Read(p []byte) (int, error) {
	if t.closed {
		return 0, io.EOF
	}
	n, err := t.r.Read(p)
	t.lines.feed(p[:n], func(line []byte) {
		var m message
		if json.Unmarshal(line, &m) != nil {
			return
		}
		switch {
		case m.Method == "notifications/cancelled":
			t.calls.done(idKey(m.Params.RequestID)) // a cancelled request may get no answer
		case m.Method != "" && idKey(m.ID) != "":
			t.calls.add(idKey(m.ID))
		}
	})
	if err == io.EOF {
		// The input closed: answer what was received, then end.
		t.eofMu.Do(t.atEOF)
		t.closed = true
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

// trackingWriter notes the answers the server writes.
type trackingWriter struct {
	w     io.Writer
	calls *pendingCalls
	mu    sync.Mutex
	lines lines
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines.feed(p, func(line []byte) {
		var m message
		if json.Unmarshal(line, &m) != nil || m.Method != "" {
			return
		}
		if id := idKey(m.ID); id != "" && (m.Result != nil || m.Error != nil) {
			t.calls.done(id)
		}
	})
	return n, err
}
