package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

func TestConfigPrecedence(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.Transport == "stdio" && c.Addr == "127.0.0.1:8080" && c.BaseURL == "https://api.betterprompt.me/v1" &&
				c.WaitDefault == 45*time.Second && c.WaitMax == 10*time.Minute && c.RateLimit == 5
		}, ""},
		{"environment", nil, map[string]string{"BPMCP_TRANSPORT": "http", "BETTERPROMPT_API_KEY": "bp_x", "BPMCP_ALLOWED_ORIGINS": "http://a, http://b"},
			func(c config) bool {
				return c.Transport == "http" && c.APIKey.Reveal() == "bp_x" && reflect.DeepEqual(c.AllowedOrigins, []string{"http://a", "http://b"})
			}, ""},
		{"flag wins", []string{"--transport", "stdio", "--wait-default=10s", "--sandbox"}, map[string]string{"BPMCP_TRANSPORT": "http", "BPMCP_WAIT_DEFAULT": "30s"},
			func(c config) bool { return c.Transport == "stdio" && c.WaitDefault == 10*time.Second && c.Sandbox }, ""},
		{"HTTP sessions", []string{"--max-sessions", "50"}, map[string]string{"BPMCP_SESSION_IDLE_TTL": "2h"},
			func(c config) bool { return c.SessionIdleTTL == 2*time.Hour && c.MaxSessions == 50 }, ""},
		{"HTTP session defaults", nil, nil,
			func(c config) bool { return c.SessionIdleTTL == 30*time.Minute && c.MaxSessions == 10000 }, ""},
		{"idle TTL 0 is not for ever", []string{"--session-idle-ttl", "0"}, nil, nil, "session-idle-ttl must be more than 0"},
		{"no sessions", nil, map[string]string{"BPMCP_MAX_SESSIONS": "0"}, nil, "max-sessions must be more than 0"},
		{"bad transport", []string{"--transport", "sse"}, nil, nil, "stdio or http"},
		{"bad duration", []string{"--wait-max", "forever"}, nil, nil, "wait-max"},
		{"bad base URL", nil, map[string]string{"BETTERPROMPT_BASE_URL": "api.betterprompt.me"}, nil, "http(s) URL"},
		{"stray argument", []string{"serve"}, nil, nil, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, err := loadConfig(tc.args, tc.env, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config = %+v", c)
			}
		})
	}
}

// --help lists every setting, and the README's configuration table does too,
// so neither can fall behind config.go.
func TestEverySettingIsDocumented(t *testing.T) {
	var help bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, nil, &bytes.Buffer{}, &help); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		for _, name := range []string{f.Tag.Get("env"), f.Tag.Get("flag")} {
			if name == "" {
				continue
			}
			if f.Tag.Get("flag") == name {
				name = "--" + name
			}
			if !strings.Contains(help.String(), name) {
				t.Errorf("--help does not list %s", name)
			}
			if !bytes.Contains(readme, []byte("`"+name+"`")) {
				t.Errorf("README.md does not document %s", name)
			}
		}
	}
}

func TestVersionAndBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, nil, nil, &bytes.Buffer{}, &stderr); code != 0 || !strings.HasPrefix(stderr.String(), "bpmcp ") {
		t.Errorf("--version: code %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"--no-such-flag"}, nil, nil, &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("unknown flag: code %d", code)
	}
}

// Over stdio, stdout carries only protocol messages: start-up logs, the
// sandbox banner and shutdown all go to stderr.
func TestStdoutCarriesOnlyProtocol(t *testing.T) {
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}` + "\n")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"--sandbox", "--log-level", "debug"}, map[string]string{}, in, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"jsonrpc":"2.0","id":1,"result":`) {
		t.Errorf("stdout has more than the initialize answer: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "SANDBOX MODE") {
		t.Errorf("stderr lacks the sandbox banner: %s", stderr.String())
	}
}

// The command line's defaults (config.go's tags, shown by --help and the
// README) are the ones the packages apply to a zero setting: a default is
// changed in the package, and this test says where else to change it.
func TestConfigDefaultsMatchThePackages(t *testing.T) {
	c, err := loadConfig(nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	wait, http := betterprompt.DefaultWaitConfig(), mcpserver.DefaultHTTPOptions()
	for _, d := range []struct {
		setting  string
		cli, pkg any
	}{
		{"--wait-default", c.WaitDefault, wait.Default},
		{"--wait-max", c.WaitMax, wait.Max},
		{"--max-waits-per-key", c.MaxWaitsPerKey, betterprompt.DefaultMaxWaitsPerKey},
		{"--rate-limit", c.RateLimit, float64(bpapi.DefaultRateLimit)},
		{"--request-timeout", c.RequestTimeout, bpapi.DefaultRequestTimeout},
		{"--addr", c.Addr, http.Addr},
		{"--session-idle-ttl", c.SessionIdleTTL, http.SessionIdleTTL},
		{"--max-sessions", c.MaxSessions, http.MaxSessions},
		{"--max-body-bytes", c.MaxBodyBytes, http.MaxBodyBytes},
		{"--shutdown-grace", c.ShutdownGrace, http.ShutdownGrace},
	} {
		if d.cli != d.pkg {
			t.Errorf("%s defaults to %v in config.go but to %v in its package", d.setting, d.cli, d.pkg)
		}
	}
}

// listTools runs the server over stdio with args and env, and returns the
// tools it lists and its instructions.
func listTools(t *testing.T, args []string, env map[string]string) (names []string, instructions string) {
	t.Helper()
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"tools/list"}` + "\n")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := run(ctx, args, env, in, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit code %d; stderr: %s", args, code, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Instructions string `json:"instructions"`
				Tools        []struct {
					Name string `json:"name"`
				} `json:"tools"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil {
			t.Fatalf("stdout line %q: %v", line, err)
		}
		switch msg.ID {
		case 1:
			instructions = msg.Result.Instructions
		case 2:
			for _, tool := range msg.Result.Tools {
				names = append(names, tool.Name)
			}
		}
	}
	slices.Sort(names)
	return names, instructions
}

// --read-only and --tools shape tools/list and say so in the instructions;
// BetterWaifu's tools come with its key (or the sandbox) only.
func TestWhichToolsAreOffered(t *testing.T) {
	bp := []string{"get_credits", "get_prompt", "get_run", "list_models", "run_prompt", "search_prompts"}
	bw := []string{"betterwaifu_generate", "betterwaifu_get_account", "betterwaifu_get_generation", "betterwaifu_list_models"}
	key := map[string]string{"BETTERPROMPT_API_KEY": "bp_x", "BETTERPROMPT_BASE_URL": "http://127.0.0.1:9/v1"}
	withBW := map[string]string{"BETTERPROMPT_API_KEY": "bp_x", "BETTERWAIFU_API_KEY": "bw_x"}
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		want  []string
		noted bool // the instructions say only some tools are offered
	}{
		{"BetterPrompt only", nil, key, bp, false},
		{"with a BetterWaifu key", nil, withBW, append(slices.Clone(bp), bw...), false},
		{"sandbox", []string{"--sandbox"}, nil, append(slices.Clone(bp), bw...), false},
		{"read-only", []string{"--read-only"}, withBW,
			[]string{"betterwaifu_get_account", "betterwaifu_get_generation", "betterwaifu_list_models", "get_credits", "get_prompt", "get_run", "list_models", "search_prompts"}, true},
		{"allowlist", []string{"--tools", "search_prompts,get_prompt"}, key, []string{"get_prompt", "search_prompts"}, true},
		{"allowlist and read-only", []string{"--tools", "run_prompt,get_run", "--read-only"}, key, []string{"get_run"}, true},
	}
	for _, tc := range cases {
		got, instr := listTools(t, tc.args, tc.env)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: tools %v, want %v", tc.name, got, want)
		}
		if noted := strings.Contains(instr, "offers only these tools"); noted != tc.noted {
			t.Errorf("%s: instructions note the filter: %v, want %v", tc.name, noted, tc.noted)
		}
		if strings.Contains(instr, "BetterWaifu") != slices.Contains(got, "betterwaifu_get_account") {
			t.Errorf("%s: instructions mention BetterWaifu: %v, tools %v", tc.name, strings.Contains(instr, "BetterWaifu"), got)
		}
	}
	// A tool that is not offered is refused when called.
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_prompt","arguments":{"prompt_id":"cold-email-opener"}}}` + "\n")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := run(ctx, []string{"--read-only"}, key, in, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), `"id":2,"error"`) || !strings.Contains(out.String(), "run_prompt") {
		t.Errorf("run_prompt in read-only mode: code %d, %s", code, out.String())
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--tools", "run_promt"}, key, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `"run_promt"`) || !strings.Contains(stderr.String(), "run_prompt") {
		t.Errorf("an unknown tool name: code %d, %s", code, stderr.String())
	}
}

// --metrics-addr serves Prometheus metrics on a listener of its own while
// the server runs.
func TestMetricsAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stdin, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"--sandbox", "--metrics-addr", addr}, map[string]string{}, stdin, io.Discard, io.Discard)
	}()
	var body string
	for i := 0; i < 100 && body == ""; i++ {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	_ = w.Close() // stdin ends: the server stops
	if code := <-done; code != 0 {
		t.Errorf("exit code %d", code)
	}
	if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("no metrics at /metrics: %q", body)
	}
}

// callOverStdio runs the server with args and env, sends initialize and the
// given tools/call requests (ids 2, 3, …), and returns the results by id.
func callOverStdio(t *testing.T, args []string, env map[string]string, calls ...string) map[int]string {
	t.Helper()
	msgs := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"
	for i, c := range calls {
		msgs += fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, i+2, c) + "\n"
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code := run(ctx, args, env, strings.NewReader(msgs), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	out := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var msg struct {
			ID int `json:"id"`
		}
		_ = json.Unmarshal([]byte(line), &msg)
		out[msg.ID] = line
	}
	return out
}

// With --state-url the run records and guards live in Redis; with Redis
// gone, a run is refused with nothing spent while reads keep working.
func TestStateURL(t *testing.T) {
	srv := redistest.Start(t)
	runCall := `{"name":"run_prompt","arguments":{"prompt_id":"cold-email-opener","inputs":{"textInputs":{"company_name":"Acme","recipient_role":"CTO","value_proposition":"We halve your cloud bill."}}}}`
	searchCall := `{"name":"search_prompts","arguments":{"query":"cold email"}}`
	out := callOverStdio(t, []string{"--sandbox", "--state-url", "redis://" + srv.Addr}, map[string]string{}, runCall)
	if !strings.Contains(out[2], "succeeded") {
		t.Fatalf("run_prompt with a shared store: %s", out[2])
	}
	if keys, err := srv.Client(t).Keys(context.Background(), "bpmcp:v1:runs:{records}:rec:*").Result(); err != nil || len(keys) != 1 {
		t.Errorf("not one run record in Redis: %v %v", keys, err)
	}
	srv.Stop()
	out = callOverStdio(t, []string{"--sandbox", "--state-url", "redis://" + srv.Addr}, map[string]string{}, runCall, searchCall)
	if !strings.Contains(out[2], `"isError":true`) || !strings.Contains(out[2], "nothing was run or spent") {
		t.Errorf("run_prompt with the store gone: %s", out[2])
	}
	if strings.Contains(out[3], `"isError":true`) || !strings.Contains(out[3], "Cold Email Opener") {
		t.Errorf("search_prompts with the store gone: %s", out[3])
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--state-url", "http://x"}, nil, strings.NewReader(""), io.Discard, &stderr); code != 2 {
		t.Errorf("a state URL that is not Redis: code %d", code)
	}
}

// --prompts gives chosen prompts tools of their own, in the sandbox too.
func TestPromptsSetting(t *testing.T) {
	call := `{"name":"cold_email","arguments":{"company_name":"Acme","recipient_role":"CTO","value_proposition":"We halve your cloud bill."}}`
	out := callOverStdio(t, []string{"--sandbox", "--prompts", "cold-email-opener=cold_email", "--sandbox-time-scale", "0.05"}, map[string]string{}, call)
	if !strings.Contains(out[2], `"succeeded"`) || strings.Contains(out[2], `"isError":true`) {
		t.Errorf("the chosen prompt's tool: %s", out[2])
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--prompts", "x=Bad Name"}, nil, strings.NewReader(""), io.Discard, &stderr); code != 2 {
		t.Errorf("a bad tool name: code %d, %s", code, stderr.String())
	}
}

func TestVersionOf(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}
	for _, tc := range []struct {
		name, ldflags string
		bi            *debug.BuildInfo
		want          string
	}{
		{"a release build", "v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "v1.4.0"},
		{"go install of a tag", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"a build from a checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "dev+0123456789ab"},
		{"with changes", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{rev[0], {Key: "vcs.modified", Value: "true"}}}, "dev+0123456789ab-dirty"},
		{"-buildvcs=false", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build info", "", nil, "dev"},
	} {
		if got := versionOf(tc.ldflags, tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The version a release build is given with -ldflags is what --version
// and serverInfo.version say.
func TestVersionFromLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "bpmcp")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "bpmcp v9.8.7" {
		t.Errorf("--version: %q %v", out, err)
	}
}
