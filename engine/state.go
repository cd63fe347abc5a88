package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/edsrzf/mmap-go"

	"github.com/dlog-dev/dlog/header"
)

// The state file keeps what a log holds only in memory (the sync and
// recovering bits, the clean bits of a core log, the resync cursor, the
// suspend phase) in a file mapped MAP_SHARED, so that every change is in
// the page cache the moment it is made. A daemon killed with -9 loses
// nothing of it; the next one maps the same file and carries on where the
// kernel left it, which matters because the kernel does not run its
// resume logic after a reconnect (docs/protocol.md §1.6): a log that came back
// with fresh sync bits would tell a mirror that thought itself in sync
// that nothing is, and its writes would go to one leg only.
//
// dlogd keeps state files on /run (tmpfs): they survive a daemon restart
// and are gone after a reboot, as are the kernel's logs. A file from
// another boot (the boot id differs) is never restored.
//
// Layout: one 4 KiB header page, then each bitmap at a page boundary.
//
//	offset  size  field
//	     0     8  magic "DLOGSTAT"
//	     8     4  version (1)
//	    12     4  phase (state)
//	    16     8  resync cursor
//	    24     4  recovery halted (0/1)
//	    32     8  region count
//	    40    40  boot id (/proc/sys/kernel/random/boot_id), NUL-padded
//	    80     2  label length
//	    82     2  config length
//	    84   512  label (the caller's: dlogd puts the uuid and luid here)
//	   596   512  config: "<target length> <arguments>" as Config.String
const (
	stateMagic    = "DLOGSTAT"
	stateVersion  = 1
	stateHdrSize  = 4096
	stateLabelMax = 512
	stateCfgMax   = 512
	offPhase      = 12
	offCursor     = 16
	offHalted     = 24
	offRegions    = 32
	offBootID     = 40
	offLabelLen   = 80
	offCfgLen     = 82
	offLabel      = 84
	offCfg        = offLabel + stateLabelMax
)

// ErrState is returned for a state file that cannot be used.
var ErrState = errors.New("engine: state file unusable")

// StateHeader is what a state file says about the log it belongs to.
type StateHeader struct {
	Label  string // the caller's label (Options.StateLabel)
	Config string // "<target length> <arguments>": ParseCtr reads it
	Phase  string
}

// ReadStateHeader reads the header of a state file written by a log opened
// with Options.StateFile. It fails with ErrState if the file is not one,
// or was written before the last reboot.
func ReadStateHeader(path string) (StateHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return StateHeader{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	defer f.Close()
	hdr := make([]byte, stateHdrSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return StateHeader{}, fmt.Errorf("%w: %s: read header: %v", ErrState, path, err)
	}
	if err := checkStateHeader(hdr); err != nil {
		return StateHeader{}, fmt.Errorf("%w: %s: %v", ErrState, path, err)
	}
	return StateHeader{Label: stateLabel(hdr), Config: stateConfig(hdr), Phase: state(binary.LittleEndian.Uint32(hdr[offPhase:])).String()}, nil
}

func checkStateHeader(hdr []byte) error {
	if string(hdr[:8]) != stateMagic {
		return fmt.Errorf("not a dlog state file")
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != stateVersion {
		return fmt.Errorf("state file version %d, want %d", v, stateVersion)
	}
	if got, want := strings.TrimRight(string(hdr[offBootID:offBootID+40]), "\x00"), bootID(); got != want {
		return fmt.Errorf("written during another boot (%s, now %s)", got, want)
	}
	if int(binary.LittleEndian.Uint16(hdr[offLabelLen:])) > stateLabelMax || int(binary.LittleEndian.Uint16(hdr[offCfgLen:])) > stateCfgMax {
		return fmt.Errorf("label or config length out of range")
	}
	return nil
}

func stateLabel(hdr []byte) string {
	return string(hdr[offLabel : offLabel+int(binary.LittleEndian.Uint16(hdr[offLabelLen:]))])
}

func stateConfig(hdr []byte) string {
	return string(hdr[offCfg : offCfg+int(binary.LittleEndian.Uint16(hdr[offCfgLen:]))])
}

// bootID identifies this boot of the machine.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "unknown"
	}
	return string(bytes.TrimSpace(b))
}

// stateFile is an open, mapped state file, or a detached one: a restored
// state whose file could not be reserved, read into private memory (f is
// nil, path empty, reserveErr says why).
type stateFile struct {
	f          *os.File
	m          mmap.MMap
	hdr        []byte
	maps       [][]byte // one region per bitmap, in order
	path       string
	reserveErr error
}

func (s *stateFile) setMaps(nmaps, bm int) {
	for i := range nmaps {
		off := stateHdrSize + i*bm
		s.maps = append(s.maps, s.m[off:off+bm])
	}
}

// reserve makes every byte of f's first size bytes backed by the file
// system, keeping what a restored file holds: fallocate, or where the file
// system has none, writing the bytes (zeros, or the file's own) back.
func reserve(f *os.File, size int64, restored bool) error {
	err := fallocate(f, size)
	if !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	buf := make([]byte, size)
	if restored {
		if _, err := f.ReadAt(buf, 0); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// detachStateFile reads f (read(2) of a hole needs no space) into private
// memory, then closes and removes it.
func detachStateFile(f *os.File, path string, size int) (*stateFile, error) {
	defer f.Close()
	m, err := mmap.MapRegion(nil, size, mmap.RDWR, mmap.ANON, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.ReadAt(m, 0); err != nil {
		m.Unmap()
		return nil, err
	}
	os.Remove(path)
	return &stateFile{m: m, hdr: m[:stateHdrSize]}, nil
}

// configString is the canonical form of c kept in a state file.
func configString(c Config) string { return fmt.Sprintf("%d %s", c.TargetLen, c.String()) }

// openStateFile maps path for a log of config c with nmaps bitmaps of n
// regions. It returns restored=true when the file already held this
// log's state from this boot; otherwise the file is (re)initialised and
// the caller fills the bitmaps.
func openStateFile(path, label string, c Config, nmaps int) (*stateFile, bool, error) {
	cfg := configString(c)
	if len(label) > stateLabelMax || len(cfg) > stateCfgMax {
		return nil, false, fmt.Errorf("%w: label or config too long", ErrState)
	}
	bm := (int(header.BitsetSize(c.RegionCount())) + pageSize - 1) / pageSize * pageSize
	bm = max(bm, pageSize)
	size := stateHdrSize + nmaps*bm
	restored := false
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		if st, err := f.Stat(); err == nil && st.Size() == int64(size) {
			hdr := make([]byte, stateHdrSize)
			if _, err := f.ReadAt(hdr, 0); err == nil && checkStateHeader(hdr) == nil &&
				stateConfig(hdr) == cfg && binary.LittleEndian.Uint64(hdr[offRegions:]) == c.RegionCount() {
				restored = true
			}
		}
		if !restored {
			f.Close()
		}
	}
	if !restored {
		// A new log, or a file that is not this log's: a new file (a new
		// inode, so that a process still mapping the old one is not hurt).
		os.Remove(path)
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			err = f.Truncate(int64(size))
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			return nil, false, fmt.Errorf("%w: create %s: %v", ErrState, path, err)
		}
	}
	// Every page is reserved before the file is mapped: a store to a
	// mapped page the file system cannot back (a full tmpfs, a sparse
	// file) is a SIGBUS, not an error.
	if err := reserve(f, int64(size), restored); err != nil {
		if !restored {
			f.Close()
			os.Remove(path)
			return nil, false, fmt.Errorf("%w: reserve %d bytes for %s: %v", ErrState, size, path, err)
		}
		// This log's state is in the file but the file cannot be kept:
		// take it into private memory and drop the file, which would go
		// stale (a later restore of it could under-report).
		s, derr := detachStateFile(f, path, size)
		if derr != nil {
			return nil, false, fmt.Errorf("%w: reserve %d bytes for %s: %v; read it: %v", ErrState, size, path, err, derr)
		}
		s.reserveErr = err
		s.setMaps(nmaps, bm)
		return s, true, nil
	}
	m, err := mmap.MapRegion(f, size, mmap.RDWR, 0, 0)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("%w: map %s: %v", ErrState, path, err)
	}
	s := &stateFile{f: f, m: m, hdr: m[:stateHdrSize], path: path}
	s.setMaps(nmaps, bm)
	if !restored {
		copy(s.hdr, stateMagic)
		binary.LittleEndian.PutUint32(s.hdr[8:], stateVersion)
		binary.LittleEndian.PutUint64(s.hdr[offRegions:], c.RegionCount())
		copy(s.hdr[offBootID:offBootID+40], bootID())
		binary.LittleEndian.PutUint16(s.hdr[offLabelLen:], uint16(len(label)))
		binary.LittleEndian.PutUint16(s.hdr[offCfgLen:], uint16(len(cfg)))
		copy(s.hdr[offLabel:], label)
		copy(s.hdr[offCfg:], cfg)
	}
	return s, restored, nil
}

// save records the phase, cursor and halted flag; callers hold l.mu.
func (s *stateFile) save(st state, cursor uint64, halted bool) {
	binary.LittleEndian.PutUint32(s.hdr[offPhase:], uint32(st))
	binary.LittleEndian.PutUint64(s.hdr[offCursor:], cursor)
	h := uint32(0)
	if halted {
		h = 1
	}
	binary.LittleEndian.PutUint32(s.hdr[offHalted:], h)
}

// load returns what save recorded.
func (s *stateFile) load() (state, uint64, bool) {
	return state(binary.LittleEndian.Uint32(s.hdr[offPhase:])),
		binary.LittleEndian.Uint64(s.hdr[offCursor:]),
		binary.LittleEndian.Uint32(s.hdr[offHalted:]) != 0
}

func (s *stateFile) close() {
	if s == nil {
		return
	}
	s.m.Unmap()
	if s.f != nil {
		s.f.Close()
	}
}
