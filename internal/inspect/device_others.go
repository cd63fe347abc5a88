//go:build !linux

package inspect

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// direct is empty: O_DIRECT reads are Linux-only.
type direct struct{}

// Open opens an image file read-only; block devices and major:minor are
// only understood on Linux.
func Open(arg string) (*Device, error) {
	f, err := os.Open(arg)
	if err != nil {
		return nil, fmt.Errorf("log device: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("log device: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("log device: %s: only regular files are supported on %s/%s", arg, runtime.GOOS, runtime.GOARCH)
	}
	return &Device{Path: arg, Kind: "regular file", Size: st.Size(), f: f}, nil
}

// ReadAt reads len(p) bytes at off.
func (d *Device) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

// Close closes the file.
func (d *Device) Close() error { return d.f.Close() }

var _ io.ReaderAt = (*Device)(nil)
