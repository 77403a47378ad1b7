package e2e

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// process is the binary started by a test, with its stderr collected.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
	url    chan string // the HTTP endpoint, once logged
	exited chan struct{}
	stdin  io.WriteCloser
	stdout io.ReadCloser
}

// stdio is a client transport on the process's stdin and stdout.
func (p *process) stdio() mcp.Transport { return &mcp.IOTransport{Reader: p.stdout, Writer: p.stdin} }

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLog waits until the logs match re, and returns the first match.
func (p *process) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.logs()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never logged %s:\n%s", re, p.logs())
		}
	}
}

// start runs the binary with args. Its stdin and stdout are pipes that
// close when it exits, so that a stdio client sees it die.
func start(t *testing.T, args []string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), url: make(chan string, 1), exited: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		re := regexp.MustCompile(`http://127\.0\.0\.1:\d+/mcp`)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if u := re.FindString(sc.Text()); u != "" && strings.Contains(sc.Text(), "serving MCP") {
				select {
				case p.url <- u:
				default:
				}
			}
		}
		_ = p.cmd.Wait() // after stderr is read to its end, as Wait requires
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("server stderr:\n%s", p.logs())
		}
	})
	return p
}

var (
	submitted = regexp.MustCompile(`"msg":"submitting a run","handle":"([0-9a-f-]{36})"`)
	runStart  = regexp.MustCompile(`"msg":"run started[^"]*","handle":"([0-9a-f-]{36})"[^\n]*"run_id":"([0-9a-f-]{36})"`)
)

var researchArgs = map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 55,
	"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "Is fusion near?"}}}

// SIGTERM while a call waits for a run that outlasts the grace period: the
// call is answered with the id to follow the run, before its stream
// closes, and the run id reaches the log before the process exits.
func TestSIGTERMAnswersTheWaitingCall(t *testing.T) {
	for _, transport := range []string{"http", "stdio"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			var p *process
			var tr mcp.Transport
			switch transport {
			case "http":
				p = start(t, append([]string{"--transport", "http", "--addr", "127.0.0.1:0", "--shutdown-grace", "3s"}, sandboxArgs...))
				select {
				case u := <-p.url:
					tr = &mcp.StreamableClientTransport{Endpoint: u}
				case <-time.After(20 * time.Second):
					t.Fatal("no HTTP address")
				}
			case "stdio":
				p = start(t, sandboxArgs)
				tr = p.stdio()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cs, err := newClient(&progressLog{}).Connect(ctx, tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			answered := make(chan *mcp.CallToolResult, 1)
			go func() {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_prompt", Arguments: researchArgs})
				if err != nil {
					t.Errorf("the waiting call got no answer: %v", err)
				}
				answered <- res
			}()
			handle := p.waitLog(t, submitted)[1]
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			res := <-answered
			if res == nil || res.IsError || !strings.Contains(textOf(res), "get_run") {
				t.Fatalf("the waiting call was not answered with its run id: %+v", res)
			}
			if id, _ := res.StructuredContent.(map[string]any)["run_id"].(string); id == "" {
				t.Errorf("no run_id in %v", res.StructuredContent)
			}
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("the server did not exit after SIGTERM")
			}
			if m := runStart.FindStringSubmatch(p.logs()); m == nil || m[1] != handle {
				t.Errorf("the run id of handle %s never reached the log", handle)
			}
		})
	}
}

// SIGKILL while BetterPrompt holds the request that starts a run: nothing
// can be done then, so the handle must already be both in the log (written
// before the request is sent) and with the agent (in the first progress
// notification).
func TestSIGKILLLeavesTheHandleOnRecord(t *testing.T) {
	p := start(t, sandboxArgs)
	progress := &progressLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := newClient(progress).Connect(ctx, p.stdio(), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		params := &mcp.CallToolParams{Name: "run_prompt", Arguments: researchArgs}
		params.SetProgressToken("kill")
		_, _ = cs.CallTool(ctx, params) // never answered: the process dies
	}()
	handle := p.waitLog(t, submitted)[1]
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		progress.mu.Lock()
		n := len(progress.msgs)
		progress.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	progress.mu.Lock()
	defer progress.mu.Unlock()
	if len(progress.msgs) == 0 || !strings.Contains(progress.msgs[0], "run_id="+handle) {
		t.Errorf("the agent never got handle %s: progress %q", handle, progress.msgs)
	}
}
