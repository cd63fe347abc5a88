package vmharness

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
)

// Guest paths of the binaries the overlay carries.
const (
	GuestDriverPath = "/sbin/dlog-vmguest"
	GuestDlogdPath  = "/sbin/dlogd"
)

// InitScript is the overlay's /init. The Go driver does all the work and
// powers the machine off itself; the lines after it only run if it exited
// (a crash, or a bug), and then save what they can so the host still gets a
// results disk instead of a timeout.
const InitScript = `#!/bin/sh
# /init of the dlog VM tests, written by internal/testutil/vmharness.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
` + GuestDriverPath + ` --in-vm
rc=$?
echo "vm-init: dlog-vmguest exited with status $rc without powering off; saving what there is"
[ -e /proc/self ] || mount -t proc proc /proc
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /out
echo "dlog-vmguest exited with status $rc" >> /out/init-fallback.txt
dmesg > /out/dmesg.txt 2>&1
if [ -b /dev/vda ]; then tar cf /dev/vda -C /out . && echo "vm-init: results written to /dev/vda"; fi
sync
poweroff -f
`

// File is an extra file for the overlay.
type File struct {
	Path string // absolute guest path, e.g. /etc/dlog/test.conf
	Mode fs.FileMode
	Data []byte
}

// BuildOverlay returns the gzip-compressed newc archive appended to the base
// initramfs: /init, the guest driver, dlogd when dlogd is not empty, and
// files. Parent directories are created as needed.
func BuildOverlay(guest, dlogd string, files []File) ([]byte, error) {
	all := []File{{Path: "/init", Mode: 0o755, Data: []byte(InitScript)}}
	add := func(src, dst string) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("vmharness: overlay: %w", err)
		}
		all = append(all, File{Path: dst, Mode: 0o755, Data: b})
		return nil
	}
	if guest == "" {
		return nil, fmt.Errorf("vmharness: overlay: no guest driver binary (build ./tests/vmguest with CGO_ENABLED=0)")
	}
	if err := add(guest, GuestDriverPath); err != nil {
		return nil, err
	}
	if dlogd != "" {
		if err := add(dlogd, GuestDlogdPath); err != nil {
			return nil, err
		}
	}
	all = append(all, files...)

	seen := make(map[string]bool)
	var dirs []string
	for _, f := range all {
		p := path.Clean("/" + f.Path)
		if p != "/"+trimSlash(f.Path) {
			return nil, fmt.Errorf("vmharness: overlay: %q is not a clean absolute path", f.Path)
		}
		if seen[p] {
			return nil, fmt.Errorf("vmharness: overlay: %s given twice", p)
		}
		seen[p] = true
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if !seen["dir:"+d] {
				seen["dir:"+d] = true
				dirs = append(dirs, d)
			}
		}
	}
	sort.Strings(dirs) // parents sort before their children

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	cw := NewCPIOWriter(zw)
	for _, d := range dirs {
		if err := cw.Dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, f := range all {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := cw.File(f.Path, mode, f.Data); err != nil {
			return nil, err
		}
	}
	if err := cw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	return s
}

// WriteInitrd writes base, then the extra archives, then overlay to dst.
// Each archive is padded with NULs to a 4-byte boundary, which the
// kernel's unpacker skips.
func WriteInitrd(dst, base string, overlay []byte, extra ...string) error {
	var out []byte
	for i, name := range append([]string{base}, extra...) {
		b, err := os.ReadFile(name)
		if err != nil {
			if i == 0 {
				return fmt.Errorf("vmharness: base initramfs: %w (run make deps)", err)
			}
			return fmt.Errorf("vmharness: extra initramfs: %w", err)
		}
		out = append(out, b...)
		out = append(out, make([]byte, pad4(len(b)))...)
	}
	out = append(out, overlay...)
	return os.WriteFile(dst, out, 0o644)
}
