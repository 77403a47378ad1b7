package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// goBench is one line of `go test -bench` output.
type goBench struct {
	Pkg         string
	Name        string
	N           int64
	NsPerOp     float64
	BytesPerOp  int64
	AllocsPerOp int64
}

// goBenchPackages are the packages whose benchmarks part 5 reports.
var goBenchPackages = []string{"./schema", "./bpapi", "./tools/..."}

// runGoBenchmarks runs the Go benchmarks of part 5 with -benchmem and
// parses their results. Tests are skipped (-run '^$').
func runGoBenchmarks(root, benchtime string) ([]goBench, string, string, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime, "-count", "1"}, goBenchPackages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	cmdline := "go " + strings.Join(args, " ")
	if err != nil {
		return nil, cmdline, "", fmt.Errorf("%s: %w\n%s", cmdline, err, tail(string(out), 2000))
	}
	list, cpu := parseGoBench(out)
	return list, cmdline, cpu, nil
}

func parseGoBench(out []byte) (list []goBench, cpu string) {
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "pkg:":
			pkg = f[1]
		case len(f) >= 2 && f[0] == "cpu:":
			cpu = strings.TrimSpace(strings.TrimPrefix(line, "cpu:"))
		case len(f) >= 4 && strings.HasPrefix(f[0], "Benchmark"):
			b := goBench{Pkg: pkg, Name: f[0]}
			b.N, _ = strconv.ParseInt(f[1], 10, 64)
			for i := 2; i+1 < len(f); i += 2 {
				switch f[i+1] {
				case "ns/op":
					b.NsPerOp, _ = strconv.ParseFloat(f[i], 64)
				case "B/op":
					b.BytesPerOp, _ = strconv.ParseInt(f[i], 10, 64)
				case "allocs/op":
					b.AllocsPerOp, _ = strconv.ParseInt(f[i], 10, 64)
				}
			}
			list = append(list, b)
		}
	}
	return list, cpu
}
