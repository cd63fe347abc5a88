package engine_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/testutil/diotest"
	"github.com/dlog-dev/dlog/internal/testutil/faultio"
)

// quiet is a logger that drops everything below errors.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))
}

// logFile makes a zero-filled regular file of size bytes to hold a disk log.
func logFile(t testing.TB, size int64) string { return diotest.LogFile(t, size) }

// mustOpen parses args ("core 1 1024", "disk 2 PATH 1024 ...") for a target
// of targetLen sectors and opens the log, closing it at cleanup.
func mustOpen(t testing.TB, targetLen uint64, args string, opts ...engine.Options) engine.Log {
	t.Helper()
	c, err := engine.ParseCtr(fmt.Sprintf("%d %s", targetLen, args))
	if err != nil {
		t.Fatalf("ParseCtr(%q): %v", args, err)
	}
	o := engine.Options{Logger: quiet()}
	if len(opts) > 0 {
		o = opts[0]
		if o.Logger == nil {
			o.Logger = quiet()
		}
	}
	l, err := engine.Open(c, o)
	if err != nil {
		t.Fatalf("Open(%q): %v", args, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readDirect reads the first n bytes of path with O_DIRECT, bypassing the
// page cache: what a kernel reading the device would see.
func readDirect(t testing.TB, path string, n int) []byte { return diotest.ReadDirect(t, path, n) }

// writeImage writes a kernel-format image: header h, clean bits from clean
// (region i clean when clean(i)), bitset for bitsetRegions regions, into a
// file of size bytes.
func writeImage(t testing.TB, size int64, h header.Header, bitsetRegions uint64, clean func(uint64) bool) string {
	t.Helper()
	img := make([]byte, size)
	if err := h.Encode(img); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < bitsetRegions; i++ {
		if clean(i) {
			img[header.BitmapOffset+i/8] |= 1 << (i % 8)
		}
	}
	p := filepath.Join(t.TempDir(), "image.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cleanBit reads region i's clean bit from an image.
func cleanBit(img []byte, i uint64) bool {
	return img[header.BitmapOffset+i/8]&(1<<(i%8)) != 0
}

// faulty returns opts with the log device wrapped in a fault-injecting
// layer driven by f.
func faulty(f *faultio.Faults, opts engine.Options) engine.Options {
	opts.WrapDevice = func(d engine.Device) engine.Device { return faultio.Wrap(d, f) }
	return opts
}
