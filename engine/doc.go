// Package engine is dlog's dirty region log: the methods of the kernel's
// struct dm_dirty_log_type (ctr/dtr, presuspend, postsuspend, resume,
// region size, is_clean, in_sync, flush, mark/clear region,
// get_resync_work, set_region_sync, get_sync_count, status,
// is_remote_recovering) with the semantics of drivers/md/dm-log.c, in two
// flavours behind one Log interface:
//
//   - core (and cmirrord's clustered-core): state in memory only;
//   - disk (and clustered-disk): state persisted on a log device in the
//     kernel's own on-disk format (package header), so that an image
//     written by the kernel's disk log is resumed here with the same dirty
//     set, and the other way round.
//
// # State
//
// A log keeps three bitmaps (package bitmap), one bit per region each:
// clean bits (1 = clean; for the disk log these are the image's own bits),
// sync bits (1 = in sync) and recovering bits (handed out by
// GetResyncWork, not yet reported by SetRegionSync): three bits per region,
// plus a 128-byte shard header per 32768 regions. A small mutex guards the
// resync cursor and the suspend state; the bitmaps have their own shard
// locks, and IsClean and InSync never take any lock.
//
// # Resume
//
// Resume reads [0, buf_size) of the device and applies the kernel's
// disk_resume rules one by one (protocol.md §4.4): a wrong magic, or a sync
// or nosync argument, means a fresh log; version 1 is upgraded; another
// version fails the device (status D) and everything is resynchronised;
// regions beyond the stored count are dirty (or clean, for nosync); the
// bits of a shrunken log up to the next 64 are cleared; sync bits become a
// copy of the clean bits; the header is rewritten with this activation's
// region count; the whole image is written and the device cache flushed. A
// read error, like the kernel's, only fails the device; a write or cache
// flush error is also returned. Bytes the kernel does not interpret (16 to
// 1023, and past the bitset) are written back as read. The golden tests
// check every rule against images the kernel itself wrote.
//
// # Flush
//
// The kernel's disk_flush rewrites the header and the whole bitmap at
// every flush that follows a change. Flush here writes only the 4 KiB
// blocks of the image whose bits changed since the last flush, in one
// io_uring submission (package iouring) followed, when any of those changes
// is a mark, by one fdatasync drained behind the writes: the device cache
// flush that makes marks durable. A flush with only clears is written but
// not synced (a lost clear only costs a resync); a flush with no change does
// no I/O at all. Changes to sync or recovering bits are not on disk and
// cause no I/O.
//
// Concurrent Flush calls are grouped: each call waits for the first flush
// that starts after it was made, so one device write and one cache flush
// serve every mark made before it. Marks keep landing in the bitmap while a
// flush writes: the flush takes each block's changed flag before copying
// the block into its own staging memory, and a mark sets the flag after
// its bit, so a mark is in this flush or the next one, never in neither.
// A block whose write fails is flagged again; after a failed cache flush
// the sync stays owed and every block of that flush is flagged again (its
// write may have been lost with the cache), so the next flush rewrites and
// syncs them; the device is marked failed as the
// kernel does: D after a read or write error, F (shown first) after a
// failed cache flush. Both stay until the log is reconstructed.
//
// Durability follows: when Flush returns nil, every mark made before the
// call is on stable storage. A crash at any instant leaves each block of the
// image either as last written or as being written, and every version of a
// block holds every mark acknowledged before it: the log can only
// over-report dirty regions. TestCrash kills a child process at random
// instants (200 times in `make test`, 10,000 in `make crash`) and
// TestDiskTornFlush tears writes sector by sector through package faultio;
// neither has lost a mark.
//
// # Memory and the choice of mapping
//
// Every bitmap, the disk image and the flush's staging blocks live in
// anonymous private mappings made with mmap-go: page-aligned, as O_DIRECT
// requires, outside the Go heap (the GC never scans or moves them) and
// lockable as a whole. The log device itself is not mapped. A MAP_SHARED
// mapping of the device would put the bitmap in the page cache, and the
// O_DIRECT writes of the flush path would then race the page cache's own
// writeback of the same pages: the kernel warns of "Page cache invalidation
// failure on direct I/O" and the cache can hold stale data (anchors.md §6
// item 2). Making that design coherent means giving up O_DIRECT for msync,
// which costs a write-protect fault on the first store to every page after
// each msync, on the mark path, besides the msync itself (platform.md §4:
// ~15 µs per fault, ~270 µs per msync of one page). The anonymous image is
// coherent by construction: the device is only ever read at resume and
// written by the flush, both with O_DIRECT; marks are plain memory stores.
// BenchmarkMapping in package bench measures one mark made durable each way.
//
// The kernel's disk log calls the mirror's flush callback, which flushes
// every leg, before it persists clears. dm-log-userspace never passes that
// callback to the daemon (cmirrord persists clears that may cover data
// still in a leg's volatile cache); Options.FlushCallback gives the engine
// the kernel's behaviour, and dlogd sets it to flush the legs of the
// mirror whose table names the log (daemon.LegFlusher).
//
// # Not reproduced
//
// A region handed out by GetResyncWork and not yet reported is handed out
// again by the next call, where the kernel's core log would skip it:
// dm-raid1 recovers one region at a time and asks only when it has none in
// flight, so such a call is a resend after a reply was lost, and skipping
// would strand the region until the next resume.
package engine
