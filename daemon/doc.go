// Package daemon is dlogd's core: it maps each (uuid, luid) the kernel
// names to an engine.Log and turns every dm-log-userspace request into an
// engine call and a reply (docs/protocol.md §3, the items of
// docs/conformance.md).
//
// A Daemon is a transport.Handler. The contract:
//
//   - Handle gets each datagram decoded once, by the transport's admission
//     check (transport.Datagram). Requests that only touch memory are
//     answered at once on the transport's goroutine; RESUME, FLUSH, POSTSUSPEND, MARK_REGION (and
//     GET_RESYNC_WORK of a cluster log) run on a worker goroutine per log,
//     in arrival order; CTR and DTR on one CTR/DTR goroutine. An IN_SYNC
//     never waits behind a flush of any log (docs/conformance.md item 14).
//     A single-node core log's MARK and FLUSH, whose flush costs nothing,
//     are run at once on the transport's goroutine when nothing is queued
//     or running on the log's worker (the same order, no hand-off); so is
//     a single-node disk log's FLUSH that has nothing to write (the one
//     after a MARK, which made its write durable: engine FlushNoIO), when
//     nothing is queued and the worker runs at most a MARK or FLUSH. Any
//     other single-node disk MARK or FLUSH runs on the transport's
//     goroutine too when nothing is queued or running on the worker and
//     the transport can go on receiving without it (transport
//     Datagram.Detach): that goroutine takes the worker's place for the
//     log until the I/O is done (requests of the log queue behind it),
//     writes, and replies; no receiving goroutine ever blocks on a disk.
//   - A MARK_REGION is durable before it is acknowledged, and the marks of
//     an integrated FLUSH are applied in arrival order before the flush.
//   - The steady-state request path (MARK, CLEAR, IN_SYNC) does not
//     allocate, and readers of bits take no lock.
//   - A request for an unknown (uuid, luid) gets -ESRCH (the kernel then
//     reconnects, docs/protocol.md §1.6); DTR of an unknown log -EINVAL; a
//     repeated CTR with the same string (a reconnect, or the kernel's resend
//     of a slow table-load CTR) succeeds and keeps the state; the CTR reply
//     names the log device as the opened block device's major:minor (nothing
//     for a regular file), only for version 2+ and never on the reconnect CTR; a newer protocol version is served as 3 with one
//     warning; a worker queue past maxQueued answers -EAGAIN.
//
// Why each of these: docs/design/daemon.md.
package daemon
