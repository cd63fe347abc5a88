// Package cluster makes dlogd's clustered-core and clustered-disk logs
// cluster-coherent: several hosts run the same mirror over shared legs,
// each host's kernel talks to its own dlogd, and the dlogds keep one log
// between them, coordinated over corosync's closed process groups (CPG:
// agreed order, virtual synchrony, membership, votequorum). The log logic
// lives here, over the Group interface; package cluster/cpg binds it to
// libcpg.
//
// The contract:
//
//   - One group per log uuid; every node that resumes the log joins it, and
//     answers its kernel's RESUME only once it holds the group's state.
//   - The dirty set is the union of every node's marks; a node's CLEAR
//     removes only its own mark. GET_SYNC_COUNT is the cluster's.
//   - Resync work goes to one node at a time per region, never while
//     another node may have writes to it in flight; IS_REMOTE_RECOVERING on
//     the others reports it.
//   - No acknowledged mark is lost when a node, the server or the whole
//     cluster dies: a departed node's marked regions go out of sync on the
//     survivors (clustered-disk reads them from the node's slot on the
//     shared device, clustered-core from the marks it multicast).
//   - clustered-disk answers MARK/FLUSH with no cluster message (each node
//     writes its own slot); clustered-core waits for one ordered CPG
//     message per flush batch. With Options.ClearLinger a node holds back
//     its CLEAR of a region it marked, so that a MARK of it soon after
//     costs nothing; a held clear is released at the first FLUSH after
//     ClearLinger, before this node votes on another's recovery of the
//     region, and at suspend and close: it only over-reports. With
//     Options.MarkAhead a sequential writer's new mark carries the next
//     regions in sync with it, held as held clears are, so the writer
//     waits for the group once every few regions: over-reporting too.
//   - clustered-disk: a node flushes its mirror's legs
//     (engine.Options.FlushCallback: dlogd's leg flush) before its slot
//     persists a clear and before it reports a recovered region in sync;
//     a failed leg flush reports the recovery failed. Each node flushes
//     its own legs, for the writes its own kernel made.
//   - After a clean shutdown the image is in the kernel's format; while any
//     node is active it carries LiveMagic, so a reader that does not merge
//     the slots resyncs everything rather than trust it.
//   - Fencing: a node whose member departed without LEAVING may still
//     write (only its dlogd may have died). Until its dlogd rejoins (the
//     new member takes the old one's marks) or the node is confirmed
//     fenced (Options.FenceConfirm, dlogd --fence-confirm; or the opt-in
//     Options.FenceTimeout over a NodeView), nothing is handed out for
//     resync and none of its slots is merged, in any partition. Quorum is
//     not enough to acknowledge a new mark: a member whose side is no
//     strict majority of its last view (its synced nodes and the
//     unconfirmed departed ones) holds FLUSHes carrying new marks and
//     merges nothing, as without quorum, until they rejoin or are
//     confirmed fenced. With two_node (both halves of a cut pair stay
//     quorate) and no fence confirmation, writes that need new marks
//     therefore stall on both nodes during a cut, and on a survivor after
//     a node dies, until the node is back. Once a
//     fenced node's regions are known out of sync, a node whose kernel
//     latched full sync restarts its mirror (Options.Restart; dlogd
//     suspends and resumes it through device-mapper) so that it asks for
//     resync work again.
//   - GET_RESYNC_WORK holds its answer only while a proposal of this
//     member is open, up to Options.WorkTimeout (200 ms by default):
//     dm-raid1 serves the mirror's reads and writes on the worker that
//     waits for it. With nothing proposable it answers "no work" at once.
//     A kernel so answered sleeps (it asks again only when I/O or a
//     finished recovery wakes its worker): the log proposes for it from
//     its event loop and, once a region is granted to this member, wakes
//     it (Options.Wake; dlogd reads 4 KiB of the mirror), at most one
//     wake at a time and never while suspended, so an idle mirror reaches
//     full sync. A kernel that latched full sync is restarted instead.
//   - One vote hands a member a batch of regions (each voter accepts the
//     subset it may); its kernel gets them one per GET_RESYNC_WORK with no
//     round trip, and the next batch is proposed before the grant runs
//     out. In-sync reports are multicast in batches (SYNCS), at most
//     500 ms late and before any later message of the reporter; until
//     delivered, the region stays held and out of sync for the others.
//   - Give-back: a write that waits (IS_REMOTE_RECOVERING 1) for a region
//     another member holds multicasts a WANT; the holder gives the region
//     back (RELEASE) unless its kernel was handed it, and the writer's
//     member proposes it first and hands it to its own kernel first. The
//     write still waits for a recovery, its own kernel's, never goes to
//     an out-of-sync region; a region handed to a kernel is never given
//     back.
//   - A write the kernel issues without IS_REMOTE_RECOVERING (below its
//     hint, presuspended, after a reconnect) is always marked: IN_SYNC
//     answers 1 below every hint this node returned, and RESUME of a
//     running log keeps it.
//   - A FLUSH holding a region another node recovers waits at most
//     Options.GrantWait, then taints it: that recovery's report is
//     discarded and the region stays out of sync.
//   - A FLUSH fails (and STATUS_INFO shows D) when the marks could not be
//     persisted: no slot, a failed slot write, the group lost.
//   - Without quorum a node founds no state, merges nothing and hands out
//     nothing. A synced member whose partition loses quorum drops to
//     unsynced: it holds every FLUSH carrying new marks (the kernel holds
//     those writes and resends every 15 s) until it has the quorate
//     group's state again, then re-establishes its marks (a new slot, or
//     MARKS) and answers; never, if it is fenced. Writes to regions its
//     kernel already holds dirty go on without dlogd: the fencing rule
//     covers them. A heal is such a rejoin, not a split brain; nothing is
//     merged or written to the image until every member of a new view has
//     announced. Two halves that both kept state (two_node) settle then:
//     a side the other confirmed fenced, else the side without the lowest
//     member, gives up its state and rejoins. Only when each side took
//     the other over (a lying fence confirmation) is it a split brain,
//     found before any write, erasing no slot; the member that finds it
//     fails every FLUSH from then on (STATUS_INFO D).
//     dm-raid1 holds writes after a failed log FLUSH only with
//     handle_errors in the mirror table: without it, it treats them as
//     written. corosync unreachable at CTR fails CTR with the reason; lost
//     later, FLUSH fails.
//   - Every message and snapshot is checked against this log's geometry
//     before use (docs/conformance.md §5 m).
//
// The design (fast path, union image, state transfer, hand-out votes, the
// in_sync latch, each failure case, and what is not covered):
// docs/design/cluster.md.
package cluster
