package tools

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// Progress sends notifications/progress for a call, when the caller asked
// for them (a progress token). Progress is the elapsed time in seconds,
// which only grows. The result, not the last notification, signals
// completion: mcp-go may deliver a notification after the result. A nil
// *Progress sends nothing.
type Progress struct {
	token  any
	srv    *server.MCPServer
	start  time.Time
	logger *slog.Logger

	mu      sync.Mutex
	last    float64
	message string
}

// NewProgress returns the progress reporter of the call in ctx. logger
// (which may be nil) receives notifications that could not be sent.
func NewProgress(ctx context.Context, logger *slog.Logger) *Progress {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Progress{token: progressToken(ctx), srv: server.ServerFromContext(ctx), start: time.Now(), logger: logger}
}

// LastMessage is the message last sent, to repeat while nothing changes.
func (p *Progress) LastMessage() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.message
}

// Send reports what is happening, with the time elapsed since the call began.
func (p *Progress) Send(ctx context.Context, what string) {
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
	// No total: how long a job takes is unknown, and a total would show a
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
