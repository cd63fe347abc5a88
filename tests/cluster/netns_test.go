package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// net is the test's private network: a hub namespace with a bridge and one
// namespace per node.
type testNet struct {
	t      testing.TB
	prefix string
	subnet string // "10.213.N"
	nodes  int
	dir    string
	tr     string // corosync transport: udpu or knet
	bin    string // dlogd built with cgo
	procs  map[string]*exec.Cmd
	down   bool
}

// netSeq tells apart the networks of one test process.
var netSeq int

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t testing.TB, nodes int, tr string) *testNet {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	for _, b := range []string{"ip", "unshare", "corosync"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (make cluster-deps)", b)
		}
	}
	pid := os.Getpid()
	netSeq++
	n := &testNet{t: t, prefix: fmt.Sprintf("dlogc%d%c", pid%100000, 'a'+rune(netSeq%26)), subnet: fmt.Sprintf("10.213.%d", (pid+netSeq)%250+1),
		nodes: nodes, dir: t.TempDir(), tr: tr, procs: map[string]*exec.Cmd{}}
	t.Cleanup(n.teardown)
	hub := n.prefix + "-hub"
	run(t, "ip", "netns", "add", hub)
	run(t, "ip", "-n", hub, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", hub, "link", "set", "br0", "up")
	for i := 1; i <= nodes; i++ {
		ns := n.ns(i)
		v, p := fmt.Sprintf("%sv%d", n.prefix, i), fmt.Sprintf("%sp%d", n.prefix, i)
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "link", "add", v, "type", "veth", "peer", "name", p)
		run(t, "ip", "link", "set", v, "netns", ns)
		run(t, "ip", "link", "set", p, "netns", hub)
		run(t, "ip", "-n", ns, "addr", "add", n.addr(i)+"/24", "dev", v)
		run(t, "ip", "-n", ns, "link", "set", v, "up")
		run(t, "ip", "-n", hub, "link", "set", p, "master", "br0")
		run(t, "ip", "-n", hub, "link", "set", p, "up")
		os.MkdirAll(n.nodeDir(i), 0o755)
		os.WriteFile(filepath.Join(n.nodeDir(i), "corosync.conf"), []byte(n.corosyncConf(i)), 0o644)
	}
	n.bin = filepath.Join(n.dir, "dlogd")
	build := exec.Command("go", "build", "-tags", "corosync", "-o", n.bin, "github.com/dlog-dev/dlog/cmd/dlogd")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building dlogd with cgo: %v: %s", err, out)
	}
	return n
}

func (n *testNet) ns(i int) string      { return fmt.Sprintf("%s-n%d", n.prefix, i) }
func (n *testNet) addr(i int) string    { return fmt.Sprintf("%s.%d", n.subnet, i) }
func (n *testNet) nodeDir(i int) string { return filepath.Join(n.dir, fmt.Sprintf("n%d", i)) }
func (n *testNet) sock(i int) string    { return filepath.Join(n.nodeDir(i), "dlogd.sock") }

// corosyncConf is node i's configuration: the chosen transport on the
// nodes' veth addresses, a short token so deaths are seen in about 2 s,
// votequorum, logs to stderr, state in the node's directory.
func (n *testNet) corosyncConf(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "totem {\n\tversion: 2\n\tcluster_name: dlogtest\n\ttransport: %s\n\tcrypto_cipher: none\n\tcrypto_hash: none\n\ttoken: 1000\n\tconsensus: 1200\n}\n", n.tr)
	b.WriteString("nodelist {\n")
	for k := 1; k <= n.nodes; k++ {
		fmt.Fprintf(&b, "\tnode {\n\t\tring0_addr: %s\n\t\tnodeid: %d\n\t\tname: n%d\n\t}\n", n.addr(k), k, k)
	}
	b.WriteString("}\nquorum {\n\tprovider: corosync_votequorum\n}\n")
	fmt.Fprintf(&b, "logging {\n\tto_stderr: yes\n\tto_syslog: no\n\tto_logfile: no\n\ttimestamp: on\n}\nsystem {\n\tstate_dir: %s\n}\n", n.nodeDir(i))
	return b.String()
}

func (n *testNet) start(name string, i int, args ...string) {
	n.t.Helper()
	log, err := os.OpenFile(filepath.Join(n.nodeDir(i), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	fmt.Fprintf(log, "---- started %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns(i)}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	key := fmt.Sprintf("%s%d", name, i)
	n.procs[key] = cmd
	go func() { cmd.Wait(); log.Close() }()
}

// startNode starts node i's corosync (in a private /run, for its lock
// file) and, once it answers, its dlogd.
func (n *testNet) startNode(i int, cluster bool) {
	n.t.Helper()
	conf := filepath.Join(n.nodeDir(i), "corosync.conf")
	n.start("corosync", i, "unshare", "-m", "sh", "-c", "mount -t tmpfs none /run && exec corosync -f -c "+conf)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command("ip", "netns", "exec", n.ns(i), "corosync-cfgtool", "-s").CombinedOutput()
		if bytes.Contains(out, []byte("Local node ID")) {
			break
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("corosync on node %d does not answer: %s", i, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.startDlogd(i, cluster)
}

func (n *testNet) startDlogd(i int, cluster bool) {
	n.t.Helper()
	os.Remove(n.sock(i))
	args := []string{n.bin, "serve", "--transport", "unix:" + n.sock(i), "--pidfile", filepath.Join(n.nodeDir(i), "dlogd.pid"),
		"--control", "none", "--no-mlock", "--force"}
	if cluster {
		// The test kills a node's corosync and dlogd together with its
		// kernel (the model stops): a killed node is fenced.
		args = append(args, "--cluster", "corosync", "--fence-confirm", "true")
	}
	n.start("dlogd", i, args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(n.sock(i)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("dlogd on node %d does not listen", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills node i's dlogd and corosync with SIGKILL.
func (n *testNet) kill(i int) {
	for _, name := range []string{"dlogd", "corosync"} {
		if c := n.procs[fmt.Sprintf("%s%d", name, i)]; c != nil && c.Process != nil {
			c.Process.Signal(syscall.SIGKILL)
		}
	}
	time.Sleep(10 * time.Millisecond)
}

func (n *testNet) teardown() {
	if n.down {
		return
	}
	n.down = true
	for _, c := range n.procs {
		if c.Process != nil {
			c.Process.Signal(syscall.SIGKILL)
		}
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i <= n.nodes; i++ {
		exec.CommandContext(ctx, "ip", "netns", "del", n.ns(i)).Run()
	}
	exec.CommandContext(ctx, "ip", "netns", "del", n.prefix+"-hub").Run()
	if n.t.Failed() {
		for i := 1; i <= n.nodes; i++ {
			for _, name := range []string{"dlogd", "corosync"} {
				b, _ := os.ReadFile(filepath.Join(n.nodeDir(i), name+".log"))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				n.t.Logf("---- node %d %s log (tail):\n%s", i, name, b)
			}
		}
	}
}
