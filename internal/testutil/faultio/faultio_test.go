package faultio_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/faultio"
	"github.com/dlog-dev/dlog/iouring"
)

// fileDevice is a plain device over a file, the thing faultio wraps.
type fileDevice struct{ f *os.File }

func (d fileDevice) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }
func (d fileDevice) Write(bs []iouring.Block, sync bool) error {
	for _, b := range bs {
		if _, err := d.f.WriteAt(b.Buf, b.Off); err != nil {
			return err
		}
	}
	if sync {
		return d.f.Sync()
	}
	return nil
}
func (d fileDevice) Sync() error  { return d.f.Sync() }
func (d fileDevice) Close() error { return d.f.Close() }

func open(t *testing.T) (fileDevice, string) {
	p := filepath.Join(t.TempDir(), "dev")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 16)
	t.Cleanup(func() { f.Close() })
	return fileDevice{f}, p
}

func block(off int64, v byte) iouring.Block {
	b := make([]byte, 4096)
	for i := range b {
		b[i] = v
	}
	return iouring.Block{Off: off, Buf: b}
}

func TestCountersAndErrors(t *testing.T) {
	d, p := open(t)
	f := &faultio.Faults{FailWrites: 1, FailSyncs: 1, FailReads: 1}
	w := faultio.Wrap(d, f)
	err := w.Write([]iouring.Block{block(0, 1), block(4096, 2)}, true)
	var be *iouring.BatchError
	if !errors.As(err, &be) || len(be.Writes) != 1 || be.Writes[0].Index != 0 || !errors.Is(be.Writes[0].Err, syscall.EIO) || !errors.Is(be.Sync, syscall.EIO) {
		t.Fatalf("Write = %v; want block 0 and the sync failed with EIO", err)
	}
	got, _ := os.ReadFile(p)
	if got[0] != 0 || got[4096] != 2 {
		t.Fatalf("the failed block was written (%d) or the good one was not (%d)", got[0], got[4096])
	}
	if _, err := w.ReadAt(make([]byte, 512), 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("ReadAt = %v, want EIO", err)
	}
	if c := f.Snapshot(); c != (faultio.Counts{ReadErrors: 1, WriteErrors: 1, SyncErrors: 1}) {
		t.Fatalf("counts %+v", c)
	}
	if err := w.Write([]iouring.Block{block(0, 3)}, true); err != nil {
		t.Fatalf("faults used up, Write = %v", err)
	}
}

func TestTearKillsTheDevice(t *testing.T) {
	d, p := open(t)
	f := &faultio.Faults{TearNext: true}
	w := faultio.Wrap(d, f)
	var blocks []iouring.Block
	for i := 0; i < 8; i++ {
		blocks = append(blocks, block(int64(i)*4096, 0xAA))
	}
	if err := w.Write(blocks, true); !errors.Is(err, faultio.ErrDead) {
		t.Fatalf("torn Write = %v, want ErrDead", err)
	}
	if !f.Dead() {
		t.Fatal("device not dead after a tear")
	}
	if err := w.Write(blocks[:1], false); !errors.Is(err, faultio.ErrDead) {
		t.Fatalf("Write after the tear = %v", err)
	}
	// Every sector is either old (0) or new (0xAA): a prefix of each block.
	got, _ := os.ReadFile(p)
	for b := 0; b < 8; b++ {
		seenOld := false
		for s := 0; s < 8; s++ {
			v := got[b*4096+s*512]
			if v == 0 {
				seenOld = true
			} else if seenOld {
				t.Fatalf("block %d: sector %d written after an unwritten one: not a prefix", b, s)
			}
		}
	}
}

func TestParseSpec(t *testing.T) {
	sp, err := faultio.ParseSpec("write=0.01, sync=0.5,tear=0,seed=7")
	if err != nil || sp != (faultio.Spec{Write: 0.01, Sync: 0.5, Seed: 7}) {
		t.Fatalf("ParseSpec = %+v, %v", sp, err)
	}
	back, err := faultio.ParseSpec(sp.String())
	if err != nil || back != sp {
		t.Fatalf("round trip %q: %+v %v", sp.String(), back, err)
	}
	for _, bad := range []string{"write", "write=2", "write=-1", "tear=x", "bogus=1", "seed=-3"} {
		if _, err := faultio.ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
}
