package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// A result is one line of `go test -bench` output: a benchmark's full name
// (without the -GOMAXPROCS suffix), its iteration count and its metrics by
// unit ("ns/op", "MB/s", "bytes/flush", ...).
type result struct {
	Name    string
	Iters   int64
	Metrics map[string]float64
}

// parseLine parses one benchmark result line. procs is the GOMAXPROCS
// suffix the testing package appended to the name (none when it is 1). It
// reports false for any other line (headers, PASS, logs).
func parseLine(line string, procs int) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return result{}, false
	}
	iters, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || iters <= 0 {
		return result{}, false // a run that measured nothing ("0 NaN ns/op")
	}
	r := result{Name: f[0], Iters: iters, Metrics: make(map[string]float64, (len(f)-2)/2)}
	if procs > 1 {
		r.Name = strings.TrimSuffix(r.Name, fmt.Sprintf("-%d", procs))
	}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return result{}, false
		}
		r.Metrics[f[i+1]] = v
	}
	if _, ok := r.Metrics["ns/op"]; !ok {
		return result{}, false
	}
	return r, true
}

// runData is what a raw log holds.
type runData struct {
	Samples  map[string][]sample // by "dir Name/sub"
	Order    []string            // keys of Samples in the order they first ran
	Meta     map[string]string
	Failures map[string][]string // by "dir Name/sub": "round N: why"
}

// A sample is one result of one round.
type sample struct {
	Round   int
	Metrics map[string]float64
}

// rawHeader starts every block of the raw log: the package, the round and
// GOMAXPROCS, as benchstat-style "key: value" lines.
func rawHeader(w io.Writer, pkg string, round, procs int) error {
	_, err := fmt.Fprintf(w, "pkg: %s\nround: %d\nprocs: %d\n", pkg, round, procs)
	return err
}

// parseRaw reads a raw log written by run (or by hand: `go test -bench`
// output with "pkg:", "round:" and "procs:" lines) and returns the samples
// by key (package directory + " " + benchmark name), and the "meta.KEY:
// value" lines and the failures ("fail: NAME: why") of the run.
func parseRaw(r io.Reader) (*runData, error) {
	out := make(map[string][]sample)
	meta := make(map[string]string)
	failures := make(map[string][]string)
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	pkg, round, procs := "", 0, 1
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(k, "Benchmark") {
			if k == "fail" {
				name, why, _ := strings.Cut(v, ": ")
				key := pkg + " " + name
				failures[key] = append(failures[key], fmt.Sprintf("round %d: %s", round, why))
				continue
			}
			if m, ok := strings.CutPrefix(k, "meta."); ok {
				meta[m] = strings.TrimSpace(v)
				continue
			}
			switch k {
			case "pkg":
				pkg = strings.TrimSpace(v)
			case "round", "procs":
				i, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return nil, fmt.Errorf("raw log line %d: %s: %w", n, k, err)
				}
				if k == "round" {
					round = i
				} else {
					procs = i
				}
			}
			continue
		}
		res, ok := parseLine(line, procs)
		if !ok {
			continue
		}
		key := pkg + " " + res.Name
		if _, seen := out[key]; !seen {
			order = append(order, key)
		}
		out[key] = append(out[key], sample{Round: round, Metrics: res.Metrics})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("raw log: %w", err)
	}
	return &runData{Samples: out, Order: order, Meta: meta, Failures: failures}, nil
}
