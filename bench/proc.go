package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/bpmcp/bpmcp/internal/syncbuf"
)

// stdioServer is the server binary driven over stdio by a minimal
// hand-written JSON-RPC client: requests are written as single lines and
// responses read as newline-delimited JSON, skipping notifications. The
// client does one small json.Unmarshal per response and nothing else.
type stdioServer struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *syncbuf.Buffer
	nextID int
	buf    []byte
}

// serverEnv is the environment the binary runs with: nothing inherited but
// PATH and HOME, so that no BPMCP_* setting of the shell leaks in.
func serverEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(env, extra...)
}

// startStdio starts bin and returns as soon as the process exists; it does
// not wait for anything.
func startStdio(bin string, args, env []string) (*stdioServer, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &stdioServer{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), stderr: &syncbuf.Buffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// response is what the client reads of a JSON-RPC message.
type response struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
	Result json.RawMessage `json:"result"`
}

// send writes one request (params is raw JSON or "") and returns its id.
func (s *stdioServer) send(method, params string) (int, error) {
	s.nextID++
	id := s.nextID
	s.buf = s.buf[:0]
	s.buf = append(s.buf, `{"jsonrpc":"2.0","id":`...)
	s.buf = strconv.AppendInt(s.buf, int64(id), 10)
	s.buf = append(s.buf, `,"method":"`...)
	s.buf = append(s.buf, method...)
	s.buf = append(s.buf, '"')
	if params != "" {
		s.buf = append(s.buf, `,"params":`...)
		s.buf = append(s.buf, params...)
	}
	s.buf = append(s.buf, "}\n"...)
	_, err := s.in.Write(s.buf)
	return id, err
}

func (s *stdioServer) notify(method string) error {
	_, err := io.WriteString(s.in, `{"jsonrpc":"2.0","method":"`+method+`"}`+"\n")
	return err
}

// read returns the raw line of the response with the given id.
func (s *stdioServer) read(id int) ([]byte, *response, error) {
	want := strconv.Itoa(id)
	for {
		line, err := s.out.ReadBytes('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("reading the response to request %d: %w (stderr: %s)", id, err, tail(s.stderr.String(), 500))
		}
		var r response
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, nil, fmt.Errorf("unreadable line %q: %w", tail(string(line), 200), err)
		}
		if r.Method != "" || string(r.ID) != want {
			continue // a notification, or an answer to something else
		}
		if r.Error != nil {
			return line, &r, fmt.Errorf("%s", r.Error.Message)
		}
		return line, &r, nil
	}
}

func (s *stdioServer) call(method, params string) ([]byte, *response, error) {
	id, err := s.send(method, params)
	if err != nil {
		return nil, nil, err
	}
	return s.read(id)
}

// callTool calls a tool and fails on an isError result.
func (s *stdioServer) callTool(name, args string) error {
	_, r, err := s.call("tools/call", `{"name":"`+name+`","arguments":`+args+`}`)
	if err != nil {
		return err
	}
	return checkToolResult(r.Result)
}

func checkToolResult(raw json.RawMessage) error {
	var res struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	if res.IsError {
		msg := "(no text)"
		if len(res.Content) > 0 {
			msg = res.Content[0].Text
		}
		return fmt.Errorf("tool error: %s", msg)
	}
	return nil
}

const initializeParams = `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bpmcp-bench","version":"1"}}`

// stop closes stdin (the server then exits) and waits for the process.
func (s *stdioServer) stop() error {
	_ = s.in.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		return errors.New("the server did not exit within 10 s of its input closing; killed it")
	}
}

// procStatus reads the memory figures of /proc/<pid>/status, in KiB.
type procStatus struct {
	VmRSS, VmHWM, RssAnon, RssFile int64
	Threads                        int64
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	var st procStatus
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			st.VmRSS = n
		case "VmHWM":
			st.VmHWM = n
		case "RssAnon":
			st.RssAnon = n
		case "RssFile":
			st.RssFile = n
		case "Threads":
			st.Threads = n
		}
	}
	return st, nil
}

// cpuTime returns the user+system CPU time a process has used so far
// (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields start after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
