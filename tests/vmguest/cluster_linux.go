//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

// The cluster scenarios (cl-*) run on every node of a cluster of qemu
// guests that tests/vm's TestVMCluster boots together: each guest runs
// Debian's corosync and dlogd --cluster corosync, and every node puts a
// dm-mirror with the same userspace log uuid over the same shared disks.
// The host tells each guest who it is on the kernel command line:
//
//	dlog.node=2 dlog.nodes=3 dlog.clog=clustered-disk dlog.victim=2
//
// The shared disks, in the order the host attaches them after the results
// disk: the mailbox, leg A, leg B and the log device.
const (
	mailboxDev = "/dev/vdb"
	legADev    = "/dev/vdc"
	legBDev    = "/dev/vdd"
	clogDev    = "/dev/vde"

	// Sizes the host creates (tests/vm/cluster_test.go must agree).
	mailboxBytes = 1 << 20
	clLegBytes   = 48 << 20
	clogBytes    = 2 << 20

	clusterRegion = 512 // sectors: 256 KiB regions, 192 of them
	clusterBlock  = 4096

	// killMarker on the console makes the host kill that guest's qemu.
	killMarker = "DLOG-VMC-KILL-NOW"
)

// clusterCfg is this node's place in the cluster.
type clusterCfg struct {
	node, nodes int
	logType     string // clustered-disk or clustered-core
	victim      int    // the node the scenario kills or cuts off (0: none)
	// layout is the block of node's seq-th write (blockOf unless a
	// scenario needs another).
	layout func(node, nodes, seq int) int64
}

func readClusterCfg() (clusterCfg, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return clusterCfg{}, err
	}
	return parseClusterCfg(string(b))
}

func parseClusterCfg(cmdline string) (clusterCfg, error) {
	c := clusterCfg{logType: "clustered-disk", layout: blockOf}
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "dlog.node":
			c.node, err = strconv.Atoi(v)
		case "dlog.nodes":
			c.nodes, err = strconv.Atoi(v)
		case "dlog.victim":
			c.victim, err = strconv.Atoi(v)
		case "dlog.clog":
			c.logType = v
		}
		if err != nil {
			return c, fmt.Errorf("%s: %w", w, err)
		}
	}
	switch {
	case c.nodes < 1 || c.nodes > 8:
		return c, fmt.Errorf("dlog.nodes=%d: want 1 to 8 (a cluster scenario needs the host's TestVMCluster)", c.nodes)
	case c.node < 1 || c.node > c.nodes:
		return c, fmt.Errorf("dlog.node=%d: want 1 to %d", c.node, c.nodes)
	case c.victim < 0 || c.victim > c.nodes:
		return c, fmt.Errorf("dlog.victim=%d: want 0 to %d", c.victim, c.nodes)
	case c.logType != "clustered-disk" && c.logType != "clustered-core":
		return c, fmt.Errorf("dlog.clog=%s: want clustered-disk or clustered-core", c.logType)
	}
	return c, nil
}

func nodeAddr(i int) string { return fmt.Sprintf("10.213.77.%d", i) }

// corosyncConf is the configuration every node writes: udpu on the hub's
// segment, a 5 s token (TCG is slow: a shorter one declares live nodes
// dead), votequorum with two_node for two nodes (the survivor of a pair
// stays quorate; wait_for_all, which two_node implies, makes both meet
// once first).
func corosyncConf(nodes int) string {
	var b strings.Builder
	b.WriteString("totem {\n\tversion: 2\n\tcluster_name: dlogvm\n\ttransport: udpu\n\tcrypto_cipher: none\n\tcrypto_hash: none\n\ttoken: 5000\n}\n")
	b.WriteString("nodelist {\n")
	for k := 1; k <= nodes; k++ {
		fmt.Fprintf(&b, "\tnode {\n\t\tring0_addr: %s\n\t\tnodeid: %d\n\t\tname: n%d\n\t}\n", nodeAddr(k), k, k)
	}
	b.WriteString("}\nquorum {\n\tprovider: corosync_votequorum\n")
	if nodes == 2 {
		b.WriteString("\ttwo_node: 1\n")
	}
	b.WriteString("}\nlogging {\n\tto_stderr: yes\n\tto_syslog: no\n\tto_logfile: no\n\ttimestamp: on\n}\n")
	return b.String()
}

// ---- the mailbox: one 4 KiB slot per node on a shared disk -------------------------------

// mbSlot is the mailbox's slot size: one host filesystem block per slot, so
// that two guests' O_DIRECT writes never share a block of the image file
// (sub-block direct writes into one block from two qemu processes can
// lose one of them; the host also writes the images whole, never sparse).
// tests/vm/cluster_test.go must agree.
const mbSlot = 4096

// mbState is what a node publishes: the phase it reached and how many of
// its workload writes were acknowledged (the write(2) returned).
type mbState struct {
	Phase int
	Acked int
}

func (m mbState) encode() []byte {
	b := make([]byte, mbSlot)
	copy(b, fmt.Sprintf("dlogvmc phase=%d acked=%d\n", m.Phase, m.Acked))
	return b
}

func decodeMB(b []byte) (mbState, error) {
	var m mbState
	if bytes.Equal(b[:8], make([]byte, 8)) {
		return m, nil // never written
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if _, err := fmt.Sscanf(string(line), "dlogvmc phase=%d acked=%d", &m.Phase, &m.Acked); err != nil {
		return m, fmt.Errorf("mailbox sector %q: %w", line, err)
	}
	return m, nil
}

// mailbox is this node's view of the shared disk, opened with O_DIRECT so
// that every read sees what the other guests wrote (qemu opens the image
// with cache=none on the host). Sector 0 is the host's, sector n node n's;
// a scenario may use the sectors after the nodes'. Safe for concurrent use.
type mailbox struct {
	mu   sync.Mutex
	f    *os.File
	buf  []byte
	free func()
	node int
	cur  mbState
}

func openMailbox(node int) (*mailbox, error) {
	f, err := openDirect(mailboxDev, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	buf, free, err := alignedBuf(mbSlot)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &mailbox{f: f, buf: buf, free: free, node: node}, nil
}

func (m *mailbox) Close() { m.f.Close(); m.free() }

func (m *mailbox) publishLocked(sector int, st mbState) error {
	copy(m.buf, st.encode())
	if _, err := m.f.WriteAt(m.buf, int64(sector)*mbSlot); err != nil {
		return fmt.Errorf("mailbox write: %w", err)
	}
	return nil
}

// publishAt writes st to another sector than this node's own.
func (m *mailbox) publishAt(sector int, st mbState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.publishLocked(sector, st)
}

func (m *mailbox) phase(p int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := mbState{Phase: p, Acked: m.cur.Acked}
	if err := m.publishLocked(m.node, st); err != nil {
		return err
	}
	m.cur = st
	return nil
}

func (m *mailbox) acked(n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := mbState{Phase: m.cur.Phase, Acked: n}
	if err := m.publishLocked(m.node, st); err != nil {
		return err
	}
	m.cur = st
	return nil
}

// ackedNow is this node's count of acknowledged writes.
func (m *mailbox) ackedNow() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur.Acked
}

func (m *mailbox) read(sector int) (mbState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.f.ReadAt(m.buf, int64(sector)*mbSlot); err != nil {
		return mbState{}, fmt.Errorf("mailbox read: %w", err)
	}
	return decodeMB(m.buf)
}

// wait polls until every node in nodes has reached phase p: every 20 ms
// for the first 2 s, then every 200 ms. Nodes that meet at a barrier to
// act together (the benchmark's creates) leave it within one fast poll of
// each other, not up to 200 ms apart.
func (m *mailbox) wait(ctx context.Context, nodes []int, p int) error {
	start := time.Now()
	for {
		var behind []string
		for _, n := range nodes {
			st, err := m.read(n)
			if err != nil {
				return err
			}
			if st.Phase < p {
				behind = append(behind, fmt.Sprintf("node %d at phase %d", n, st.Phase))
			}
		}
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for phase %d: %s: %w", p, strings.Join(behind, ", "), ctx.Err())
		case <-time.After(mailboxPoll(time.Since(start))):
		}
	}
}

// mailboxPoll is the interval between two mailbox reads of a barrier
// that has waited waited so far.
func mailboxPoll(waited time.Duration) time.Duration {
	if waited < 2*time.Second {
		return 20 * time.Millisecond
	}
	return 200 * time.Millisecond
}

// ---- the workload: 4 KiB O_DIRECT writes that say who wrote them ----------------------------

// blockOf is the device block of node's seq-th write: every node has its
// own blocks (b % nodes == node-1), spread over every region by a stride
// coprime with the number of blocks a node owns, so the regions are shared
// by all nodes while each block has one writer.
func blockOf(node, nodes, seq int) int64 {
	per := clLegBytes / clusterBlock / nodes
	return int64(((seq*97)%per)*nodes + node - 1)
}

// payload is the content of node's seq-th write.
func payload(node, seq int, blk int64) []byte {
	b := make([]byte, clusterBlock)
	line := fmt.Sprintf("dlogvmc node=%d seq=%d blk=%d |", node, seq, blk)
	for i := 0; i < len(b); i += len(line) {
		copy(b[i:], line)
	}
	return b
}

// writeWorkload writes node's writes first..last-1 to dev, publishing the
// count acknowledged so far after each one, and calls after(seq) after
// each acknowledged write (nil: nothing).
func writeWorkload(ctx context.Context, mb *mailbox, dev string, c clusterCfg, first, last int, after func(seq int)) error {
	f, buf, done, err := openDirectBuf(dev, os.O_WRONLY, clusterBlock)
	if err != nil {
		return err
	}
	defer done()
	for seq := first; seq < last; seq++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("after %d writes: %w", seq, err)
		}
		blk := c.layout(c.node, c.nodes, seq)
		copy(buf, payload(c.node, seq, blk))
		if _, err := f.WriteAt(buf, blk*clusterBlock); err != nil {
			return fmt.Errorf("write %d (block %d): %w", seq, blk, err)
		}
		if err := mb.acked(seq + 1); err != nil {
			return err
		}
		if after != nil {
			after(seq)
		}
	}
	return nil
}

// checkWrites reads every acknowledged write of node (acked of them) from
// dev and returns a description of the ones that do not read back. The
// write after the last acknowledged one may have been in flight when the
// node died: its block may hold it or the zeros from before.
func checkWrites(dev string, c clusterCfg, node, acked int) (string, error) {
	f, buf, done, err := openDirectBuf(dev, os.O_RDONLY, clusterBlock)
	if err != nil {
		return "", err
	}
	defer done()
	var bad []string
	nbad := 0
	for seq := 0; seq < acked; seq++ {
		blk := c.layout(node, c.nodes, seq)
		if _, err := f.ReadAt(buf, blk*clusterBlock); err != nil {
			return "", fmt.Errorf("read block %d: %w", blk, err)
		}
		if !bytes.Equal(buf, payload(node, seq, blk)) {
			nbad++
			if len(bad) < 5 {
				got, _, _ := bytes.Cut(buf[:64], []byte("|"))
				bad = append(bad, fmt.Sprintf("seq %d block %d holds %q", seq, blk, bytes.TrimRight(got, "\x00")))
			}
		}
	}
	if nbad == 0 {
		return fmt.Sprintf("%d writes of node %d read back", acked, node), nil
	}
	return fmt.Sprintf("%d of %d acknowledged writes of node %d lost: %s", nbad, acked, node, strings.Join(bad, "; ")), nil
}

// compareLegs reads both legs whole and returns "identical" or where they
// differ, by region.
func compareLegs() (string, error) {
	return compareByRegion(legADev, legBDev, clLegBytes, clusterRegion*512)
}

// compareByRegion reads size bytes of two devices and returns "identical"
// or which regions of rbytes differ.
func compareByRegion(devA, devB string, size, rbytes int) (string, error) {
	a, b, err := readBoth(devA, devB, 0, size)
	if err != nil {
		return "", err
	}
	var diff []int
	for r := 0; r*rbytes < size; r++ {
		end := min((r+1)*rbytes, size)
		if !bytes.Equal(a[r*rbytes:end], b[r*rbytes:end]) {
			diff = append(diff, r)
		}
	}
	if len(diff) == 0 {
		return "identical", nil
	}
	return fmt.Sprintf("%d of %d regions differ: %s", len(diff), (size+rbytes-1)/rbytes, runs(diff)), nil
}

// ---- corosync and dlogd in the guest ------------------------------------------------------

// clusterUp brings this node into the cluster: the NIC, corosync, dlogd
// (with dlogdArgs added to its serve options). It registers their
// shutdown.
func clusterUp(s *S, c clusterCfg, dlogdArgs ...string) (*Dlogd, *exec.Cmd) {
	s.Do("load virtio_net", 30*time.Second, func(ctx context.Context) error {
		if err := loadModules("virtio_net"); err != nil {
			return err
		}
		return waitPath("/sys/class/net/eth0", 10*time.Second)
	})
	s.Do(fmt.Sprintf("network: lo and eth0 up, %s/24", nodeAddr(c.node)), 30*time.Second, func(ctx context.Context) error {
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", nodeAddr(c.node) + "/24", "dev", "eth0"},
			{"link", "set", "eth0", "up"},
		} {
			if _, err := run(ctx, "ip", args...); err != nil {
				return err
			}
		}
		return nil
	})
	s.Do("corosync's directories and /dev/shm (tmpfs)", 10*time.Second, func(ctx context.Context) error {
		if err := makeCorosyncDirs(); err != nil {
			return err
		}
		return os.WriteFile("/etc/corosync/corosync.conf", []byte(corosyncConf(c.nodes)), 0o644)
	})
	var coro *exec.Cmd
	s.Do("start corosync -f", 10*time.Second, func(ctx context.Context) (err error) {
		coro, err = startCorosync()
		return err
	})
	s.Defer("stop corosync", 15*time.Second, func(ctx context.Context) error {
		_ = coro.Process.Signal(syscall.SIGTERM)
		return nil
	})
	s.Do(fmt.Sprintf("corosync: quorate with all %d nodes", c.nodes), 3*time.Minute, func(ctx context.Context) error {
		return waitMembers(ctx, c.nodes, true)
	})
	d := NewDlogd()
	d.Args = []string{"serve", "--transport", "netlink", "--cluster", "corosync", "--pidfile", d.PidFile,
		"--fence-confirm", vmharness.GuestDriverPath + " fenced %n"}
	d.Args = append(d.Args, dlogdArgs...)
	if err := d.Present(); err != nil {
		s.Fail("start dlogd --cluster corosync", "a cgo dlogd in the initramfs", "absent", err.Error())
	}
	s.Defer("stop dlogd", 10*time.Second, func(ctx context.Context) error { return d.Stop(5 * time.Second) })
	s.Do("start dlogd --cluster corosync", 90*time.Second, func(ctx context.Context) error {
		return d.Start(ctx, 60*time.Second) // three TCG guests on a busy host start slowly
	})
	return d, coro
}

// startCorosync starts corosync in the foreground in its own process
// group, its output appended to outDir/corosync.log.
func startCorosync() (*exec.Cmd, error) {
	logf, err := os.OpenFile(outDir+"/corosync.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	coro := exec.Command("/usr/sbin/corosync", "-f")
	coro.Stdout, coro.Stderr = logf, logf
	coro.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := coro.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { coro.Wait(); logf.Close() }()
	return coro, nil
}

// fenceSector is the mailbox sector where the host records that it killed
// node's qemu (tests/vm/cluster_test.go must agree).
func fenceSector(node int) int64 { return int64(64+node) * mbSlot }

// fenceRecord is what the host writes there.
func fenceRecord(node int) string { return fmt.Sprintf("dlogvmc fenced node=%d\n", node) }

// fencedMain is dlogd's --fence-confirm command in the guest
// (dlog-vmguest fenced <corosync node id>): it exits 0 once the host has
// recorded in the mailbox that it killed that node's qemu, the harness's
// fencing device; 1 until then.
func fencedMain(arg string) int {
	node, err := strconv.Atoi(arg)
	if err != nil || node < 1 || node > 8 {
		fmt.Fprintf(os.Stderr, "dlog-vmguest fenced: node %q: want 1 to 8\n", arg)
		return 2
	}
	f, buf, done, err := openDirectBuf(mailboxDev, os.O_RDONLY, mbSlot)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dlog-vmguest fenced: %v\n", err)
		return 1
	}
	defer done()
	if _, err := f.ReadAt(buf, fenceSector(node)); err != nil {
		fmt.Fprintf(os.Stderr, "dlog-vmguest fenced: %v\n", err)
		return 1
	}
	if !bytes.HasPrefix(buf, []byte(fenceRecord(node))) {
		fmt.Fprintf(os.Stderr, "dlog-vmguest fenced: node %d not fenced by the host (yet)\n", node)
		return 1
	}
	fmt.Printf("node %d fenced: the host killed its qemu\n", node)
	return 0
}

// members is corosync's view: the number of member nodes and whether the
// partition is quorate (corosync-quorumtool -s).
func members(ctx context.Context) (int, bool, error) {
	out, err := exec.CommandContext(ctx, "/usr/sbin/corosync-quorumtool", "-s").CombinedOutput()
	// It exits non-zero when not quorate: parse the output either way.
	n, quorate := -1, false
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Total votes":
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		case "Quorate":
			quorate = strings.TrimSpace(v) == "Yes"
		}
	}
	if n < 0 {
		if err == nil {
			err = errors.New("no 'Total votes' line")
		}
		return 0, false, fmt.Errorf("corosync-quorumtool -s: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return n, quorate, nil
}

func waitMembers(ctx context.Context, n int, quorate bool) error {
	last := "nothing yet"
	for {
		got, q, err := members(ctx)
		if err == nil && got == n && q == quorate {
			logCmd("# corosync: %d members, quorate=%v", got, q)
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d votes, quorate=%v", got, q)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("want %d members, quorate=%v; last: %s", n, quorate, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
