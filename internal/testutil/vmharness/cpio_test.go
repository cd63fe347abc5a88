package vmharness

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry read back by readCPIO.
type cpioEntry struct {
	name  string
	mode  uint32
	nlink uint32
	data  []byte
}

// readCPIO is a strict newc reader written from the kernel's rules
// (init/initramfs.c): "070701", 13 8-digit hex fields, the name with its NUL,
// padding so that header+name ends on a 4-byte boundary, the data, padding
// to 4 bytes, and a final "TRAILER!!!" entry.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("entry at offset %d is not 4-byte aligned", off)
		}
		if len(b)-off < 110 {
			t.Fatalf("truncated header at %d", off)
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("bad hex field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		mode, nlink, size, namesize := field(1), field(4), field(6), field(11)
		if check := field(12); check != 0 {
			t.Fatalf("check field %d, want 0 for newc", check)
		}
		nameEnd := off + 110 + int(namesize)
		if b[nameEnd-1] != 0 {
			t.Fatalf("name at %d not NUL-terminated", off)
		}
		name := string(b[off+110 : nameEnd-1])
		dataStart := nameEnd + pad4(nameEnd)
		for _, c := range b[nameEnd:dataStart] {
			if c != 0 {
				t.Fatalf("non-NUL name padding in %s", name)
			}
		}
		data := b[dataStart : dataStart+int(size)]
		off = dataStart + int(size) + pad4(int(size))
		if name == cpioTrailer {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name: name, mode: mode, nlink: nlink, data: append([]byte(nil), data...)})
	}
}

func buildSample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	steps := []error{
		w.Dir("/sbin", 0o755),
		w.File("/sbin/tool", 0o755, []byte("#!/bin/sh\necho hi\n")),
		w.File("etc/a", 0o644, []byte("x")),       // 1 byte: 3 bytes of data padding
		w.File("etc/empty", 0o600, nil),           // no data
		w.File("etc/four", 0o644, []byte("1234")), // already aligned
		w.Symlink("bin/sh", "busybox"),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if w.Len() != int64(buf.Len()) {
		t.Fatalf("Len() = %d, wrote %d", w.Len(), buf.Len())
	}
	return buf.Bytes()
}

func TestCPIORoundTrip(t *testing.T) {
	got := readCPIO(t, buildSample(t))
	want := []cpioEntry{
		{"sbin", 0o040755, 2, nil},
		{"sbin/tool", 0o100755, 1, []byte("#!/bin/sh\necho hi\n")},
		{"etc/a", 0o100644, 1, []byte("x")},
		{"etc/empty", 0o100600, 1, nil},
		{"etc/four", 0o100644, 1, []byte("1234")},
		{"bin/sh", 0o120777, 1, []byte("busybox")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.name != w.name || g.mode != w.mode || g.nlink != w.nlink || !bytes.Equal(g.data, w.data) {
			t.Errorf("entry %d: got {%s %o %d %q}, want {%s %o %d %q}", i, g.name, g.mode, g.nlink, g.data, w.name, w.mode, w.nlink, w.data)
		}
	}
}

// TestCPIOHeaderBytes pins one header byte for byte: the layout the
// kernel's unpacker parses.
func TestCPIOHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	if err := w.File("init", 0o755, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	want := "070701" + // magic
		"00000001" + // ino
		"000081ED" + // mode 0100755
		"00000000" + "00000000" + // uid, gid
		"00000001" + // nlink
		"00000000" + // mtime
		"00000002" + // filesize
		"00000000" + "00000000" + "00000000" + "00000000" + // dev and rdev major/minor
		"00000005" + // namesize, "init" + NUL
		"00000000" + // check
		"init\x00" + "\x00" + // 110+5 = 115, padded to 116
		"ab\x00\x00" // data padded to 4
	if got := buf.String(); got != want {
		t.Fatalf("header:\n got %q\nwant %q", got, want)
	}
}

func TestCPIOBadNames(t *testing.T) {
	for _, name := range []string{"", "/", ".", "..", "../x", "a/../b", "a//b", "a/", "TRAILER!!!", "/TRAILER!!!"} {
		w := NewCPIOWriter(&bytes.Buffer{})
		if err := w.File(name, 0o644, nil); err == nil {
			t.Errorf("File(%q) accepted a bad name", name)
		}
	}
	w := NewCPIOWriter(&bytes.Buffer{})
	if err := w.Symlink("x", ""); err == nil {
		t.Error("Symlink with an empty target accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.File("late", 0o644, nil); err == nil {
		t.Error("File after Close accepted")
	}
}

// TestCPIOWithCpioTool checks the archive with GNU cpio, when installed
// (make deps installs it).
func TestCPIOWithCpioTool(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio is not installed (make deps installs it)")
	}
	archive := buildSample(t)
	list := exec.Command(cpio, "-t", "--quiet")
	list.Stdin = bytes.NewReader(archive)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	names := strings.Fields(string(out))
	sort.Strings(names)
	if got, want := strings.Join(names, " "), "bin/sh etc/a etc/empty etc/four sbin sbin/tool"; got != want {
		t.Fatalf("cpio -t lists %q, want %q", got, want)
	}

	dir := t.TempDir()
	for _, d := range []string{"bin", "etc"} { // parents the sample does not create
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	extract := exec.Command(cpio, "-i", "--quiet", "--make-directories", "--no-absolute-filenames")
	extract.Dir = dir
	extract.Stdin = bytes.NewReader(archive)
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"sbin/tool": "#!/bin/sh\necho hi\n", "etc/a": "x", "etc/empty": "", "etc/four": "1234"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: got %q, %v; want %q", name, b, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "sbin/tool")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("sbin/tool mode: %v, %v; want 0755", st.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh: %q, %v; want a symlink to busybox", target, err)
	}
}

func TestBuildOverlay(t *testing.T) {
	dir := t.TempDir()
	guest := filepath.Join(dir, "guest")
	dlogd := filepath.Join(dir, "dlogd")
	for _, f := range []string{guest, dlogd} {
		if err := os.WriteFile(f, []byte("ELF "+filepath.Base(f)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gz, err := BuildOverlay(guest, dlogd, []File{{Path: "/etc/dlog/x.conf", Data: []byte("k=v")}})
	if err != nil {
		t.Fatal(err)
	}
	entries := readCPIO(t, gunzip(t, gz))
	got := make(map[string]cpioEntry)
	var order []string
	for _, e := range entries {
		got[e.name] = e
		order = append(order, e.name)
	}
	if string(got["init"].data) != InitScript || got["init"].mode != 0o100755 {
		t.Errorf("init: %o %q", got["init"].mode, got["init"].data)
	}
	if string(got["sbin/dlog-vmguest"].data) != "ELF guest" || string(got["sbin/dlogd"].data) != "ELF dlogd" {
		t.Errorf("binaries: %q %q", got["sbin/dlog-vmguest"].data, got["sbin/dlogd"].data)
	}
	if e := got["etc/dlog/x.conf"]; string(e.data) != "k=v" || e.mode != 0o100644 {
		t.Errorf("extra file: %o %q", e.mode, e.data)
	}
	// Parents come before children: the kernel does not create them.
	pos := func(n string) int {
		for i, o := range order {
			if o == n {
				return i
			}
		}
		t.Fatalf("%s missing from %v", n, order)
		return -1
	}
	if !(pos("etc") < pos("etc/dlog") && pos("etc/dlog") < pos("etc/dlog/x.conf") && pos("sbin") < pos("sbin/dlogd")) {
		t.Errorf("directories not before their files: %v", order)
	}

	if _, err := BuildOverlay(guest, "", []File{{Path: "/sbin/dlog-vmguest"}}); err == nil {
		t.Error("a duplicate path was accepted")
	}
	if _, err := BuildOverlay(guest, "", []File{{Path: "/a/../b"}}); err == nil {
		t.Error("an unclean path was accepted")
	}
	if _, err := BuildOverlay("", "", nil); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("no guest: %v", err)
	}
	if _, err := BuildOverlay(filepath.Join(dir, "missing"), "", nil); err == nil {
		t.Error("a missing guest binary was accepted")
	}
}

func TestWriteInitrd(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	if err := os.WriteFile(base, []byte("12345"), 0o644); err != nil { // 5 bytes: 3 of padding
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "initrd")
	if err := WriteInitrd(dst, base, []byte("OV")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dst)
	if want := "12345\x00\x00\x00OV"; string(b) != want {
		t.Fatalf("initrd %q, want %q", b, want)
	}
	if err := WriteInitrd(dst, filepath.Join(dir, "nope"), nil); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("missing base: %v", err)
	}
}

func ExampleCPIOWriter() {
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	_ = w.Dir("sbin", fs.FileMode(0o755))
	_ = w.File("sbin/hello", 0o755, []byte("#!/bin/sh\necho hello\n"))
	_ = w.Close()
	fmt.Println(buf.Len()%4 == 0, strings.HasPrefix(buf.String(), "070701"))
	// Output: true true
}
