package vmharness

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// CPIOWriter writes an archive in the "newc" format (SVR4 without CRC, magic
// 070701), the only format the kernel's initramfs unpacker accepts.
//
// Each entry is a 110-byte ASCII header of thirteen 8-digit hex fields, the
// NUL-terminated name, NUL padding to a multiple of 4 bytes, then the data,
// padded the same way. The archive ends with an entry named "TRAILER!!!".
// Modification times are zero and owners are root, so an archive is a pure
// function of its entries.
type CPIOWriter struct {
	w      io.Writer
	ino    uint32
	n      int64
	closed bool
}

// NewCPIOWriter returns a writer that appends entries to w.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 1}
}

// cpioTrailer is the name of the entry that ends a newc archive.
const cpioTrailer = "TRAILER!!!"

// File adds a regular file with permission bits perm (for example 0o755).
func (c *CPIOWriter) File(name string, perm fs.FileMode, data []byte) error {
	return c.entry(name, 0o100000|uint32(perm.Perm()), 1, data)
}

// Dir adds a directory.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	return c.entry(name, 0o040000|uint32(perm.Perm()), 2, nil)
}

// Symlink adds a symbolic link name pointing at target.
func (c *CPIOWriter) Symlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %q: empty target", name)
	}
	return c.entry(name, 0o120777, 1, []byte(target))
}

// Close writes the trailer. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	if c.closed {
		return nil
	}
	if err := c.write(cpioTrailer, 0, 1, nil); err != nil {
		return err
	}
	c.closed = true
	return nil
}

// Len is the number of bytes written so far.
func (c *CPIOWriter) Len() int64 { return c.n }

func (c *CPIOWriter) entry(name string, mode, nlink uint32, data []byte) error {
	if c.closed {
		return errors.New("cpio: write after Close")
	}
	clean, err := cpioName(name)
	if err != nil {
		return err
	}
	return c.write(clean, mode, nlink, data)
}

// cpioName turns "/sbin/x" or "sbin/x" into "sbin/x" and rejects names that
// would escape the archive root or collide with the trailer.
func cpioName(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	if n == "" || n == "." {
		return "", fmt.Errorf("cpio: invalid entry name %q", name)
	}
	if path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("cpio: entry name %q is not a clean relative path", name)
	}
	if n == cpioTrailer {
		return "", fmt.Errorf("cpio: entry name %q is reserved", name)
	}
	return n, nil
}

func (c *CPIOWriter) write(name string, mode, nlink uint32, data []byte) error {
	if uint64(len(data)) > 0xffffffff {
		return fmt.Errorf("cpio: %s: %d bytes is too large for newc", name, len(data))
	}
	ino := uint32(0)
	if name != cpioTrailer {
		ino = c.ino
		c.ino++
	}
	namesize := len(name) + 1
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, namesize, 0)
	buf := make([]byte, 0, len(hdr)+namesize+3)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf)))...)
	if err := c.put(buf); err != nil {
		return err
	}
	if err := c.put(data); err != nil {
		return err
	}
	return c.put(make([]byte, pad4(len(data))))
}

func (c *CPIOWriter) put(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}

// pad4 is the number of NUL bytes that bring n up to a multiple of 4.
func pad4(n int) int { return (4 - n%4) % 4 }
