package engine

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/dlog-dev/dlog/bitmap"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/iouring"
)

// The kernel-format image and its pieces, for packages built on the engine
// (cluster), which reach the on-disk format, the bitmaps and the device
// writes through here and not below.
type (
	// Block is one write of Device.Write.
	Block = iouring.Block
	// SyncMode is a table's sync/nosync word.
	SyncMode = header.SyncMode
	// Bitmap is the engine's bitmap (dirty, clean, sync bits).
	Bitmap = bitmap.Bitmap
	// Resumed is what LoadImage found in an image.
	Resumed = header.Resumed
)

// The sync modes of a table (Config.Sync).
const (
	SyncDefault = header.SyncDefault
	SyncForce   = header.SyncForce
	SyncNone    = header.SyncNone
)

// DiskMagic is the kernel's disk log magic.
const DiskMagic = header.Magic

// ImageSize is the size of a kernel image of n regions on a device of
// logical block lb: the bytes the kernel reads and writes as one I/O.
func ImageSize(n uint64, lb uint32) (int64, error) {
	bs, err := header.BufSize(n, lb)
	return int64(bs), err
}

// BitsetWords is the number of 64-bit words of a bitset of n regions.
func BitsetWords(n uint64) int { return int(header.BitsetSize(n) / 8) }

// NewBitmap is a bitmap of n bits over words (BitsetWords(n) of them, at
// least one).
func NewBitmap(words []uint64, n uint64) (*Bitmap, error) {
	return bitmap.New(words, n, bitmap.Options{})
}

// AlignedBuf returns n bytes (rounded up to a page, at least one) of
// zeroed page-aligned memory outside the Go heap, as O_DIRECT wants, and
// the function that releases it.
func AlignedBuf(n int) ([]byte, func(), error) {
	m, err := mapAnon(n)
	if err != nil {
		return nil, nil, err
	}
	return m.m, func() { m.unmap() }, nil
}

// LoadImage runs steps 2 to 5 of the kernel's disk_resume over img, an
// image of a log of n regions read from its device: the header is decoded
// and interpreted (fresh log, version upgrade, unsupported version, stored
// region count clamped to this activation); clean, whose words hold the
// image's bitset (load copies it there first when clean's memory is not
// the image's), is recounted; regions past the image's valid range are in
// sync for nosync and dirty otherwise; stale tail bits are cleared. A
// header whose magic is alt is read as the kernel's (a cluster's live
// image); alt 0 accepts only the kernel's. The error is the unsupported
// version's: the device must be failed, the bits are still usable.
func LoadImage(img []byte, n uint64, mode SyncMode, alt uint32, clean *Bitmap, load []uint64) (Resumed, error) {
	h, _ := header.Decode(img)
	if alt != 0 && h.Magic == alt {
		h.Magic = header.Magic
	}
	r, err := header.Interpret(h, n, mode)
	if load != nil {
		nw := BitsetWords(n)
		if len(img) < header.BitmapOffset+8*nw || len(load) < nw {
			return r, fmt.Errorf("%w: image of %d bytes for %d regions", ErrDevice, len(img), n)
		}
		for w := 0; w < nw; w++ {
			load[w] = binary.LittleEndian.Uint64(img[header.BitmapOffset+8*w:])
		}
	}
	clean.Recount()
	if mode == header.SyncNone {
		clean.SetRange(r.Valid, n)
	} else {
		clean.ClearRange(r.Valid, n)
	}
	clean.ClearTail()
	return r, err
}

// EncodeImage writes a kernel image of n regions into img: the header
// with magic and the clean bits of words minus the regions in dirty.
// Bytes past the bitset are left as they are.
func EncodeImage(img []byte, magic uint32, n uint64, words []uint64, dirty []uint64) error {
	nw := BitsetWords(n)
	if len(img) < header.BitmapOffset+8*nw || len(words) < nw {
		return fmt.Errorf("%w: image of %d bytes for %d regions", ErrDevice, len(img), n)
	}
	if err := (header.Header{Magic: magic, Version: header.Version, NrRegions: n}).Encode(img); err != nil {
		return err
	}
	for w := 0; w < nw; w++ {
		binary.LittleEndian.PutUint64(img[header.BitmapOffset+8*w:], words[w])
	}
	for _, r := range dirty {
		if r < n {
			img[header.BitmapOffset+int(r/8)] &^= 1 << (r % 8)
		}
	}
	return nil
}

// ImageMarks returns the regions an image of n regions in the kernel's
// format holds dirty (clean bit 0), and false if img is not such an image
// (wrong magic, version or region count).
func ImageMarks(img []byte, n uint64) ([]uint64, bool) {
	h, err := header.Decode(img)
	nw := BitsetWords(n)
	if err != nil || h.Magic != header.Magic || h.Version != header.Version || h.NrRegions != n || len(img) < header.BitmapOffset+8*nw {
		return nil, false
	}
	var marks []uint64
	for w := 0; w < nw; w++ {
		v := ^binary.LittleEndian.Uint64(img[header.BitmapOffset+8*w:])
		for v != 0 {
			i := uint64(w*64) + uint64(bits.TrailingZeros64(v))
			v &= v - 1
			if i < n {
				marks = append(marks, i)
			}
		}
	}
	return marks, true
}

// ImageMagic is the magic of the header at the start of img (0 if img is
// shorter than a header).
func ImageMagic(img []byte) uint32 {
	h, _ := header.Decode(img)
	return h.Magic
}
