// Package iouring writes batches of blocks to one file descriptor and makes
// them durable with one fdatasync, using io_uring where the kernel allows it
// and pwritev + fdatasync where it does not. It knows nothing of dirty logs:
// the engine hands it the dirty pages of a flush as a []Block and gets back
// nil or a *BatchError naming each block that failed and the sync error.
//
// The contract:
//
//   - Write submits every block and a drained IORING_OP_FSYNC(DATASYNC) in
//     one submission (split only when the batch exceeds the ring): the sync
//     covers every write, a failed write cancels neither the sync nor the
//     other writes, and each failure is reported against its block.
//   - A synced Write of one run on disk (one block, or contiguous blocks)
//     is first tried as one pwritev2 with RWF_DSYNC (on an O_DIRECT block
//     device: a REQ_FUA write, then the device's cache flush); only if
//     that fails is the batch written and synced as above.
//   - Fsyncer fsyncs several fds (a mirror's legs) with one IORING_OP_FSYNC
//     each in one io_uring_enter.
//   - Buffers are the caller's and stay referenced until their completions
//     arrive; if the ring fails mid-batch the Writer becomes unusable and
//     keeps the batch's buffers referenced.
//   - When io_uring is unavailable (old kernel, io_uring_disabled, seccomp),
//     New returns a pwritev + fdatasync Writer with the same API and error
//     semantics.
//   - ProbeAlignment reports the O_DIRECT alignment the kernel demands
//     (statx STATX_DIOALIGN, BLKSSZGET) instead of assuming one.
//
// Why batching, a drained fsync, plain ring flags and an in-house wrapper,
// with the measurements behind each: docs/design/iouring.md and
// docs/platform.md §1-§4.
package iouring
