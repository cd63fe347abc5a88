package engine

import "fmt"

// Log is a dirty region log: the methods of the kernel's struct
// dm_dirty_log_type (include/linux/dm-dirty-log.h), with the kernel's
// semantics. Region numbers are 0-based; a region out of range is an
// error (ErrRegionRange), never a panic or a stray write.
//
// All methods are safe for concurrent use. IsClean, InSync, SyncCount and
// Status never wait for disk I/O.
type Log interface {
	// Type is the log type word ("core", "disk", "clustered-core",
	// "clustered-disk").
	Type() string
	// Config is the parsed constructor.
	Config() Config
	// RegionSize is the region size in sectors (GET_REGION_SIZE).
	RegionSize() uint64
	// RegionCount is ceil(target length / region size).
	RegionCount() uint64

	// Presuspend halts the hand-out of resync work until Resume.
	Presuspend() error
	// Postsuspend persists the log (a flush, for the disk log).
	Postsuspend() error
	// Resume loads the log: for the disk log it reads the device and
	// rebuilds the bitmaps exactly as the kernel's disk_resume does, then
	// writes the image back and flushes the device cache. Resume of a log
	// that is already running (not suspended) changes nothing.
	Resume() error

	// IsClean reports the region's clean bit.
	IsClean(region uint64) (bool, error)
	// InSync reports the region's sync bit.
	InSync(region uint64) (bool, error)
	// MarkRegion makes the region dirty; it is durable after the next Flush.
	MarkRegion(region uint64) error
	// ClearRegion makes the region clean (lazily persisted).
	ClearRegion(region uint64) error
	// Flush makes every mark and clear that completed before the call
	// durable. Only changed blocks of the image are written; the device
	// cache is flushed when they include marks; nothing is done when
	// nothing changed.
	Flush() error

	// GetResyncWork hands out the next region to resynchronise, or ok=false
	// when there is none (or recovery is halted).
	GetResyncWork() (region uint64, ok bool, err error)
	// SetRegionSync records the outcome of a resync (or a failed write).
	SetRegionSync(region uint64, inSync bool) error
	// SyncCount is the number of regions in sync.
	SyncCount() uint64
	// IsRemoteRecovering reports whether another node is recovering the
	// region (never, on a single node) and a hint below which every region
	// is in sync or will not be recovered again in this activation.
	IsRemoteRecovering(region uint64) (recovering bool, inSyncHint uint64, err error)

	// Status returns the INFO or TABLE string of the log, byte-identical to
	// the kernel's (docs/protocol.md §5.1).
	Status(StatusType) string
	// Failed reports the log device's failure flags: D (a read or write
	// failed) and F (a cache flush failed).
	Failed() (ioFailed, flushFailed bool)
	// Stats are the log's device I/O counters (zero for core types).
	Stats() Stats
	// State describes the log for status reports and debug dumps.
	State() State

	// Close destroys the log (the kernel's dtr) and releases its memory and
	// device.
	Close() error
}

// StatusType selects the status string.
type StatusType int

const (
	// StatusInfo is the `dmsetup status` fragment.
	StatusInfo StatusType = iota
	// StatusTable is the `dmsetup table` fragment.
	StatusTable
)

func (t StatusType) String() string {
	if t == StatusTable {
		return "TABLE"
	}
	return "INFO"
}

// state is a log's place in the ctr/resume/suspend cycle.
type state int

const (
	stateConstructed  state = iota // ctr done, never resumed
	stateRunning                   // resumed
	statePresuspended              // presuspend seen, I/O may still come
	stateSuspended                 // postsuspend done
	stateClosed
)

func (s state) String() string {
	switch s {
	case stateConstructed:
		return "constructed"
	case stateRunning:
		return "running"
	case statePresuspended:
		return "presuspended"
	case stateSuspended:
		return "suspended"
	case stateClosed:
		return "closed"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// State is a snapshot of a log for status reports and debug dumps.
type State struct {
	Type       string
	Phase      string // constructed, running, presuspended, suspended, closed
	Regions    uint64
	RegionSize uint64
	InSync     uint64 // regions in sync
	Dirty      uint64 // regions whose clean bit is clear
	Recovering uint64 // regions handed out for resync and not yet reported
	Cursor     uint64 // the resync search cursor
	Halted     bool   // recovery halted by presuspend
	Device     string // disk types: the device name in status strings
	StateFile  string // the mapped state file; "" when the log has none
	// StateFileError says why a log opened with Options.StateFile has
	// none any more (its space could not be reserved); "" otherwise.
	StateFileError string
	// BlockDevice is the "major:minor" of the opened log device when it is
	// a block device: what the kernel can dm_get_device. "" for a regular
	// file and for core logs.
	BlockDevice string
	IOFailed    bool
	FlushFailed bool
	Stats       Stats
}
