package header

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Format constants of the kernel's disk log (dm-log.c).
const (
	// Magic is MIRROR_MAGIC, stored little-endian at offset 0.
	Magic uint32 = 0x4D695272
	// Version is MIRROR_DISK_VERSION, the only version the kernel writes.
	Version uint32 = 2
	// Size is the length of the encoded header in bytes.
	Size = 16
	// BitmapOffset is LOG_OFFSET (2 sectors): where the clean bits start.
	BitmapOffset = 1024
	// MaxRegions is the largest region count the kernel accepts (it holds
	// region_count in an unsigned int).
	MaxRegions = math.MaxUint32
)

// Header is the decoded 16-byte header.
type Header struct {
	Magic     uint32
	Version   uint32
	NrRegions uint64
}

// Fresh returns the header the kernel uses for a new log: right magic,
// current version, no regions recorded.
func Fresh() Header {
	return Header{Magic: Magic, Version: Version}
}

// Decode reads a header from the first Size bytes of b.
func Decode(b []byte) (Header, error) {
	if len(b) < Size {
		return Header{}, fmt.Errorf("header: decode: %d bytes, need %d: %w", len(b), Size, ErrShort)
	}
	return Header{
		Magic:     binary.LittleEndian.Uint32(b[0:4]),
		Version:   binary.LittleEndian.Uint32(b[4:8]),
		NrRegions: binary.LittleEndian.Uint64(b[8:16]),
	}, nil
}

// Encode writes h into the first Size bytes of b, little-endian, and leaves
// the rest of b untouched (the kernel preserves bytes 16..1023 as read).
func (h Header) Encode(b []byte) error {
	if len(b) < Size {
		return fmt.Errorf("header: encode: %d bytes, need %d: %w", len(b), Size, ErrShort)
	}
	binary.LittleEndian.PutUint32(b[0:4], h.Magic)
	binary.LittleEndian.PutUint32(b[4:8], h.Version)
	binary.LittleEndian.PutUint64(b[8:16], h.NrRegions)
	return nil
}

// MarshalBinary returns the 16-byte encoding of h.
func (h Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, Size)
	return b, h.Encode(b)
}

// UnmarshalBinary decodes h from b.
func (h *Header) UnmarshalBinary(b []byte) error {
	d, err := Decode(b)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// String formats h the way dlogd inspect prints it.
func (h Header) String() string {
	return fmt.Sprintf("magic=%#08x version=%d nr_regions=%d", h.Magic, h.Version, h.NrRegions)
}

// BitsetSize is the in-memory and on-disk size in bytes of the clean bitmap
// for regionCount regions: the count rounded up to 64 bits.
func BitsetSize(regionCount uint64) uint64 {
	return (regionCount + 63) / 64 * 8
}

// BufSize is the size of the image the kernel reads and writes as one I/O:
// the bitmap offset plus the bitset, rounded up to the device's logical block
// size. It fails for a block size that is not a power of two of at least 512,
// or a region count above MaxRegions.
func BufSize(regionCount uint64, logicalBlockSize uint32) (uint64, error) {
	if logicalBlockSize < 512 || logicalBlockSize&(logicalBlockSize-1) != 0 {
		return 0, fmt.Errorf("header: logical block size %d: %w", logicalBlockSize, ErrBlockSize)
	}
	if regionCount > MaxRegions {
		return 0, fmt.Errorf("header: %d regions: %w", regionCount, ErrTooManyRegions)
	}
	n := BitmapOffset + BitsetSize(regionCount)
	bs := uint64(logicalBlockSize)
	return (n + bs - 1) / bs * bs, nil
}

// SyncMode is the constructor's sync argument.
type SyncMode int

const (
	// SyncDefault honours the on-disk bitmap (no sync argument).
	SyncDefault SyncMode = iota
	// SyncNone is "nosync": every region is taken as in sync; the bitmap on
	// disk is ignored.
	SyncNone
	// SyncForce is "sync": every region is resynchronised; the bitmap on
	// disk is ignored.
	SyncForce
)

// String returns the constructor word for m ("" for the default).
func (m SyncMode) String() string {
	switch m {
	case SyncNone:
		return "nosync"
	case SyncForce:
		return "sync"
	}
	return ""
}

// Resumed is the outcome of Interpret: what the kernel's disk_resume decides
// about a header it has just read.
type Resumed struct {
	// Header is the in-memory header after the read: magic and version as
	// they will be written back (a fresh log gets Magic/Version; version 1
	// becomes 2; an unsupported version is kept, as the kernel keeps it).
	Header Header
	// Valid is how many leading regions of the bitmap read from disk are
	// taken as they are. Regions from Valid up to the region count are set
	// (nosync) or cleared (otherwise) by the caller. Valid never exceeds the
	// region count of this activation.
	Valid uint64
	// Fresh reports that the image was not taken as a log (wrong magic, or
	// a sync/nosync constructor argument).
	Fresh bool
	// Upgraded reports a version-1 header upgraded to version 2.
	Upgraded bool
}

// Interpret decides, from the header of an image read at resume, which part
// of its bitmap is honoured. regionCount is this activation's region count.
//
// It returns ErrVersion (wrapped) together with a usable Resumed whose Valid
// is 0 when the magic is right but the version is neither 1 nor 2: the
// kernel then marks the log device failed, resynchronises everything and
// writes the header back with the same unsupported version.
func Interpret(h Header, regionCount uint64, mode SyncMode) (Resumed, error) {
	r := Resumed{Header: h}
	if mode != SyncDefault || h.Magic != Magic {
		r.Header = Fresh()
		r.Fresh = true
	}
	if r.Header.Version == 1 {
		r.Header.Version = Version
		r.Upgraded = true
	}
	if r.Header.Version != Version {
		return r, fmt.Errorf("header: incompatible disk log version %d: %w", r.Header.Version, ErrVersion)
	}
	// The kernel's disk_resume walks the new regions with an unsigned int
	// from nr_regions: a stored count of 2^32 or more (no kernel or dlog
	// writes one: region counts stop at MaxRegions) is taken modulo 2^32,
	// so fewer leading bits are trusted and more regions resync. dlog does
	// the same, byte for byte; trusting the whole bitmap instead could
	// report clean what the kernel would resync.
	r.Valid = min(uint64(uint32(r.Header.NrRegions)), regionCount)
	return r, nil
}
