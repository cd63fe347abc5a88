package cluster

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/internal/testutil/faultio"
	"github.com/dlog-dev/dlog/iouring"
)

func openDiskNode(t *testing.T, net *FakeNet, id uint32, c engine.Config, wrap func(engine.Device) engine.Device) *Log {
	t.Helper()
	l, err := Open("uuid-1", c, engine.Options{Logger: testLogger(), WrapDevice: wrap}, testOptions(net.Node(id)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSlotOpenFails: a node whose slot cannot be written at RESUME must not
// acknowledge marks it persisted nowhere: FLUSH fails and the status shows
// 'D' (issue #12, a slot that failed to open).
func TestSlotOpenFails(t *testing.T) {
	c := ctr(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024 nosync")
	f := &faultio.Faults{}
	l := openDiskNode(t, NewFakeNet(1), 1, c, func(d engine.Device) engine.Device { return faultio.Wrap(d, f) })
	defer l.Close()
	f.FailWrites = 1 << 20 // every write from now on
	if err := l.Resume(); err == nil {
		t.Log("RESUME succeeded without a slot") // the kernel ignores a failed log resume anyway
	}
	if err := l.MarkRegion(3); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err == nil {
		t.Fatal("FLUSH acknowledged a mark with no slot to persist it")
	}
	if st := l.Status(engine.StatusInfo); !strings.HasSuffix(st, " D") {
		t.Fatalf("status %q, want the device flagged D", st)
	}
}

// magicRecorder checks every write that puts the kernel's magic at the
// start of the device: it must change nothing there but the magic (the
// bits are already on the device, synced), so a torn write can never
// publish the magic over bits that are not there.
type magicRecorder struct {
	engine.Device
	t         *testing.T
	mu        sync.Mutex
	published int
}

func (d *magicRecorder) Write(bs []iouring.Block, sync bool) error {
	for _, b := range bs {
		if b.Off != 0 || engine.ImageMagic(b.Buf) != engine.DiskMagic {
			continue
		}
		cur, free, err := engine.AlignedBuf(len(b.Buf))
		if err != nil {
			d.t.Error(err)
			continue
		}
		cur = cur[:len(b.Buf)]
		if _, err := d.Device.ReadAt(cur, 0); err != nil {
			d.t.Error(err)
		} else if !bytes.Equal(cur[4:], b.Buf[4:]) {
			i := 4
			for cur[i] == b.Buf[i] {
				i++
			}
			d.t.Errorf("a %d-byte write publishes the kernel's magic together with other changes (byte %d: %#x on the device, %#x written)", len(b.Buf), i, cur[i], b.Buf[i])
		}
		free()
		d.mu.Lock()
		d.published++
		d.mu.Unlock()
	}
	return d.Device.Write(bs, sync)
}

// TestCleanPointOrder: the clean-shutdown image is written bits first
// (synced), then the header with the kernel's magic (issue #12, the
// clean-shutdown write).
func TestCleanPointOrder(t *testing.T) {
	c := ctr(t, "65536 clustered-disk "+logDevice(t, 1<<20)+" 1024 nosync")
	rec := &magicRecorder{t: t}
	l := openDiskNode(t, NewFakeNet(1), 1, c, func(d engine.Device) engine.Device {
		if rec.Device == nil {
			rec.Device = d
			return rec
		}
		return d
	})
	resume(t, l)
	mustFlush(t, l, 3, 40)
	l.Presuspend()
	if err := l.Postsuspend(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.published == 0 {
		t.Fatal("the clean point never wrote the kernel's magic")
	}
	// The image is the kernel's, with the two marks dirty.
	dev, _, err := engine.OpenDevice(c.Device, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	img, free, _ := engine.AlignedBuf(4096)
	defer free()
	if _, err := dev.ReadAt(img, 0); err != nil {
		t.Fatal(err)
	}
	if marks, ok := engine.ImageMarks(img, 64); !ok || len(marks) != 2 || marks[0] != 3 || marks[1] != 40 {
		t.Fatalf("clean image marks %v (valid %v), want [3 40]", marks, ok)
	}
}
