package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// profileServer profiles the server in process, built as main.go builds it:
// the heap it keeps after start-up, and the CPU of get_credits calls over an
// in-memory stdio transport. Server goroutines carry the pprof label
// bpmcp=server (goroutines inherit labels), so the CPU profile can be cut
// down to the server's own work with -tagfocus, leaving out the fake and
// the client that share the process.
func profileServer(dir string, up *upstream, cat []fakeapi.Prompt) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var report strings.Builder
	newDeps := func() *betterprompt.Toolset {
		return &betterprompt.Toolset{
			Client: bpapi.New(bpapi.Options{BaseURL: up.baseURL, APIKey: benchKey, UserAgent: "bpmcp/bench", RateLimit: -1,
				Logger: slog.New(slog.DiscardHandler)}),
			Wait:   betterprompt.DefaultWaitConfig(),
			Logger: slog.New(slog.DiscardHandler),
		}
	}

	// Heap kept by building the server: every allocation is sampled from
	// here on, and the profile is cut down to the stacks under
	// mcpserver.New, so what the rest of the process holds does not count.
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	srv := mcpserver.New("bench", []tools.Toolset{newDeps()})
	runtime.GC()
	heapPath := filepath.Join(dir, "heap-startup.pprof")
	if err := writeProfile(heapPath, func(w io.Writer) error { return pprof.Lookup("heap").WriteTo(w, 0) }); err != nil {
		return "", err
	}
	runtime.MemProfileRate = old
	runtime.KeepAlive(srv)
	top, err := pprofTop("-sample_index=inuse_space", "-focus=mcpserver\\.New", "-cum", "-nodecount=12", heapPath)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&report, "**Heap kept by `mcpserver.New`** (the tools, their schemas, the mcp-go server; the `cum` of `mcpserver.New` is the total): "+
		"`go tool pprof -top -cum -sample_index=inuse_space -focus='mcpserver\\.New' %s`, MemProfileRate 1:\n\n```\n%s```\n\n",
		filepath.Base(heapPath), top)

	// CPU of get_credits over stdio, in process.
	const calls = 20000
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go pprof.Do(ctx, pprof.Labels("bpmcp", "server"), func(ctx context.Context) {
		defer close(served)
		s := mcpserver.New("bench", []tools.Toolset{newDeps()})
		_ = mcpserver.ServeStdio(ctx, s, inR, outW, io.Discard, mcpserver.StdioOptions{})
	})
	cl := &stdioServer{in: inW, out: bufio.NewReaderSize(outR, 1<<20), stderr: &syncbuf.Buffer{}}
	stop := func() {
		cancel()
		_ = inW.Close()
		_ = outR.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
		}
	}
	defer stop()
	if _, _, err := cl.call("initialize", initializeParams); err != nil {
		return "", err
	}
	if err := cl.notify("notifications/initialized"); err != nil {
		return "", err
	}
	for range 500 {
		if err := cl.callTool("get_credits", "{}"); err != nil {
			return "", err
		}
	}
	cpuPath := filepath.Join(dir, "cpu-stdio-get_credits.pprof")
	f, err := os.Create(cpuPath)
	if err != nil {
		return "", err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return "", err
	}
	t0 := time.Now()
	for range calls {
		if err := cl.callTool("get_credits", "{}"); err != nil {
			pprof.StopCPUProfile()
			f.Close()
			return "", err
		}
	}
	took := time.Since(t0)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return "", err
	}
	top, err = pprofTop("-tagfocus=bpmcp=server", "-nodecount=25", cpuPath)
	if err != nil {
		return "", err
	}
	cum, err := pprofTop("-tagfocus=bpmcp=server", "-cum", "-nodecount=40", cpuPath)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&report, "**CPU of `get_credits` over stdio, in process** (%d calls in %s, %.0f µs per call end to end; the server's goroutines are labelled, "+
		"the fake and the client are not): `go tool pprof -top -tagfocus=bpmcp=server %s`:\n\n```\n%s```\n\nThe same by cumulative time (`-cum`):\n\n```\n%s```\n\n",
		calls, took.Round(time.Millisecond), float64(took.Microseconds())/calls, filepath.Base(cpuPath), top, cum)
	return report.String(), nil
}

func writeProfile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop runs go tool pprof -top and keeps its table (from the "flat"
// header on), plus the summary lines above it.
func pprofTop(args ...string) (string, error) {
	cmd := exec.Command("go", append([]string{"tool", "pprof", "-top"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, tail(string(out), 500))
	}
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.TrimLeft(b.String(), "\n"), nil
}
