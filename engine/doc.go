// Package engine is dlog's dirty region log: the methods of the kernel's
// struct dm_dirty_log_type (ctr/dtr, presuspend, postsuspend, resume,
// region size, is_clean, in_sync, flush, mark/clear region,
// get_resync_work, set_region_sync, get_sync_count, status,
// is_remote_recovering) with the semantics of drivers/md/dm-log.c, in two
// flavours behind one Log interface:
//
//   - core (and cmirrord's clustered-core): state in memory only;
//   - disk (and clustered-disk): state persisted on a log device in the
//     kernel's own on-disk format (package header, docs/disk-format.md),
//     so that an image written by the kernel's disk log is resumed here
//     with the same dirty set, and the other way round.
//
// The contract:
//
//   - Resume applies the kernel's disk_resume rules bit for bit
//     (docs/disk-format.md §4); bytes the kernel does not interpret are
//     written back as read. A read error fails the device (status D) as
//     the kernel does; a write or cache flush error is also returned.
//   - When Flush returns nil, every mark made before the call is on stable
//     storage. A crash at any instant can only over-report dirty regions,
//     never under-report. Concurrent Flush calls share one device write
//     and one cache flush; a flush with only clears is written, not synced.
//   - D after a failed read or write, F (shown first) after a failed cache
//     flush; both stay until the log is reconstructed.
//   - IsClean and InSync take no lock and never wait for I/O.
//
// The kernel's disk log flushes every leg before it persists clears;
// dm-log-userspace never passes that callback to a daemon, so
// Options.FlushCallback supplies it (dlogd flushes the legs of the mirror
// whose table names the log: daemon.LegFlusher). What is not reproduced and
// why the memory is anonymous rather than a mapping of the device:
// docs/design/engine.md.
package engine
