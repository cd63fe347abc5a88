// Package daemon is dlogd's core: it maps each (uuid, luid) the kernel
// names to an engine.Log and turns every dm-log-userspace request into an
// engine call and a reply (protocol.md §3, the conformance items of §8).
//
// # Requests and goroutines
//
// A Daemon is a transport.Handler. The transport calls Handle from its
// reader goroutine for each datagram, decoded once by the transport's
// admission check (transport.Datagram); Handle answers at once every request that only touches memory: IN_SYNC,
// IS_CLEAN, IS_REMOTE_RECOVERING, MARK_REGION, CLEAR_REGION,
// GET_RESYNC_WORK, SET_REGION_SYNC, GET_SYNC_COUNT, GET_REGION_SIZE,
// STATUS_*, PRESUSPEND. The requests that may wait (RESUME, FLUSH,
// POSTSUSPEND, MARK_REGION, see below, and GET_RESYNC_WORK of a cluster log,
// which waits for its group's votes) go to a worker goroutine of their
// log, which runs them in arrival order and replies when the I/O is done; CTR and DTR, which open
// and close devices and change the set of logs, go to one CTR/DTR
// goroutine. So an IN_SYNC never waits behind a flush, of its own log or
// of any other (§8.1 item 14), and replies leave in completion order,
// matched by the kernel on seq.
//
// The marks carried by an integrated FLUSH are applied by Handle, in
// arrival order with the MARK and CLEAR requests around them, before the
// FLUSH is queued: the worker's Flush then covers them (the engine's
// group commit waits for a flush that starts after the call).
//
// The table of logs is copied on write and read with one atomic load, so
// the request path takes no lock. A request holds a reference on its log
// while it uses it; DTR removes the log from the table, waits for the
// references to drain and for the worker to finish what was queued, and
// only then closes the log.
//
// # Marks are durable when acknowledged
//
// Without integrated flush the kernel sends a write batch's marks as
// MARK_REGION requests and then a FLUSH. If a daemon died between the two,
// the kernel would reconnect to the next daemon (CTR, RESUME), retry the
// FLUSH there, get a success, and write to regions whose marks only the
// dead daemon had: a crash later would leave them unresynced. So a MARK is
// applied in arrival order like every bit change, then queued to the log's
// worker, which flushes before replying (a device write and sync for a
// disk log, a cluster message for a cluster core log, nothing for a core
// log, whose state file already holds the mark); the FLUSH that follows
// finds nothing to write. One sync per batch either way.
//
// # Never stall the I/O path
//
// dlogd sits in the write path of the block devices it serves: the kernel
// holds a mirror's writes until the log answers (protocol.md §6.2), and
// the daemon may itself need those devices (its log device, swap). So:
//
//   - dlogd serve locks its memory (mlockall), because a page fault that
//     must reclaim memory by writing to a device this daemon serves would
//     wait for an answer only this daemon can give (anchors.md §6 item 9);
//   - the steady-state request path does not allocate (MARK, CLEAR and
//     IN_SYNC are tested at 0 allocations): no garbage, so no collector
//     work driven by I/O, and no allocation that could stall;
//   - reply buffers come from a pool and payloads are built on the stack;
//   - readers of bits (IN_SYNC, IS_CLEAN) take no lock at all, so no disk
//     write can hold them up.
//
// # Choices where the kernel leaves room
//
//   - A request for an unknown (uuid, luid) gets -ESRCH, which makes the
//     kernel replay CTR and RESUME and retry (§1.6): after a daemon restart
//     the mirrors reconnect by themselves. DTR of an unknown log gets
//     -EINVAL.
//   - A CTR for an existing (uuid, luid) with the same constructor string
//     succeeds with no data and keeps the log's state (the reconnect
//     sequence, which can come twice from two blocked kernel contexts); one
//     with a different string replaces a stale log whose DTR was missed.
//   - The log device name is returned in the CTR reply only for version 2+
//     kernels, and not on the reconnect CTR (recognised by its trailing
//     NUL), which offers no room for it.
//   - A newer protocol version is served as version 3 with one warning.
//   - A worker queue past maxQueued requests answers -EAGAIN (the kernel
//     resends); only a flooding peer can get there.
package daemon
