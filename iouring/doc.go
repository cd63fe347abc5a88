// Package iouring writes batches of blocks to one file descriptor and makes
// them durable with one fdatasync, using io_uring where the kernel allows it
// and pwritev + fdatasync where it does not. It knows nothing of dirty logs:
// the engine hands it the dirty pages of a flush as a []Block and gets back
// nil or a *BatchError naming each block that failed and the sync error.
//
// # Why batch, and why io_uring
//
// On the project's VMs the flush is the cost (platform.md §4): an empty
// fdatasync costs about 65 µs, one durable 4 KiB write about 250 µs, 64
// scattered pages with one sync about 1.1 ms and with 64 syncs about 17 ms.
// So a flush writes all its pages and then syncs once. With buffered I/O a
// plain loop of pwrite calls already reaches the 1.1 ms. With O_DIRECT each
// pwrite is a round trip to the device (about 70 µs serially), and the only
// way to keep 64 of them in flight from one goroutine without 64 threads is
// io_uring: 64 O_DIRECT writes complete in about 0.26 ms that way, against
// 4.4–6.7 ms serially.
//
// # Why a drained fsync in the same submission
//
// Write puts the writes and an IORING_OP_FSYNC(DATASYNC) marked
// IOSQE_IO_DRAIN into one submission and waits for all of them in one
// io_uring_enter. Drain makes the kernel start the fsync only after every
// earlier request has completed, so it covers all of them, and no extra
// round trip to user space is spent between the writes and the sync. Drain
// orders without linking: a failed write does not cancel the sync or the
// other writes, so every block is attempted and each failure is mapped to
// its block through the CQE's user_data (the block index; the fsync has its
// own tag).
//
// # Why plain ring flags
//
// The ring is set up with no flags. IORING_SETUP_SINGLE_ISSUER with
// DEFER_TASKRUN was measured to hang (platform.md §2): deferred task work,
// which is what issues a drained request once its predecessors finish, only
// runs when the submitting task asks for it, and a task asleep in
// io_uring_enter waiting for all writes plus the fsync never does. Waiting
// in two steps and pinning the goroutine to its thread would avoid that, for
// no gain worth the fragility here. Nothing else is exotic either: no SQPOLL,
// no registered files or buffers (they count against an 8 MiB
// RLIMIT_MEMLOCK), no linked requests.
//
// # Why in-house
//
// The public Go io_uring libraries were evaluated and rejected (platform.md
// §1): all are unmaintained, three of the four tried no longer link with Go
// 1.23 and later because they //go:linkname into package syscall, and the
// most liburing-like one reuses submission entries without clearing them, so
// a write landing in a slot last used by an fsync inherits fsync_flags as
// rw_flags and fails with EINVAL. This package is a few hundred lines over
// golang.org/x/sys/unix: the structs with compile-time size checks, setup,
// the three mmaps (one when the kernel has IORING_FEAT_SINGLE_MMAP), head
// and tail through sync/atomic, every SQE zeroed before use, an EINTR loop
// around io_uring_enter (the Go runtime's preemption signals interrupt its
// waits), and an opcode probe. A batch larger than the ring is split into
// submissions that are each reaped in full, so no more completions are ever
// outstanding than the completion ring holds; IORING_FEAT_NODROP is required
// all the same, and EBUSY or EAGAIN from io_uring_enter are answered by
// reaping and retrying.
//
// Buffers are the caller's and stay referenced until their completions
// arrive; they are best allocated with mmap (page-aligned for O_DIRECT and
// outside the Go heap). If the ring itself fails mid-batch the Writer
// becomes unusable and keeps the batch's buffers referenced, because the
// kernel may still read them.
//
// # Why a fallback
//
// io_uring is often unavailable: kernels before 5.6 lack IORING_OP_WRITE,
// kernel.io_uring_disabled (6.6) can turn it off, and container seccomp
// profiles commonly refuse io_uring_setup with EPERM. New then returns a
// Writer that sorts the blocks by offset, coalesces adjacent ones into one
// pwritev (falling back to one pwrite per block to attribute an error), and
// calls fdatasync. It has the same API and error semantics and runs the same
// test suite; it is as fast for buffered I/O and slower for O_DIRECT.
//
// # Alignment
//
// O_DIRECT needs aligned memory, offsets and lengths, and what aligned means
// depends on the device: 512 bytes on this ext4, 4096 on a 4Kn device.
// ProbeAlignment asks the kernel (statx STATX_DIOALIGN, BLKSSZGET) instead of
// assuming. tmpfs accepts misaligned O_DIRECT, so alignment must be tested on
// ext4 or a loop device made with --sector-size 4096, as this package's
// integration tests do.
package iouring
