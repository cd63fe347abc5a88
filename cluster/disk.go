package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/dlog-dev/dlog/engine"
)

// The clustered-disk device layout:
//
//	[0, buf_size)                      the kernel's disk log image: header
//	                                   and the union of clean bits, written
//	                                   only by the group's server
//	[base + k*slotSize, +buf_size)     slot k (k < nslots): one member's own
//	                                   marks, as a kernel disk log image of
//	                                   its own (clean bit 0 = marked), with
//	                                   a slot descriptor in header bytes
//	                                   64..103, which the kernel and the
//	                                   engine keep as read
//
// base is buf_size rounded up to 4 KiB and slotSize is buf_size rounded up
// to 4 KiB, so every slot block is aligned for O_DIRECT. The kernel reads
// and writes only [0, buf_size).
//
// While any member is active the image's magic is LiveMagic instead of the
// kernel's: the union then lacks the live members' marks (they are in the
// slots), and a reader that does not merge slots (the kernel's disk log,
// dlogd without --cluster) must not trust it. Such a reader sees a wrong
// magic and, as the kernel does, resynchronises everything: slow but never
// wrong. The last member to leave writes the exact union with the kernel's
// magic: from then on the kernel's disk log or a single dlogd resumes it
// exactly.
const (
	// LiveMagic marks a union image whose slots must be merged.
	LiveMagic uint32 = 0x4C436C44 // "DlCL" little-endian
)

const (
	slotDescOff = 64
	slotDescLen = 40
	slotMagic   = 0x544F4C53474F4C44 // "DLOGSLOT"
)

type geometry struct {
	n        uint64
	lb       uint32
	bufSize  int64
	base     int64
	slotSize int64
	nslots   int
}

func align4k(x int64) int64 { return (x + 4095) &^ 4095 }

func geometryOf(n uint64, info engine.DeviceInfo, maxSlots int) (geometry, error) {
	bs, err := engine.ImageSize(n, info.LogicalBlock)
	if err != nil {
		return geometry{}, err
	}
	g := geometry{n: n, lb: info.LogicalBlock, bufSize: bs}
	g.base = align4k(g.bufSize)
	g.slotSize = align4k(g.bufSize)
	if info.Size > g.base {
		g.nslots = int(min(int64(maxSlots), (info.Size-g.base)/g.slotSize))
	}
	return g, nil
}

func (g geometry) slotOff(k int) int64 { return g.base + int64(k)*g.slotSize }

// need is the device size for nslots slots.
func (g geometry) need(nslots int) int64 { return g.base + int64(nslots)*g.slotSize }

// rawDev is the shared log device for the union image and slot reads.
type rawDev struct {
	dev  engine.Device
	info engine.DeviceInfo
	g    geometry
}

func (d *rawDev) read(off, n int64) ([]byte, func(), error) {
	buf, free, err := engine.AlignedBuf(int(n))
	if err != nil {
		return nil, nil, err
	}
	rn := align4k(n)
	if off+rn > d.info.Size {
		rn = d.info.Size - off
	}
	got, err := d.dev.ReadAt(buf[:rn], off)
	if err == nil && int64(got) < n {
		err = fmt.Errorf("short read at %d: %d of %d bytes", off, got, n)
	}
	if err != nil {
		free()
		return nil, nil, fmt.Errorf("%w: read %s at %d: %v", engine.ErrIO, d.info.Path, off, err)
	}
	return buf[:n], free, nil
}

func (d *rawDev) write(off int64, b []byte, sync bool) error {
	if err := d.dev.Write([]engine.Block{{Off: off, Buf: b}}, sync); err != nil {
		return fmt.Errorf("%w: write %s at %d: %v", engine.ErrIO, d.info.Path, off, err)
	}
	return nil
}

// slotDesc is a slot's descriptor: who owns it, for which geometry.
type slotDesc struct {
	slot  uint32
	owner MemberID
	n     uint64
}

func (s slotDesc) encode(b []byte) {
	le := binary.LittleEndian
	p := b[slotDescOff : slotDescOff+slotDescLen]
	le.PutUint64(p, slotMagic)
	le.PutUint32(p[8:], 1)
	le.PutUint32(p[12:], s.slot)
	le.PutUint64(p[16:], uint64(s.owner))
	le.PutUint64(p[24:], s.n)
	le.PutUint32(p[32:], crc32.ChecksumIEEE(p[:32]))
	le.PutUint32(p[36:], 0)
}

func decodeSlotDesc(b []byte) (slotDesc, bool) {
	le := binary.LittleEndian
	if len(b) < slotDescOff+slotDescLen {
		return slotDesc{}, false
	}
	p := b[slotDescOff : slotDescOff+slotDescLen]
	if le.Uint64(p) != slotMagic || le.Uint32(p[8:]) != 1 || le.Uint32(p[32:]) != crc32.ChecksumIEEE(p[:32]) {
		return slotDesc{}, false
	}
	return slotDesc{slot: le.Uint32(p[12:]), owner: MemberID(le.Uint64(p[16:])), n: le.Uint64(p[24:])}, true
}

// readSlot returns the marks recorded in slot k, with its descriptor. A
// slot whose descriptor or header is not valid for this geometry holds no
// marks (its owner never answered its kernel from it).
func (d *rawDev) readSlot(g geometry, k int) (slotDesc, []uint64, error) {
	img, free, err := d.read(g.slotOff(k), g.bufSize)
	if err != nil {
		return slotDesc{}, nil, err
	}
	defer free()
	desc, ok := decodeSlotDesc(img)
	if !ok || desc.slot != uint32(k) || desc.n != g.n {
		return slotDesc{}, nil, nil
	}
	marks, ok := engine.ImageMarks(img, g.n)
	if !ok {
		return slotDesc{}, nil, nil
	}
	return desc, marks, nil
}

// writeSlotDesc writes block 0 of slot k: zeroes with the descriptor (or
// zeroes only, to free it). Not synced: the slot's resume syncs after it.
func (d *rawDev) writeSlotHead(g geometry, k int, desc *slotDesc, sync bool) error {
	n := min(int64(4096), g.bufSize)
	buf, free, err := engine.AlignedBuf(int(n))
	if err != nil {
		return err
	}
	defer free()
	if desc != nil {
		desc.encode(buf)
	}
	return d.write(g.slotOff(k), buf[:n], sync)
}

// writeUnion writes the union image [0, buf_size): header with magic, the
// sync bits minus the regions in dirty, bytes 16..1023 kept as on disk.
// The image is written, and the cache flushed, under LiveMagic; a magic
// other than LiveMagic (the kernel's, at the clean point) is published
// after that by a write of the first block alone that changes nothing
// but the magic: a torn write never shows the kernel's magic over bits
// that are not on the device.
func (d *rawDev) writeUnion(g geometry, magic uint32, sync bits, dirty []uint64) error {
	img, free, err := d.read(0, g.bufSize)
	if err != nil {
		return err
	}
	defer free()
	if err := engine.EncodeImage(img, LiveMagic, g.n, sync.words, dirty); err != nil {
		return err
	}
	// Past the bitset: kept as read.
	if err := d.write(0, img, true); err != nil || magic == LiveMagic {
		return err
	}
	if err := engine.EncodeImage(img, magic, g.n, sync.words, dirty); err != nil {
		return err
	}
	return d.write(0, img[:min(int64(4096), g.bufSize)], true)
}

// offsetDevice shifts a device's I/O by off: a slot seen as a whole disk
// log by the engine.
type offsetDevice struct {
	engine.Device
	off int64
	buf []engine.Block
}

func (d *offsetDevice) ReadAt(p []byte, off int64) (int, error) {
	return d.Device.ReadAt(p, off+d.off)
}

// Write shifts every block; the engine runs one write at a time per log.
func (d *offsetDevice) Write(b []engine.Block, sync bool) error {
	d.buf = append(d.buf[:0], b...)
	for i := range d.buf {
		d.buf[i].Off += d.off
	}
	return d.Device.Write(d.buf, sync)
}
