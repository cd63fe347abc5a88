package iouring

import "log/slog"

// DefaultEntries is the submission ring size used when Options.Entries is 0.
const DefaultEntries = 128

// MaxBlockLen is the largest Buf a Block may carry. Longer blocks fail with
// EINVAL before any I/O: the kernel caps one write at just under 2 GiB and
// reports a completion's result as an int32.
const MaxBlockLen = 1 << 30

// Block is one write: Buf is written at file offset Off. For O_DIRECT fds
// Buf, Off and len(Buf) must satisfy the device's alignment (see
// ProbeAlignment).
//
// A Block with an empty Buf is a no-op that always succeeds. A negative Off
// fails with EINVAL. Blocks of one batch should not overlap: their writes run
// concurrently, so which overlapping write lands last is unspecified.
type Block struct {
	Off int64
	Buf []byte
}

// Writer writes batches of blocks to one fd. It is not safe for concurrent
// use (the engine serialises flushes); it never closes the fd.
//
// A Writer reads each Buf until the Write that carries it returns: callers
// must not modify the buffers during Write, and may reuse them afterwards.
type Writer interface {
	// Write writes every block, in as few submissions as possible (split
	// when the batch exceeds the ring), and when sync is true follows them
	// with one fdatasync ordered after all the writes (IOSQE_IO_DRAIN on
	// io_uring). All blocks are attempted even if some fail. On any failure
	// it returns a *BatchError. A short write is an error for that block,
	// after one retry of the remainder; if a retry was needed and sync is
	// true, a second fdatasync covers the retried bytes.
	//
	// When sync is true and the blocks form one run on disk (always, for a
	// single block), both mechanisms first try to write and sync the run in
	// one system call, pwritev2 with RWF_DSYNC (see dsync_linux.go); only
	// if that fails do they do the above. A synced Write makes its own
	// blocks durable; on a block device it also flushes the whole device
	// cache (covering earlier Writes), on a regular file it may not.
	//
	// Write with no blocks and sync true is a Sync whose failure is reported
	// as a *BatchError; with no blocks and sync false it does nothing.
	Write(blocks []Block, sync bool) error
	// Sync issues one fdatasync. Its error wraps the errno (errors.Is works).
	Sync() error
	// Method reports which mechanism is in use: "io_uring" or "pwritev".
	Method() string
	// Close releases the ring (unmaps it and closes the ring fd). It does
	// not close the fd given to New. Close is idempotent; Write and Sync
	// after Close return ErrClosed.
	Close() error
}

// SyncMode chooses how an io_uring Writer issues the fdatasync of a Write
// (the fallback always calls fdatasync(2)).
type SyncMode int

const (
	// SyncAuto writes a one-block batch with pwrite(2) and syncs it with
	// fdatasync(2), and puts the fdatasync of a larger batch on the ring,
	// drained behind its writes. The kernel hands a ring fsync to an io-wq
	// worker thread, which costs a wake-up: more than a ring round trip
	// saves for one block, less than waiting in user space for the last of
	// many writes before calling fdatasync (BenchmarkFlush in package
	// bench measures the three modes side by side).
	SyncAuto SyncMode = iota
	// SyncRing always puts the fdatasync on the ring, drained.
	SyncRing
	// SyncDirect always reaps the writes, then calls fdatasync(2).
	SyncDirect
)

// String names the mode ("auto", "ring", "direct").
func (m SyncMode) String() string {
	switch m {
	case SyncRing:
		return "ring"
	case SyncDirect:
		return "direct"
	}
	return "auto"
}

// Method names reported by Writer.Method.
const (
	MethodIOUring = "io_uring"
	MethodPwritev = "pwritev"
)

// Options configures New. The zero value is ready to use.
type Options struct {
	// Entries is the submission ring size; 0 means DefaultEntries. The
	// kernel rounds it up to a power of two. It bounds how many writes go in
	// one submission; larger batches are split. Ignored by the fallback.
	Entries int
	// Fallback forces pwritev + fdatasync even where io_uring works.
	Fallback bool
	// Sync chooses how Write makes its blocks durable; the zero value is
	// SyncAuto.
	Sync SyncMode
	// Logger receives, at Info, the mechanism chosen at open and why. Nil
	// means slog.Default().
	Logger *slog.Logger
}
