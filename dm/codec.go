package dm

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The layout of struct dm_ioctl (include/uapi/linux/dm-ioctl.h).
const (
	headerSize = 312
	dataOffset = 305 // offsetof(struct dm_ioctl, data): data_size of an answer without data
	nameLen    = 128
	uuidLen    = 129
	specSize   = 40 // struct dm_target_spec without its parameter string
	typeLen    = 16

	offDataSize    = 12
	offDataStart   = 16
	offTargetCount = 20
	offOpenCount   = 24
	offFlags       = 28
	offEventNr     = 32
	offDev         = 40
	offName        = 48
	offUUID        = offName + nameLen
)

// Flags of dm_ioctl.flags that this package uses.
const (
	flagReadOnly      = 1 << 0
	flagSuspend       = 1 << 1
	flagStatusTable   = 1 << 4
	flagActivePresent = 1 << 5
	flagInactivePres  = 1 << 6
	flagBufferFull    = 1 << 8
	flagNoFlush       = 1 << 11
	flagSkipLockfs    = 1 << 10
)

var le = binary.LittleEndian

// header is the decoded fixed part of a dm_ioctl answer.
type header struct {
	dataSize, dataStart, targetCount uint32
	openCount                        int32
	flags, eventNr                   uint32
	dev                              uint64
	name, uuid                       string
}

// encodeRequest lays out a dm_ioctl of size bufSize (at least headerSize +
// len(payload)) addressed to name, with the payload right after the header.
func encodeRequest(name string, flags uint32, payload []byte, bufSize int) ([]byte, error) {
	if len(name) >= nameLen {
		return nil, fmt.Errorf("dm: device name %q is longer than %d bytes", name, nameLen-1)
	}
	if bufSize < headerSize+len(payload) {
		bufSize = headerSize + len(payload)
	}
	b := make([]byte, bufSize)
	le.PutUint32(b[0:], 4) // interface version 4.0.0: any 4.x kernel takes it
	le.PutUint32(b[offDataSize:], uint32(bufSize))
	le.PutUint32(b[offDataStart:], headerSize)
	le.PutUint32(b[offFlags:], flags)
	copy(b[offName:], name)
	copy(b[headerSize:], payload)
	return b, nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// decodeHeader reads the fixed part of an answer and checks its sizes
// against the buffer.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("dm: answer of %d bytes, shorter than the %d-byte header", len(b), headerSize)
	}
	h.dataSize = le.Uint32(b[offDataSize:])
	h.dataStart = le.Uint32(b[offDataStart:])
	h.targetCount = le.Uint32(b[offTargetCount:])
	h.openCount = int32(le.Uint32(b[offOpenCount:]))
	h.flags = le.Uint32(b[offFlags:])
	h.eventNr = le.Uint32(b[offEventNr:])
	h.dev = le.Uint64(b[offDev:])
	h.name = cstring(b[offName : offName+nameLen])
	h.uuid = cstring(b[offUUID : offUUID+uuidLen])
	// A command that returns no data (DEV_STATUS, DEV_SUSPEND, ...) gets
	// data_size set to offsetof(struct dm_ioctl, data), 305, below the
	// data_start the request carried: no data, not a malformed answer.
	if h.dataSize == dataOffset && h.dataStart >= dataOffset {
		h.dataSize = h.dataStart
	}
	if h.flags&flagBufferFull == 0 && (h.dataStart < headerSize || h.dataStart > h.dataSize || int(h.dataSize) > len(b)) {
		return h, fmt.Errorf("dm: answer data [%d, %d) outside its %d-byte buffer", h.dataStart, h.dataSize, len(b))
	}
	return h, nil
}

// decodeTargets reads the dm_target_spec records of a DM_TABLE_STATUS
// answer. Each record's next is its successor's offset from the start of
// the data area.
func decodeTargets(b []byte, h header) ([]Target, error) {
	data := b[h.dataStart:h.dataSize]
	if int(h.targetCount) > len(data)/specSize {
		return nil, fmt.Errorf("dm: %d targets cannot fit in %d bytes", h.targetCount, len(data))
	}
	ts := make([]Target, 0, h.targetCount)
	off := 0
	for i := 0; i < int(h.targetCount); i++ {
		if off < 0 || off+specSize > len(data) {
			return nil, fmt.Errorf("dm: target %d at offset %d outside %d bytes of data", i, off, len(data))
		}
		s := data[off:]
		t := Target{Start: le.Uint64(s[0:]), Length: le.Uint64(s[8:]), Type: cstring(s[24 : 24+typeLen])}
		next := int(le.Uint32(s[20:]))
		end := len(data)
		if i+1 < int(h.targetCount) {
			if next <= off || next > len(data) {
				return nil, fmt.Errorf("dm: target %d: next offset %d does not advance past %d", i, next, off)
			}
			end = next
		}
		t.Params = string(bytes.TrimRight([]byte(cstring(data[off+specSize:end])), " "))
		ts = append(ts, t)
		off = next
	}
	return ts, nil
}

// encodeTargets lays out dm_target_spec records for DM_TABLE_LOAD, each
// parameter string NUL-terminated and padded to 8 bytes; next is relative
// to the start of the record.
func encodeTargets(ts []Target) ([]byte, error) {
	var out []byte
	for i, t := range ts {
		if len(t.Type) >= typeLen {
			return nil, fmt.Errorf("dm: target %d: type %q is longer than %d bytes", i, t.Type, typeLen-1)
		}
		n := specSize + len(t.Params) + 1
		n = (n + 7) &^ 7
		rec := make([]byte, n)
		le.PutUint64(rec[0:], t.Start)
		le.PutUint64(rec[8:], t.Length)
		le.PutUint32(rec[20:], uint32(n))
		copy(rec[24:], t.Type)
		copy(rec[specSize:], t.Params)
		out = append(out, rec...)
	}
	return out, nil
}

// decodeNames reads the dm_name_list records of a DM_LIST_DEVICES answer:
// dev (8 bytes), next (4, from the start of this record; 0 ends the list),
// then the NUL-terminated name.
func decodeNames(b []byte, h header) ([]Device, error) {
	data := b[h.dataStart:h.dataSize]
	var ds []Device
	off := 0
	for {
		if off+12 > len(data) {
			if off == 0 && len(data) < 12 {
				return nil, nil
			}
			return nil, fmt.Errorf("dm: device record at %d outside %d bytes of data", off, len(data))
		}
		r := data[off:]
		dev := le.Uint64(r[0:])
		next := int(le.Uint32(r[8:]))
		name := cstring(r[12:])
		if dev == 0 && next == 0 && len(ds) == 0 && name == "" {
			return nil, nil // no devices: one empty record
		}
		if next != 0 && next < 12+len(name)+1 {
			return nil, fmt.Errorf("dm: device record %q: next %d overlaps it", name, next)
		}
		ma, mi := decodeDev(dev)
		ds = append(ds, Device{Name: name, Major: ma, Minor: mi})
		if next == 0 {
			return ds, nil
		}
		off += next
	}
}

// decodeDev splits the kernel's huge_encode_dev number.
func decodeDev(d uint64) (major, minor uint32) {
	major = uint32((d >> 8) & 0xfff)
	minor = uint32(d&0xff) | uint32((d>>12)&0xfff00)
	return major, minor
}
