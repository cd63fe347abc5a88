package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// TestClusterBench measures, in one run on one machine, round trips from a
// kernel to its dlogd: the same requests against a single-node dlogd
// (no --cluster) and against node 1 of a three-node cluster (nodes 2 and 3
// joined to the same log), rounds alternating between the two, for each
// corosync transport in DLOG_CLUSTERBENCH_TRANSPORTS (udpu,knet):
//
//	mark+flush  an integrated FLUSH carrying one newly marked region (a
//	            CLEAR of it between rounds trips makes the next a real mark):
//	            clustered-disk writes the mark's block and flushes the device
//	            cache before answering; clustered-core answers once its marks
//	            came back from the group (one ordered CPG message)
//	IN_SYNC     answered from memory on both
//
// It writes a markdown table to DLOG_CLUSTERBENCH_OUT if set.
func TestClusterBench(t *testing.T) {
	if os.Getenv("DLOG_CLUSTERBENCH") == "" {
		t.Skip("set DLOG_CLUSTERBENCH=1 (make clustertest-bench)")
	}
	rounds := 11
	iters := 300
	var rows []string
	for _, tr := range strings.Split(envString("DLOG_CLUSTERBENCH_TRANSPORTS", "udpu,knet"), ",") {
		rows = append(rows, benchTransport(t, tr, rounds, iters)...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| corosync | log | request | single-node dlogd | 3-node cluster (node 1) | ratio (median of rounds) |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	t.Logf("\n%s", b.String())
	if p := os.Getenv("DLOG_CLUSTERBENCH_OUT"); p != "" {
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

func benchTransport(t *testing.T, tr string, rounds, iters int) []string {
	net := newTestNet(t, 3, tr)
	for i := 1; i <= 3; i++ {
		net.startNode(i, true)
	}
	// The single-node dlogd, in the root namespace, no cluster.
	plain := filepath.Join(net.dir, "plain.sock")
	cmd := exec.Command(net.bin, "serve", "--transport", "unix:"+plain, "--pidfile", filepath.Join(net.dir, "plain.pid"), "--control", "none", "--no-mlock", "--force")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(plain); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var rows []string
	for _, typ := range []string{"clustered-disk", "clustered-core"} {
		mk := func(name string) string {
			if typ == "clustered-core" {
				return fmt.Sprintf("%d %s 1024", regions*1024, typ)
			}
			dev := filepath.Join(net.dir, name+"-"+typ)
			os.WriteFile(dev, make([]byte, 1<<20), 0o644)
			return fmt.Sprintf("%d %s %s 1024", regions*1024, typ, dev)
		}
		open := func(sock, uuid, ctr string, luid uint64) *client {
			cl, err := dial(sock, uuid, luid)
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range []struct {
				t ulog.RequestType
				d []byte
			}{{ulog.TypeCtr, []byte(ctr)}, {ulog.TypeGetRegionSize, nil}, {ulog.TypeResume, nil}} {
				if _, err := cl.ok(step.t, step.d); err != nil {
					t.Fatalf("%s %s: %v", typ, step.t, err)
				}
			}
			return cl
		}
		single := open(plain, "bench-"+typ, mk("single"), 1)
		sharedCtr := mk("shared")
		var members []*client
		for i := 1; i <= 3; i++ {
			members = append(members, open(net.sock(i), "bench-"+typ, sharedCtr, uint64(i)))
		}
		node1 := members[0]
		for _, req := range []string{"mark+flush", "IN_SYNC"} {
			var a, b, ratio []float64
			it := iters
			if req == "IN_SYNC" {
				it = 8 * iters // cheap and noisy: more samples
			}
			benchLoop(t, single, req, it/4) // warm up both
			benchLoop(t, node1, req, it/4)
			for round := 0; round < rounds; round++ {
				x := benchLoop(t, single, req, it)
				y := benchLoop(t, node1, req, it)
				a, b, ratio = append(a, x), append(b, y), append(ratio, y/x)
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %.2fx |", tr, typ, req, us(median(a)), us(median(b)), median(ratio)))
			t.Logf("%s %s %s: single %v cluster %v ratios %.2f", tr, typ, req, a, b, ratio)
		}
		for _, cl := range append(members, single) {
			cl.ok(ulog.TypePresuspend, nil)
			cl.ok(ulog.TypePostsuspend, nil)
			cl.ok(ulog.TypeDtr, nil)
		}
	}
	cmd.Process.Kill()
	net.teardown()
	return rows
}

// benchLoop returns the mean round trip in microseconds.
func benchLoop(t *testing.T, cl *client, req string, iters int) float64 {
	var total time.Duration
	for i := 0; i < iters; i++ {
		r := uint64(i % 64)
		switch req {
		case "mark+flush":
			start := time.Now()
			if _, err := cl.ok(ulog.TypeFlush, ulog.AppendUint64(nil, r)); err != nil {
				t.Fatal(err)
			}
			total += time.Since(start)
			if _, err := cl.ok(ulog.TypeClearRegion, ulog.AppendUint64(nil, r)); err != nil {
				t.Fatal(err)
			}
		case "IN_SYNC":
			start := time.Now()
			if _, _, err := cl.region(ulog.TypeInSync, r); err != nil {
				t.Fatal(err)
			}
			total += time.Since(start)
		}
	}
	return float64(total.Microseconds()) / float64(iters)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func us(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.1f µs", v)
}
