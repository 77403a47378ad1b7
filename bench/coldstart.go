package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// coldStart is part 1 (start-up time and memory) and part 6 (the size of
// the tools/list answer).
type coldStart struct {
	Runs         sample // spawn → initialize response
	Status       procStatus
	SandboxRuns  sample
	Sandbox      procStatus
	VersionRuns  sample // spawn → exit of `bpmcp --version`: the floor any start-up pays
	ListLine     int    // bytes of the whole tools/list JSON-RPC line (without the newline)
	ToolsBytes   int    // bytes of the "tools" array alone
	ToolSizes    []toolSize
	InitLine     int // bytes of the initialize response
	BinaryBytes  int64
	StatusPerRun []procStatus
	// Package initialisation of the binary (GODEBUG=inittrace=1).
	Inits                []pkgInit
	InitClock            time.Duration
	InitBytes, InitAlloc int64
}

type pkgInit struct {
	Pkg          string
	Clock        time.Duration
	Bytes, Alloc int64
}

// traceInits runs `bpmcp --version` with GODEBUG=inittrace=1 and parses
// the per-package lines: "init <pkg> @0.4 ms, 2.6 ms clock, 1701096 bytes, 21285 allocs".
func (cs *coldStart) traceInits(bin string) error {
	cmd := exec.Command(bin, "--version")
	cmd.Env = serverEnv("GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("inittrace: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var pi pkgInit
		var at, clock float64
		if _, err := fmt.Sscanf(line, "init %s @%f ms, %f ms clock, %d bytes, %d allocs", &pi.Pkg, &at, &clock, &pi.Bytes, &pi.Alloc); err != nil {
			continue
		}
		pi.Clock = time.Duration(clock * float64(time.Millisecond))
		cs.Inits = append(cs.Inits, pi)
		cs.InitClock += pi.Clock
		cs.InitBytes += pi.Bytes
		cs.InitAlloc += pi.Alloc
	}
	slices.SortFunc(cs.Inits, func(a, b pkgInit) int { return cmp.Compare(b.Clock, a.Clock) })
	return nil
}

// toolSize is one tool's share of tools/list, by member.
type toolSize struct {
	Name                                    string
	Bytes                                   int
	Description, Input, Output, Annotations int
	// Removable bytes: annotations.title equal to title; destructiveHint
	// and idempotentHint on a read-only tool (the spec gives them meaning
	// only when readOnlyHint is false); "required" lists of the output
	// schema.
	DupTitle, ReadOnlyHints, OutputRequired int
}

// memberBytes is what removing member k with raw value v from an object
// saves: "k":v and a comma.
func memberBytes(k string, v json.RawMessage) int { return len(k) + 3 + len(v) + 1 }

func measureTool(raw json.RawMessage) toolSize {
	var t map[string]json.RawMessage
	_ = json.Unmarshal(raw, &t)
	ts := toolSize{Bytes: len(raw)}
	_ = json.Unmarshal(t["name"], &ts.Name)
	ts.Description = len(t["description"])
	ts.Input = len(t["inputSchema"])
	ts.Output = len(t["outputSchema"])
	ts.Annotations = len(t["annotations"])
	var ann map[string]json.RawMessage
	if json.Unmarshal(t["annotations"], &ann) == nil {
		if at, ok := ann["title"]; ok && string(at) == string(t["title"]) {
			ts.DupTitle = memberBytes("title", at)
		}
		if string(ann["readOnlyHint"]) == "true" {
			for _, k := range []string{"destructiveHint", "idempotentHint"} {
				if v, ok := ann[k]; ok {
					ts.ReadOnlyHints += memberBytes(k, v)
				}
			}
		}
	}
	ts.OutputRequired = requiredBytes(t["outputSchema"])
	return ts
}

// requiredBytes sums the "required" members anywhere in a schema.
func requiredBytes(raw json.RawMessage) int {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		n := 0
		for k, v := range obj {
			if k == "required" {
				n += memberBytes(k, v)
			} else {
				n += requiredBytes(v)
			}
		}
		return n
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		n := 0
		for _, v := range arr {
			n += requiredBytes(v)
		}
		return n
	}
	return 0
}

// measureColdStart spawns the binary runs times against up (plus one
// unmeasured run to warm the page cache), and as many times with --sandbox.
func measureColdStart(bin string, up *upstream, runs int) (*coldStart, error) {
	cs := &coldStart{}
	env := serverEnv("BETTERPROMPT_API_KEY="+benchKey, "BETTERPROMPT_BASE_URL="+up.baseURL)
	for i := 0; i <= runs; i++ {
		d, st, list, init, err := coldStartOnce(bin, nil, env)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := cs.sizes(list); err != nil {
				return nil, err
			}
			cs.InitLine = len(init) - 1
			continue // warm-up
		}
		cs.Runs = append(cs.Runs, d)
		cs.StatusPerRun = append(cs.StatusPerRun, st)
	}
	cs.Status = medianStatus(cs.StatusPerRun)
	var sb []procStatus
	senv := serverEnv()
	for i := 0; i <= runs; i++ {
		d, st, _, _, err := coldStartOnce(bin, []string{"--sandbox"}, senv)
		if err != nil {
			return nil, fmt.Errorf("--sandbox: %w", err)
		}
		if i > 0 {
			cs.SandboxRuns = append(cs.SandboxRuns, d)
			sb = append(sb, st)
		}
	}
	cs.Sandbox = medianStatus(sb)
	if err := cs.traceInits(bin); err != nil {
		return nil, err
	}
	for i := 0; i <= runs; i++ {
		t0 := time.Now()
		cmd := exec.Command(bin, "--version")
		cmd.Env = senv
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("--version: %w", err)
		}
		if i > 0 {
			cs.VersionRuns = append(cs.VersionRuns, time.Since(t0))
		}
	}
	return cs, nil
}

// coldStartOnce measures one start: the clock starts before the process is
// created and stops when the initialize response has been read. Memory is
// read after tools/list has been answered.
func coldStartOnce(bin string, args, env []string) (time.Duration, procStatus, []byte, []byte, error) {
	t0 := time.Now()
	s, err := startStdio(bin, args, env)
	if err != nil {
		return 0, procStatus{}, nil, nil, err
	}
	defer func() { _ = s.stop() }()
	init, _, err := s.call("initialize", initializeParams)
	if err != nil {
		return 0, procStatus{}, nil, nil, fmt.Errorf("initialize: %w", err)
	}
	d := time.Since(t0)
	init = append([]byte(nil), init...)
	if err := s.notify("notifications/initialized"); err != nil {
		return 0, procStatus{}, nil, nil, err
	}
	list, _, err := s.call("tools/list", "")
	if err != nil {
		return 0, procStatus{}, nil, nil, fmt.Errorf("tools/list: %w", err)
	}
	list = append([]byte(nil), list...)
	st, err := readProcStatus(s.cmd.Process.Pid)
	if err != nil {
		return 0, procStatus{}, nil, nil, err
	}
	return d, st, list, init, nil
}

func (cs *coldStart) sizes(line []byte) error {
	cs.ListLine = len(line) - 1 // the newline
	var r struct {
		Result struct {
			Tools []json.RawMessage `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	cs.ToolsBytes = 2 + len(r.Result.Tools) - 1 // brackets and commas
	for _, t := range r.Result.Tools {
		cs.ToolSizes = append(cs.ToolSizes, measureTool(t))
		cs.ToolsBytes += len(t)
	}
	return nil
}

// medianStatus takes the median of each figure separately.
func medianStatus(list []procStatus) procStatus {
	pick := func(f func(procStatus) int64) int64 {
		s := make(sample, len(list))
		for i, st := range list {
			s[i] = time.Duration(f(st))
		}
		return int64(s.median())
	}
	return procStatus{
		VmRSS:   pick(func(s procStatus) int64 { return s.VmRSS }),
		VmHWM:   pick(func(s procStatus) int64 { return s.VmHWM }),
		RssAnon: pick(func(s procStatus) int64 { return s.RssAnon }),
		RssFile: pick(func(s procStatus) int64 { return s.RssFile }),
		Threads: pick(func(s procStatus) int64 { return s.Threads }),
	}
}
