package betterwaifu_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/seal"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// REVIEW: TestConfirmGeneration runs only in the 2026-07-28 era. The
// 2025-11-25 era (legacy bridge, which re-invokes the handler with the same
// _meta, so the same CallKey and the deliveries map) is checked here.
func TestR15ConfirmGenerationLegacyEra(t *testing.T) {
	for _, accept := range []bool{true, false} {
		inBubble(t, func(t *testing.T) {
			var asked int
			h := elicitFunc(func(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
				asked++
				return answer(accept).Elicit(ctx, r)
			})
			e := newEnvClientEra(t, "2025-11-25", fakeapi.Options{}, []client.ClientOption{client.WithElicitationHandler(h)},
				func(d *betterwaifu.Toolset) { d.Confirm = &spending.Confirmer{Above: 1, Sealer: seal.New(nil)} })
			res := e.call(t, "betterwaifu_generate", gen("x"))
			posts := e.fake.Count("POST /generate")
			if asked != 1 || accept && (res.IsError || posts != 1) || !accept && (!res.IsError || posts != 0) {
				t.Errorf("accept %v: asked %d, isError %v, %d POSTs: %s", accept, asked, res.IsError, posts, text(res))
			}
		})
	}
}

type elicitFunc func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error)

func (f elicitFunc) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return f(ctx, r)
}

// newEnvClientEra is newEnvClient speaking protocol version era.
func newEnvClientEra(t *testing.T, era string, opts fakeapi.Options, copts []client.ClientOption, tweak ...func(*betterwaifu.Toolset)) *env {
	t.Helper()
	fake, base, hc := fakeapi.NewPipeServer(t, opts)
	d := &betterwaifu.Toolset{
		Client:      bwapi.New(bwapi.Options{BaseURL: base, APIKey: fakeapi.TestKey, HTTPClient: hc}),
		WaitDefault: 45 * time.Second, WaitMax: 10 * time.Minute, Cooldown: 60 * time.Second,
	}
	for _, f := range tweak {
		f(d)
	}
	e := &env{fake: fake, deps: d}
	srv := mcpserver.New("test", []tools.Toolset{d})
	c, err := client.NewInProcessClientWithOptions(srv, copts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = era
	init.Params.ClientInfo = mcp.Implementation{Name: "bw-test", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		if err := d.Drain(context.Background()); err != nil {
			t.Errorf("drain: %v", err)
		}
	})
	e.client = c
	return e
}

// REVIEW (nit, wording): a generation's price is unknown, yet the user is
// told it costs "more than the N credits above which this server asks".
func TestR15UnknownPriceIsNotAboveTheThreshold(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		var msg string
		h := elicitFunc(func(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			msg = r.Params.Message
			return answer(false).Elicit(ctx, r)
		})
		e := newEnvClient(t, fakeapi.Options{}, []client.ClientOption{client.WithElicitationHandler(h)},
			func(d *betterwaifu.Toolset) { d.Confirm = &spending.Confirmer{Above: 30, Sealer: seal.New(nil)} })
		e.call(t, "betterwaifu_generate", gen("x"))
		if strings.Contains(msg, "more than the 30 credits") {
			t.Errorf("asked: %s", msg)
		}
	})
}
