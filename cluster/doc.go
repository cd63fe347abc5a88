// Package cluster makes dlogd's clustered-core and clustered-disk logs
// cluster-coherent: several hosts run the same mirror over shared legs,
// each host's kernel talks to its own dlogd, and the dlogds keep one log
// between them, coordinated over corosync's closed process groups (CPG:
// agreed order, virtual synchrony, membership, votequorum), the engine
// mirror clusters already run. The log logic lives here, over the Group
// interface; package cluster/cpg binds it to libcpg, and FakeNet runs it
// in-process with the same ordering guarantees for the tests.
//
// # What it guarantees
//
// One group per log uuid; every node that resumes the log joins it. The
// dirty set is the union of every node's marks; a node's CLEAR removes only
// its own mark. Resync work goes to one node at a time per region, and
// IS_REMOTE_RECOVERING on the others reports it. GET_SYNC_COUNT is the
// cluster's. A joining node gets the current state before it answers its
// kernel's RESUME. When a node leaves or dies, every region it had marked
// becomes out of sync (dirty until resynced) on the survivors, and any
// survivor whose kernel asks for work can resync it. No acknowledged mark
// is lost: tests/cluster kills nodes (corosync and dlogd, SIGKILL) in the
// middle of writes and checks it after every membership change.
//
// # The fast path: no cluster message on the mark path (clustered-disk)
//
// cmirrord sends every mark, flush and most queries through the group and
// waits for the server's answer. Here the requests on the write path are
// answered by the local dlogd alone:
//
//   - IN_SYNC, IS_CLEAN, IS_REMOTE_RECOVERING, GET_SYNC_COUNT: from the
//     replicated state in memory (the sync bits every member holds), no
//     lock on the IN_SYNC path;
//   - MARK/FLUSH, clustered-disk: md-cluster's idea. Each member owns a
//     slot on the shared log device, after the kernel's image, and keeps
//     its own marks there as a disk log image of its own (an engine disk log
//     over an offset device: the same changed-block write and device cache
//     flush as the single-node log). A FLUSH writes the member's slot and
//     answers: no message at all, the cost of a single-node FLUSH. If the
//     node dies, the survivors read its marks from its slot.
//   - MARK/FLUSH, clustered-core: there is no shared storage, so a node's
//     marks survive its death only if the others have them. A FLUSH with
//     new marks multicasts one ordered message with the marks (and the
//     clears gathered since the last one) and answers when that message
//     comes back to this member in agreed order: one CPG round trip per
//     flush batch, never more (a clear-only flush sends without waiting).
//     The 2x target is therefore for clustered-disk; clustered-core pays the
//     corosync round trip (measured in the README: about half a millisecond
//     over udpu on this machine, against ~15 ms for cmirrord).
//
// # The union image (clustered-disk)
//
// [0, buf_size) of the device is the kernel's disk log image. Several nodes
// cannot write it (a 4 KiB read-modify-write loses the others' bits), so
// one writer does: the server, the synced member with the lowest member id.
// It writes the image only at events in the group's order: when the state
// is founded (from the image and every slot, below), when it merges a
// departed member's slot (the slot's marks dirty, written and synced before
// the slot is freed and before the group learns the regions), and at the
// clean point. The image is exact, in the kernel's format and magic, at
// the clean point: the last member leaving (POSTSUSPEND while alone in the
// group) writes the sync bits minus every mark still in a slot, under
// LiveMagic with a cache flush, and only then the first block with the
// kernel's magic, changing nothing else (TestCleanPointOrder). While any
// member is active the image carries LiveMagic instead of the kernel's
// magic: it lacks the live members' marks, and a reader that does not merge
// the slots (the kernel's disk log, dlogd without --cluster) sees a wrong
// magic and, as the kernel does, resynchronises everything. So after a
// crash of the whole cluster a cluster dlogd resumes exactly (it merges the
// slots) and anything else resumes safely (full resync); after a clean
// shutdown, anything resumes exactly. Slot descriptors (owner, slot, region
// count, CRC) live in header bytes 64..103 of each slot image, which the
// kernel and the engine keep as read.
//
// # State: agreed order and state transfer
//
// The replicated state is the sync bits, the members and their status
// (unsynced, synced, retired), the hand-outs and open proposals, the slot
// table (clustered-disk) and every member's marks (clustered-core). Every
// synced member applies the same messages in the same order (SYNC,
// PROPOSE, VOTE, MARKS, LEAVING, MERGED, STATE and membership changes), so
// the copies stay equal; tests compare them. After every membership change
// each member multicasts ANNOUNCE (its status). When all have announced,
// the lowest synced member sends a snapshot, taken at the delivery of that
// last ANNOUNCE, to the unsynced ones (STATE, in chunks); a joiner queues
// every event from its own join on, adopts the snapshot and replays what
// followed that ANNOUNCE, ending with the STATE itself, at which point it
// is synced like the others and is given a free slot. If no member is
// synced (the first to resume, or after the whole cluster died), the
// lowest unsynced member founds the state, once its partition is quorate
// and only at the delivery of an intent it multicast after it saw quorum:
// corosync reports quorum before it delivers the merged CPG view, and two
// members each alone in a view from before the merge must not both found
// (make clustertest caught that over knet). It founds clustered-disk from the device
// (the kernel's resume rules, sync/nosync included, plus every valid slot
// when the image is live), clustered-core fresh (everything to resync,
// unless nosync), as the kernel's core log. Only then does RESUME answer.
// Every message and snapshot is checked before use (protocol.md §8.5 m):
// header and exact lengths, this log's region count and size, regions in
// range, counts bounded, a snapshot's size exactly what THIS log's tables
// and bitmaps need (FuzzDecode, FuzzState).
//
// # Hand-out: resync never races a write
//
// Region r must never be recovered by node B while node A's writes to r
// may be in flight. dm-raid1 asks IS_REMOTE_RECOVERING(r) before a write
// (unless r is below the in_sync_hint it holds), then marks and flushes,
// then writes; it recovers one region at a time and quiesces it locally.
//
//   - IS_REMOTE_RECOVERING(r) answers 1 while r is out of sync (the kernel
//     delays the write until someone resyncs r; cmirrord does the same),
//     and r goes first when this node proposes. Answering 0 reserves r
//     for this node for Options.Reserve (5 s; the kernel marks and flushes
//     microseconds later, in the same worker pass).
//   - GET_RESYNC_WORK proposes a region out of sync (PROPOSE, agreed
//     order). Every other synced member votes: no if it has r marked, holds
//     a live reservation on it, may hold r as NOSYNC in its kernel's region
//     hash (it reported a failed write on r: only it may resync r, and its
//     veto ends when it reports r in sync), or has no
//     quorum. The proposal becomes a hand-out when the last vote arrives, at
//     the same point of the order on every member, so all agree without a
//     server. A region already handed out or proposed cannot be proposed.
//     The daemon runs GET_RESYNC_WORK on the log's worker (QueueResyncWork)
//     so the reader never waits for the votes. While regions are out of
//     sync and none is granted to this member yet (a vote open, every
//     candidate vetoed or held, its last SET_REGION_SYNC not yet
//     delivered), the answer is held up to Options.WorkTimeout (10 s,
//     below the kernel's 15 s resend): dm-raid1 asks again only when I/O
//     or a finished recovery wakes its worker, so "no work" while work
//     remains would leave an idle mirror unsynchronised (TestIdleResync).
//   - A member that voted yes and then gets a mark on r (its kernel wrote
//     without asking, below its hint) holds that FLUSH until the hand-out
//     ends: the write is issued after the resync, to every leg. The hold
//     is bounded by Options.GrantWait (5 s): the hand-out ends with a
//     SET_REGION_SYNC from the other kernel's single mirror worker, which
//     may itself be held in a FLUSH on a region this node recovers. After
//     GrantWait the FLUSH taints the region (a SYNC message, agreed order)
//     and answers once the taint is delivered; the holder's report of that
//     region is then discarded and the region stays out of sync, to be
//     resynced again after the write (TestFlushGrantCycle).
//   - SET_REGION_SYNC ends the hand-out; the reporting node answers the new
//     value at once (its kernel writes r right after), the others when the
//     message arrives.
//
// While presuspended (the kernel presuspends before it blocks I/O, so
// writes still arrive), IS_REMOTE_RECOVERING answers 0 with hint n and
// records that hint, so IN_SYNC answers 1 and those writes are marked
// (TestWriteAfterPresuspend). A RESUME of a running log (an aborted
// suspend, or the kernel's reconnect, CTR + RESUME after -ESRCH, which
// keeps the kernel's in_sync_hint) keeps the recorded hint
// (TestReconnectKeepsHint).
//
// The latch. A kernel below its in_sync_hint, or whose mirror was reported
// fully in sync (hint = region count), never asks IS_REMOTE_RECOVERING
// again until its next resume, and never asks for resync work. After a node
// dies, its regions go out of sync below every survivor's hint. If IN_SYNC
// answered 0 there, the survivor's write would go to the default leg only
// and the region-hash entry would stay NOSYNC until the table is reloaded,
// racing any other node's resync of that region for good. So IN_SYNC
// answers 1 for regions below the hint this node's kernel may hold (and for
// a region just reserved): such writes go to every leg with a mark, and the
// vote and the held FLUSH keep them apart from any resync. The cost: until
// the region is resynced, that node's reads of it may come from either leg
// (cmirrord answers 1 for every region once the mirror was in sync, for
// the same reason). Survivors whose mirrors were in sync do not resync a
// dead node's regions themselves (their kernels no longer ask); the first
// node that asks does: the dead node when it comes back, or any node after
// a suspend/resume (status shows the sync count below the region count
// until then).
//
// # Failure cases
//
//   - A node dies (or its dlogd or corosync is killed): CPG reports it
//     left. Its hand-out returns to the pool (the region stays out of sync,
//     its marks stay), its open proposal is dropped, its pending votes are
//     no longer awaited. clustered-core: every region in its replicated
//     marks goes out of sync. clustered-disk: the server reads its slot,
//     writes the image with those regions dirty (synced) and multicasts the
//     regions (MERGED); the slot is freed at the delivery of the last part,
//     and left as it is on the device until its next owner overwrites it,
//     so a server that dies before its MERGED leaves it is replaced by one
//     that merges the same slot again; a MERGED for a slot no longer
//     departed is ignored (TestMergeServerDies, TestMergeTwice). Its
//     acknowledged marks are in the slot because a FLUSH answered only
//     after the slot's cache flush. A slot that cannot be initialised at
//     RESUME fails every FLUSH until the next RESUME, and any failed FLUSH
//     shows the device as D in STATUS_INFO (TestSlotOpenFails).
//   - The server dies: the next lowest synced member is the server; it
//     merges every departed slot not yet merged (the state says which).
//   - The node recovering a region dies mid-recovery: the region stays out
//     of sync, its hand-out is dropped, another node gets it.
//   - A joiner: it answers its kernel only after it holds the state (and,
//     clustered-disk, its slot is initialised with its outstanding marks;
//     clustered-core, its outstanding marks came back from the group).
//     Marks its kernel still holds from before a suspend are kept by the
//     log instance and brought back at resume.
//   - A clean leave (POSTSUSPEND): the member flushes, multicasts LEAVING
//     and leaves; its outstanding marks become out of sync (as the kernel's
//     disk log resyncs regions still marked at suspend). The last member
//     writes the clean image.
//   - The whole cluster dies: the next member to resume (with quorum) finds
//     a live image and merges every valid slot: every acknowledged mark is
//     dirty (tested with the whole cluster killed mid-write).
//   - Partition: without quorum (votequorum) a member founds no state,
//     merges no slot, proposes nothing and votes no. Members of a minority
//     keep answering their kernels from what they have; they cannot be
//     stopped from writing, so, as for every shared-storage cluster, fencing
//     (a fence agent or sbd) must remove them before the majority resyncs
//     their regions. If two halves that both kept state meet again (a
//     partition healed without fencing), the member that notices refuses
//     hand-outs and fails flushes (split brain) instead of merging.
//   - corosync unreachable: CTR of a clustered log fails with the reason
//     (cmirrord lets dmsetup create succeed with a mirror that never
//     syncs). corosync lost later: the member counts as expelled: no
//     hand-outs, and FLUSH fails (its marks could not reach the others),
//     so dm-raid1 records a log failure instead of writing unprotected.
//   - RESUME without the group's state within JoinTimeout (60 s; no quorum,
//     say): RESUME fails; the log answers IN_SYNC 0 and IS_REMOTE_RECOVERING
//     1 (writes wait) and starts answering when the state arrives.
//
// Not covered:
//
//   - A dlogd restarted under a running kernel (kill -9 of dlogd alone; the
//     kernel reconnects with CTR and RESUME): the new member does not know
//     which regions the kernel still holds dirty or NOSYNC in its region
//     hash, so it would vote for another node to resync a region the kernel
//     writes without marking it again. The old member's marks are not lost
//     (its slot is merged; clustered-core: its flushed marks), but the
//     exclusion is. A suspend/resume of the mirror after a dlogd restart
//     closes it.
//   - A rolling table reload with a changed region count: members of one
//     group must have the same geometry (the joiner's state transfer is
//     refused); suspend every node to resize.
//   - Kernels with pre-5.2 32-bit regions, cmirrord's wire format: a
//     dlogd cluster does not talk to cmirrord (group names differ).
package cluster
