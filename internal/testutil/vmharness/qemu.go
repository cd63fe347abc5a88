package vmharness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is one boot.
type Config struct {
	Kernel *Kernel // from FindKernel or EnsureKernel
	Guest  string  // the static guest driver (CGO_ENABLED=0 go build ./tests/vmguest)
	Dlogd  string  // optional: a static dlogd, installed as /sbin/dlogd
	Files  []File  // optional extra files for the overlay

	Options   Options  // scenarios, guest watchdog, verbosity
	ExtraArgs []string // more kernel command-line words

	// Timeout bounds the whole boot on the host; qemu is killed when it
	// expires. Zero means Options.Timeout plus two minutes, or 10 minutes
	// when that is zero too.
	Timeout time.Duration

	// WorkDir receives initrd.gz, results.img and console.log. Required.
	WorkDir string

	// Console, when set, receives the serial console live, each line
	// prefixed with ConsolePrefix and stripped of terminal escapes.
	Console       io.Writer
	ConsolePrefix string

	MemoryMB int // default 1024
	// CPUs is the guest's vCPU count (-smp), default 1. Under TCG each
	// vCPU is a host thread (MTTCG): a second one takes a host core from
	// whatever else runs there.
	CPUs          int
	ResultsDiskMB int    // default 64
	QEMU          string // default qemu-system-x86_64

	// Disks are extra raw disk images, attached after the results disk:
	// the guest sees them as /dev/vdb, /dev/vdc, ... in this order. Unlike
	// the results disk they are not recreated, so they persist from one
	// boot to the next (the crash test keeps its log device in one).
	Disks []string

	// SharedDisks are raw images that several guests open at once (the
	// cluster tests' mirror legs, log device and mailbox): attached after
	// Disks as virtio-blk-pci with cache=none (O_DIRECT on the host, so a
	// write that completes in one guest is what the others read; the
	// images must not be on tmpfs), share-rw=on and no image locking.
	SharedDisks []string

	// SharedDiscard passes the guests' discards on the shared disks through
	// to the image files (discard=unmap: qemu punches a hole, which then
	// reads as zeros); without it qemu ignores them.
	SharedDiscard bool

	// Initrds are extra cpio archives appended after the cached base and
	// before the overlay (the cluster tests' corosync and network modules).
	Initrds []string

	// NetArgs are extra qemu arguments for networking (a -netdev and a
	// -device per NIC); without them the guest has no network.
	NetArgs []string

	// KillOn, when not empty, kills qemu with SIGKILL (a power cut: the
	// guest's caches and qemu's in-flight requests are lost, what reached
	// the host's page cache stays) KillDelay after the first console line
	// that contains it. Run then returns with Result.Killed set and no error.
	KillOn    string
	KillDelay time.Duration
}

// Result is what came back from one boot.
type Result struct {
	Report      *Report           // nil when the results disk had no report
	Files       map[string][]byte // every file from the results disk
	ConsoleLog  string            // path of the full serial console log
	ResultsDisk string            // path of the raw results disk
	Elapsed     time.Duration
	TimedOut    bool // qemu was killed by the timeout
	Killed      bool // qemu was killed on purpose at Config.KillOn
}

// Defaults.
const (
	DefaultMemoryMB      = 1024
	DefaultResultsDiskMB = 64
	DefaultQEMU          = "qemu-system-x86_64"
)

// QEMUArgs is the qemu command line for one boot: TCG (the host has no
// usable KVM), cpus vCPUs (1 unless a test measures what a second CPU
// gives: on a 2-core host it adds noise), no display, no reboot (a guest panic or poweroff ends qemu), the
// results disk as the only virtio disk, no network (which also skips the
// iPXE option ROM).
func QEMUArgs(vmlinuz, initrd, resultsDisk, cmdline string, memoryMB, cpus int, disks ...string) []string {
	args := []string{
		"-accel", "tcg", "-cpu", "max",
		"-m", fmt.Sprintf("%dM", memoryMB), "-smp", strconv.Itoa(max(cpus, 1)),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", vmlinuz,
		"-initrd", initrd,
		"-append", cmdline,
		"-drive", driveArg(resultsDisk),
	}
	for _, d := range disks {
		args = append(args, "-drive", driveArg(d))
	}
	return args
}

// SharedDiskArgs attaches raw images that other qemu processes open at the
// same time: no host page cache (cache=none is O_DIRECT), no image locking,
// and share-rw on the virtio-blk device. Each sits in a fixed PCI slot from
// SharedDiskSlot on, after the slots qemu gives the results disk and Disks
// (the guest names virtio disks in PCI order: /dev/vda stays the results
// disk), and carries the serial dlog-shared<i> (/sys/block/vdX/serial).
// With unmap, a discard from the guest punches a hole in the image
// (discard=unmap on the raw node; its file child inherits unmap); without
// it qemu ignores discards (its default, discard=ignore).
func SharedDiskArgs(files []string, unmap bool) []string {
	var args []string
	discard := ""
	if unmap {
		discard = ",discard=unmap"
	}
	for i, f := range files {
		id := fmt.Sprintf("shared%d", i)
		args = append(args,
			"-blockdev", fmt.Sprintf("driver=raw,node-name=%s%s,file.driver=file,file.filename=%s,file.locking=off,file.aio=threads,cache.direct=on,cache.no-flush=off",
				id, discard, strings.ReplaceAll(f, ",", ",,")),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,share-rw=on,serial=dlog-shared%d,addr=0x%x", id, i, SharedDiskSlot+i))
	}
	return args
}

// SharedDiskSlot is the PCI slot of the first shared disk; qemu's automatic
// slots for the NIC, the results disk and Disks stay below it.
const SharedDiskSlot = 0x10

// driveArg is a raw virtio -drive value; qemu escapes a comma as ",,".
func driveArg(file string) string {
	return "file=" + strings.ReplaceAll(file, ",", ",,") + ",format=raw,if=virtio"
}

// Run boots the kernel with the overlay, waits for the guest to power off
// (or the timeout), and reads back the results disk.
//
// The returned error is nil only when qemu exited on its own and the
// results disk held a report; the Result is returned in every case with
// whatever was collected, so a caller can show the console log.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Kernel == nil {
		return nil, ErrNoKernel
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("vmharness: Config.WorkDir is empty")
	}
	qemu := cfg.QEMU
	if qemu == "" {
		qemu = DefaultQEMU
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		return nil, fmt.Errorf("vmharness: %s not found: run 'make deps' (apt-get install --no-install-recommends qemu-system-x86)", qemu)
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = DefaultMemoryMB
	}
	diskMB := cfg.ResultsDiskMB
	if diskMB == 0 {
		diskMB = DefaultResultsDiskMB
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
		if cfg.Options.Timeout > 0 {
			timeout = cfg.Options.Timeout + 2*time.Minute
		}
	}
	cmdline, err := KernelCmdline(cfg.Options, cfg.ExtraArgs...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("vmharness: %w", err)
	}
	res := &Result{
		ConsoleLog:  filepath.Join(cfg.WorkDir, "console.log"),
		ResultsDisk: filepath.Join(cfg.WorkDir, "results.img"),
	}

	overlay, err := BuildOverlay(cfg.Guest, cfg.Dlogd, cfg.Files)
	if err != nil {
		return res, err
	}
	initrd := filepath.Join(cfg.WorkDir, "initrd.gz")
	if err := WriteInitrd(initrd, cfg.Kernel.BaseInitrd, overlay, cfg.Initrds...); err != nil {
		return res, err
	}
	// A fresh, sparse, zero-filled results disk: an archive found there can
	// only have come from this boot.
	_ = os.Remove(res.ResultsDisk)
	disk, err := os.OpenFile(res.ResultsDisk, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return res, fmt.Errorf("vmharness: results disk: %w", err)
	}
	if err := disk.Truncate(int64(diskMB) << 20); err != nil {
		disk.Close()
		return res, fmt.Errorf("vmharness: results disk: %w", err)
	}
	disk.Close()

	logf, err := os.Create(res.ConsoleLog)
	if err != nil {
		return res, fmt.Errorf("vmharness: console log: %w", err)
	}
	defer logf.Close()
	for _, d := range append(append([]string(nil), cfg.Disks...), cfg.SharedDisks...) {
		if _, err := os.Stat(d); err != nil {
			return res, fmt.Errorf("vmharness: extra disk: %w", err)
		}
	}
	var console io.Writer = logf
	var live *ConsoleLines
	if cfg.Console != nil {
		live = prefixLines(cfg.Console, cfg.ConsolePrefix)
		console = io.MultiWriter(logf, live)
	}

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := QEMUArgs(cfg.Kernel.Vmlinuz, initrd, res.ResultsDisk, cmdline, mem, cfg.CPUs, cfg.Disks...)
	args = append(args, SharedDiskArgs(cfg.SharedDisks, cfg.SharedDiscard)...)
	args = append(args, cfg.NetArgs...)
	cmd := exec.CommandContext(runCtx, qemuPath, args...)
	var killer *markerKiller
	if cfg.KillOn != "" {
		killer = &markerKiller{marker: cfg.KillOn, delay: cfg.KillDelay}
		console = io.MultiWriter(console, killer)
	}
	cmd.Stdout, cmd.Stderr = console, console
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("vmharness: starting qemu: %w", err)
	}
	if killer != nil {
		killer.arm(cmd.Process)
	}
	runErr := cmd.Wait()
	res.Elapsed = time.Since(start)
	if live != nil {
		live.Flush()
	}
	if killer != nil && killer.fired() {
		res.Killed = true
		files, _ := ReadResults(res.ResultsDisk) // normally empty: the guest never got to write
		res.Files = files
		return res, nil
	}
	if runCtx.Err() != nil && ctx.Err() == nil {
		res.TimedOut = true
	}

	files, readErr := ReadResults(res.ResultsDisk)
	res.Files = files
	if b, ok := files[ReportFile]; ok {
		rep, err := ParseReport(b)
		if err != nil && readErr == nil {
			readErr = err
		}
		res.Report = rep
	}

	switch {
	case res.TimedOut:
		return res, fmt.Errorf("vmharness: qemu timed out after %v and was killed (a hung mirror or guest); console log %s ends with:\n%s",
			timeout, res.ConsoleLog, ConsoleTail(res.ConsoleLog, 25))
	case ctx.Err() != nil:
		return res, fmt.Errorf("vmharness: boot cancelled: %w", ctx.Err())
	case runErr != nil:
		return res, fmt.Errorf("vmharness: qemu failed: %v; console log %s ends with:\n%s", runErr, res.ConsoleLog, ConsoleTail(res.ConsoleLog, 25))
	case readErr != nil:
		return res, fmt.Errorf("vmharness: %w; console log %s ends with:\n%s", readErr, res.ConsoleLog, ConsoleTail(res.ConsoleLog, 25))
	case res.Report == nil:
		return res, fmt.Errorf("vmharness: results disk has no %s (files: %s); console log %s ends with:\n%s",
			ReportFile, strings.Join(sortedKeys(files), " "), res.ConsoleLog, ConsoleTail(res.ConsoleLog, 25))
	}
	return res, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ConsoleTail returns the last n lines of a console log, cleaned of carriage
// returns and terminal escapes, for error messages.
func ConsoleTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no console log: " + err.Error() + ")"
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, "  | "+CleanConsoleLine(sc.Text()))
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "  | (empty: qemu printed nothing)"
	}
	return strings.Join(lines, "\n")
}

// CleanConsoleLine drops carriage returns, ANSI/VT100 escape sequences
// (SeaBIOS clears the screen with them) and other control characters.
func CleanConsoleLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x1b:
			// ESC [ params final, or ESC + one character.
			if i+1 < len(s) && s[i+1] == '[' {
				j := i + 2
				for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
					j++
				}
				i = j
			} else {
				i++
			}
		case c == '\t' || c >= 0x20 && c != 0x7f:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ConsoleLines is an io.Writer that cuts a serial console's output into
// lines, cleans each (CleanConsoleLine) and hands it to Line. Flush hands
// over a trailing partial line. Writes may come from several goroutines;
// Line is called by one at a time.
type ConsoleLines struct {
	Line func(string)

	mu  sync.Mutex
	buf []byte
}

// Write hands every line p completes to Line; it never fails.
func (c *ConsoleLines) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			break
		}
		c.Line(CleanConsoleLine(string(c.buf[:i])))
		c.buf = c.buf[i+1:]
	}
	return len(p), nil
}

// Flush hands a trailing partial line to Line.
func (c *ConsoleLines) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) > 0 {
		c.Line(CleanConsoleLine(string(c.buf)))
		c.buf = nil
	}
}

// prefixLines writes each console line to w behind prefix, best effort
// (the log file has everything).
func prefixLines(w io.Writer, prefix string) *ConsoleLines {
	return &ConsoleLines{Line: func(l string) { _, _ = io.WriteString(w, prefix+l+"\n") }}
}

// markerKiller watches the console for a marker and kills qemu when it
// appears (after a delay).
type markerKiller struct {
	mu     sync.Mutex
	marker string
	delay  time.Duration
	buf    []byte
	proc   *os.Process
	seen   bool
	killed bool
}

func (k *markerKiller) arm(p *os.Process) {
	k.mu.Lock()
	k.proc = p
	seen := k.seen
	k.mu.Unlock()
	if seen {
		k.kill()
	}
}

func (k *markerKiller) Write(p []byte) (int, error) {
	k.mu.Lock()
	if k.seen {
		k.mu.Unlock()
		return len(p), nil
	}
	k.buf = append(k.buf, p...)
	found := false
	for {
		i := bytes.IndexByte(k.buf, '\n')
		if i < 0 {
			break
		}
		if bytes.Contains(k.buf[:i], []byte(k.marker)) {
			found = true
		}
		k.buf = k.buf[i+1:]
	}
	if found {
		k.seen = true
	}
	armed := k.proc != nil
	k.mu.Unlock()
	if found && armed {
		k.kill()
	}
	return len(p), nil
}

func (k *markerKiller) kill() {
	go func() {
		if k.delay > 0 {
			time.Sleep(k.delay)
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.proc != nil && !k.killed {
			k.killed = k.proc.Kill() == nil
		}
	}()
}

func (k *markerKiller) fired() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killed
}
