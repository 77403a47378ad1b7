// Command bench measures the bpmcp server against the targets of issue 8
// and prints the results as markdown: start-up time and memory, per-call
// overhead over stdio, HTTP throughput, waiting efficiency for long runs,
// the Go micro-benchmarks and the size of the tools/list answer.
//
// Run it from the module root:
//
//	go run ./bench                          # everything (about 5 minutes: part 4 waits at real time)
//	go run ./bench -quick                   # a smoke version in under a minute
//	go run ./bench -only waiting            # one part: coldstart, overhead, http, waiting, store, gobench
//	go run ./bench -out docs/BENCHMARKS.md  # also rewrite the results section of that file
//
// The server under test is the binary built from the module root (go build)
// unless -bin names one. Every part talks to an in-process fake of the
// BetterPrompt API (bpapi/fakeapi); no network beyond loopback is used.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type options struct {
	quick        bool
	only         map[string]bool
	out          string
	bin          string
	root         string
	runs         int
	calls        int
	httpDuration time.Duration
	httpWarm     time.Duration
	httpModes    []string
	levels       []int
	waitScale    float64
	benchtime    string
	profileDir   string
}

var parts = []string{"coldstart", "overhead", "http", "waiting", "store", "gobench"}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "short smoke run (under a minute): fewer runs and calls, 1 s HTTP loads in session mode only, part 4 at 1/20 time, short Go benchmarks")
	only := fs.String("only", "", "comma-separated parts to run: "+strings.Join(parts, ", ")+" (default all)")
	fs.StringVar(&o.out, "out", "", "rewrite the results section (between the bench markers) of this markdown file")
	fs.StringVar(&o.bin, "bin", "", "server binary to measure (default: go build the module root into a temporary directory)")
	fs.StringVar(&o.root, "root", "", "module root (default: found from the working directory)")
	fs.IntVar(&o.runs, "runs", 0, "cold-start runs per variant (default 15; quick 7)")
	fs.IntVar(&o.calls, "calls", 0, "per-call overhead: calls on each side (default 5000; quick 1000)")
	fs.DurationVar(&o.httpDuration, "http-duration", 0, "HTTP load per row (default 5s; quick 1s)")
	modes := fs.String("http-modes", "", "HTTP modes to measure: session, stateless (default both; quick: session)")
	fs.Float64Var(&o.waitScale, "wait-scale", 0, "part 4 time scale: 1 = real time (default); quick 0.05")
	fs.StringVar(&o.benchtime, "benchtime", "", "go test -benchtime for part 5 (default 1s; quick 100ms)")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU and heap profiles of an in-process server to this directory and print their top entries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.only, err = parseParts(*only); err != nil {
		return err
	}
	if o.httpModes, err = parseModes(*modes, o.quick); err != nil {
		return err
	}
	if err := o.setDefaults(); err != nil {
		return err
	}
	return measure(o, args)
}

// parseParts reads -only: the parts to run (every part when empty).
func parseParts(only string) (map[string]bool, error) {
	chosen := map[string]bool{}
	for _, p := range splitComma(only) {
		if p == "size" || p == "listsize" {
			p = "coldstart"
		}
		if !slices.Contains(parts, p) {
			return nil, fmt.Errorf("-only: unknown part %q (parts: %s)", p, strings.Join(parts, ", "))
		}
		chosen[p] = true
	}
	if len(chosen) == 0 {
		for _, p := range parts {
			chosen[p] = true
		}
	}
	return chosen, nil
}

// parseModes reads -http-modes (both by default; quick: session).
func parseModes(modes string, quick bool) ([]string, error) {
	if modes == "" {
		modes = "session,stateless"
		if quick {
			modes = "session"
		}
	}
	list := splitComma(modes)
	for _, m := range list {
		if m != "session" && m != "stateless" {
			return nil, fmt.Errorf("-http-modes: unknown mode %q", m)
		}
	}
	return list, nil
}

// pick returns full, or quick in a quick run.
func (o *options) pick(full, quick int) int {
	if o.quick {
		return quick
	}
	return full
}

// setDefaults fills in the settings left at zero and checks them.
func (o *options) setDefaults() error {
	o.levels = []int{1, 16, 128}
	if o.runs == 0 {
		o.runs = o.pick(15, 7)
	}
	if o.calls == 0 {
		o.calls = o.pick(5000, 1000)
	}
	if o.runs < 7 {
		return errors.New("-runs must be at least 7")
	}
	if o.calls < 1000 {
		return errors.New("-calls must be at least 1000")
	}
	if o.httpDuration == 0 {
		o.httpDuration = time.Duration(o.pick(5, 1)) * time.Second
	}
	o.httpWarm = min(o.httpDuration/5, time.Second)
	if o.waitScale == 0 {
		o.waitScale = 1
		if o.quick {
			o.waitScale = 0.05
		}
	}
	if o.waitScale <= 0 || o.waitScale > 1 {
		return errors.New("-wait-scale must be in (0, 1]")
	}
	if o.benchtime == "" {
		o.benchtime = "1s"
		if o.quick {
			o.benchtime = "100ms"
		}
	}
	if o.root == "" {
		root, err := findRoot()
		if err != nil {
			return err
		}
		o.root = root
	}
	return nil
}

func splitComma(s string) []string {
	var list []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			list = append(list, p)
		}
	}
	return list
}

// findRoot walks up from the working directory to the bpmcp module root.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/bpmcp/bpmcp\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the bpmcp module, or give -root")
		}
		dir = parent
	}
}

// buildBinary builds the server into a temporary directory.
func buildBinary(root string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "bpmcp-bench-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "bpmcp")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// logf reports progress on stderr; the report goes to stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
