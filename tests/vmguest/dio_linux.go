//go:build linux

package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// alignedBuf returns n bytes of page-aligned memory (O_DIRECT needs the
// buffer aligned to the logical block size) and a function that frees it.
func alignedBuf(n int) ([]byte, func(), error) {
	size := (n + 4095) &^ 4095
	if size == 0 {
		size = 4096
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	return b[:n], func() { _ = unix.Munmap(b) }, nil
}

// openDirect opens a block device with O_DIRECT and refuses anything that
// is not a block device: without udev, a missing /dev/mapper node would
// otherwise be created as a regular file and "written" (docs/vm.md §6 pitfall 1).
func openDirect(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_DIRECT, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		f.Close()
		return nil, fmt.Errorf("%s is not a block device (missing dmsetup mknodes?)", path)
	}
	return f, nil
}

// writeDirect writes data at off in bs-sized O_DIRECT writes (a 1 MiB and a
// 4 KiB workload differ in how many region bios the mirror sees).
func writeDirect(ctx context.Context, path string, off int64, data []byte, bs int) error {
	return writeDirectFlags(ctx, path, 0, off, data, bs, nil)
}

// writeDirectCount is writeDirect that counts completed writes in n (nil:
// no count).
func writeDirectCount(ctx context.Context, path string, off int64, data []byte, bs int, n *atomic.Int64) error {
	return writeDirectFlags(ctx, path, 0, off, data, bs, n)
}

// writeDirectFlags is writeDirectCount with more open flags (O_DSYNC: each
// write a REQ_FUA bio).
func writeDirectFlags(ctx context.Context, path string, flag int, off int64, data []byte, bs int, n *atomic.Int64) error {
	if bs <= 0 || len(data)%bs != 0 || off%512 != 0 {
		return fmt.Errorf("writeDirect: %d bytes at %d in %d-byte blocks is not aligned", len(data), off, bs)
	}
	f, buf, done, err := openDirectBuf(path, os.O_WRONLY|flag, bs)
	if err != nil {
		return err
	}
	defer done()
	for i := 0; i < len(data); i += bs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write %s at %d: %w", path, off+int64(i), err)
		}
		copy(buf, data[i:i+bs])
		if _, err := f.WriteAt(buf, off+int64(i)); err != nil {
			return fmt.Errorf("write %s at %d: %w", path, off+int64(i), err)
		}
		if n != nil {
			n.Add(1)
		}
	}
	return nil
}

// openDirectBuf opens path with O_DIRECT (openDirect) and allocates an
// aligned n-byte buffer for its I/O; done frees the buffer and closes the
// file.
func openDirectBuf(path string, flag, n int) (f *os.File, buf []byte, done func(), err error) {
	f, err = openDirect(path, flag)
	if err != nil {
		return nil, nil, nil, err
	}
	buf, free, err := alignedBuf(n)
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return f, buf, func() { free(); f.Close() }, nil
}

// readBoth reads n bytes at off of two devices (a mirror's legs) with
// O_DIRECT, for comparing them.
func readBoth(a, b string, off int64, n int) ([]byte, []byte, error) {
	da, err := readDirect(a, off, n)
	if err != nil {
		return nil, nil, err
	}
	db, err := readDirect(b, off, n)
	return da, db, err
}

// readDirect reads n bytes at off with O_DIRECT, bypassing the page cache
// (which would be stale: dm-mirror writes the legs underneath it).
func readDirect(path string, off int64, n int) ([]byte, error) {
	f, buf, done, err := openDirectBuf(path, os.O_RDONLY, n)
	if err != nil {
		return nil, err
	}
	defer done()
	const chunk = 1 << 20
	for i := 0; i < n; i += chunk {
		end := min(i+chunk, n)
		if _, err := f.ReadAt(buf[i:end], off+int64(i)); err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", path, off+int64(i), err)
		}
	}
	return append([]byte(nil), buf...), nil
}

// md5Direct is the md5 of n bytes at off, read with O_DIRECT.
func md5Direct(path string, off int64, n int) (string, error) {
	b, err := readDirect(path, off, n)
	if err != nil {
		return "", err
	}
	return md5hex(b), nil
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
