package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dlog-dev/dlog/engine"
)

// The wire format of cluster messages. Every message is a 32-byte header
// and a payload, little-endian:
//
//	0  u32 magic "DLCM"      4  u8 version (1)   5  u8 type   6  u16 0
//	8  u64 sender's message sequence number
//	16 u64 region count of the sender's log
//	24 u32 region size of the sender's log (sectors)
//	28 u32 payload length
//
// Decode checks every length before it uses it (docs/conformance.md §5 m): the
// message is at least the header, the payload length is exactly what
// follows, the sender's log has THIS log's region count and size, each
// type's payload has exactly its size (lists: count fields that match the
// length, bounded), every region is below the region count, and state
// transfer chunks stay inside a total no larger than a state of THIS log
// can be. A message that fails is dropped and counted, never applied.
const (
	hdrLen      = 32
	wireMagic   = 0x4D434C44 // "DLCM" little-endian
	wireVersion = 2
	// maxList bounds the regions of one MARKS or MERGED message.
	maxList = 8192
	// maxBatch bounds the regions of one PROPOSE, and the regions one
	// member holds for recovery at a time (a VOTE answers each with one
	// bit of a 64-bit mask).
	maxBatch = 64
	// maxChunk bounds the state bytes of one STATE message.
	maxChunk = 256 << 10
	// MaxMembers bounds a group (corosync supports at most 32 nodes with
	// knet; members are processes, so some slack).
	MaxMembers = 64
	// MaxSlots bounds the per-node mark slots on a clustered-disk device.
	MaxSlots = 32
)

type msgType uint8

const (
	mAnnounce msgType = iota + 1 // a member's status after a membership change
	mMarks                       // clustered-core: marks and clears of the sender
	mSync                        // SET_REGION_SYNC
	mPropose                     // a resync hand-out proposal
	mVote                        // accept or veto of a proposal
	mLeaving                     // the sender's kernel suspended the log; it leaves
	mMerged                      // clustered-disk: a departed member's slot, merged
	mState                       // a chunk of a state transfer to joiners
	mFenced                      // a departed node is confirmed fenced: its regions may be resynced
	mSyncs                       // SET_REGION_SYNC in sync of several regions, in the order reported
	mTypeEnd
)

var typeNames = [...]string{"", "ANNOUNCE", "MARKS", "SYNC", "PROPOSE", "VOTE", "LEAVING", "MERGED", "STATE", "FENCED", "SYNCS"}

func (t msgType) String() string {
	if t > 0 && t < mTypeEnd {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Announce statuses.
const (
	stUnsynced = 0 // joined, waiting for the state
	stSynced   = 1 // has the state
	stRetired  = 2 // left the log (LEAVING delivered); never a source of state
)

// message is a decoded cluster message; which fields are set depends on
// Type. Lists alias the decoded buffer's copy.
type message struct {
	Type msgType
	Seq  uint64

	Status  uint8  // ANNOUNCE
	Flags   uint8  // ANNOUNCE: annTookOver
	Members uint32 // ANNOUNCE: membership size the sender saw

	Marks, Clears []uint64 // MARKS; Marks also for MERGED and SYNCS

	Region uint64 // SYNC
	Value  uint64 // SYNC: 0 or 1, syncTaint, syncRelease, syncWant

	Regions  []uint64 // PROPOSE: 1 to maxBatch distinct regions
	Proposal uint64   // PROPOSE, VOTE
	Proposer MemberID // VOTE
	Accept   uint64   // VOTE: bit i accepts region i of the proposal as the group holds it

	Slot  uint32   // MERGED
	Owner MemberID // MERGED
	Last  bool     // MERGED

	Node uint32 // FENCED

	StateID       uint64 // STATE
	Offset, Total uint64 // STATE
	Data          []byte // STATE
}

// ErrMalformed is returned (wrapped) for a message that fails a check.
var ErrMalformed = errors.New("cluster: malformed message")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// codec encodes and decodes the messages of one log.
type codec struct {
	n  uint64 // region count
	rs uint32 // region size
}

func (c codec) head(b []byte, t msgType, seq uint64, plen int) []byte {
	b = binary.LittleEndian.AppendUint32(b, wireMagic)
	b = append(b, wireVersion, byte(t), 0, 0)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint64(b, c.n)
	b = binary.LittleEndian.AppendUint32(b, c.rs)
	return binary.LittleEndian.AppendUint32(b, uint32(plen))
}

func u64s(b []byte, v ...uint64) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b
}

func b2u(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// annTookOver in an ANNOUNCE: the sender's state took over (confirmed
// fenced) the node of a member of the new view that it does not hold
// synced; that member's state is the one to give up at a heal.
const annTookOver = 1

func (c codec) announce(seq uint64, status, flags uint8, members int) []byte {
	b := c.head(make([]byte, 0, hdrLen+8), mAnnounce, seq, 8)
	b = append(b, status, flags, 0, 0)
	return binary.LittleEndian.AppendUint32(b, uint32(members))
}

func (c codec) marks(seq uint64, marks, clears []uint64) []byte {
	p := 8 + 8*(len(marks)+len(clears))
	b := c.head(make([]byte, 0, hdrLen+p), mMarks, seq, p)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(marks)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(clears)))
	return u64s(u64s(b, marks...), clears...)
}

func (c codec) sync(seq, region uint64, inSync bool) []byte {
	return u64s(c.head(make([]byte, 0, hdrLen+16), mSync, seq, 16), region, b2u(inSync))
}

// syncTaint is the SYNC value of a taint: the sender's kernel writes the
// region while another member holds it for recovery (a FLUSH that waited
// Options.GrantWait for the hand-out to end); that recovery's outcome is
// discarded and the region stays out of sync.
const syncTaint = 2

func (c codec) taint(seq, region uint64) []byte {
	return u64s(c.head(make([]byte, 0, hdrLen+16), mSync, seq, 16), region, syncTaint)
}

// syncRelease is the SYNC value of a granted region given back unrecovered
// (its sender's kernel was never handed it): the grant ends, the region's
// sync bit does not change.
const syncRelease = 3

func (c codec) release(seq, region uint64) []byte {
	return u64s(c.head(make([]byte, 0, hdrLen+16), mSync, seq, 16), region, syncRelease)
}

// syncWant is the SYNC value of a want: the sender's kernel waits to write
// the region (IS_REMOTE_RECOVERING answered 1) while another member holds
// it for recovery. The holder gives it back (syncRelease) if its kernel
// was not handed it yet; the others ignore it. A member of wire version 2
// drops it as malformed, and the write waits for the holder's recovery as
// it did there (docs/design/cluster.md, "Give-back").
const syncWant = 4

func (c codec) want(seq, region uint64) []byte {
	return u64s(c.head(make([]byte, 0, hdrLen+16), mSync, seq, 16), region, syncWant)
}

// propose asks the group for regions to recover (1 to maxBatch, distinct):
// id u64, count u32, 0 u32, the regions.
func (c codec) propose(seq, id uint64, regions []uint64) []byte {
	p := 16 + 8*len(regions)
	b := c.head(make([]byte, 0, hdrLen+p), mPropose, seq, p)
	b = binary.LittleEndian.AppendUint64(b, id)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(regions)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return u64s(b, regions...)
}

// vote answers proposal id of proposer: bit i of accept accepts region i of
// the proposal as every member holds it (the proposed regions still free
// when the PROPOSE was delivered, in their order).
func (c codec) vote(seq uint64, proposer MemberID, id uint64, accept uint64) []byte {
	return u64s(c.head(make([]byte, 0, hdrLen+24), mVote, seq, 24), uint64(proposer), id, accept)
}

// syncs reports regions recovered (in sync) in one message: count u32,
// 0 u32, the regions (1 to maxList).
func (c codec) syncs(seq uint64, regions []uint64) []byte {
	p := 8 + 8*len(regions)
	b := c.head(make([]byte, 0, hdrLen+p), mSyncs, seq, p)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(regions)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return u64s(b, regions...)
}

func (c codec) fenced(seq uint64, node uint32) []byte {
	return u64s(c.head(make([]byte, 0, hdrLen+8), mFenced, seq, 8), uint64(node))
}

func (c codec) leaving(seq uint64) []byte { return c.head(make([]byte, 0, hdrLen), mLeaving, seq, 0) }

func (c codec) merged(seq uint64, slot uint32, owner MemberID, regions []uint64, last bool) []byte {
	p := 24 + 8*len(regions)
	b := c.head(make([]byte, 0, hdrLen+p), mMerged, seq, p)
	b = binary.LittleEndian.AppendUint32(b, slot)
	b = binary.LittleEndian.AppendUint32(b, uint32(b2u(last)))
	b = binary.LittleEndian.AppendUint64(b, uint64(owner))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(regions)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return u64s(b, regions...)
}

func (c codec) state(seq, id, off, total uint64, data []byte) []byte {
	p := 32 + len(data)
	b := c.head(make([]byte, 0, hdrLen+p), mState, seq, p)
	b = u64s(b, id, off, total)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, data...)
}

// maxState is the largest state blob a log of this geometry can send: the
// fixed part, the member, slot, grant and proposal tables at their bounds
// (maxBatch regions per grant and per proposal),
// the sync bitmap and, for clustered-core, one mark bitmap per member.
func (c codec) maxState() uint64 {
	bs := uint64(8 * engine.BitsetWords(c.n))
	return stateFixed + MaxMembers*(memberRec+grantRec+pendingRec+16*maxBatch+8*MaxMembers+recipRec) + MaxSlots*slotRec + bs*(1+MaxMembers)
}

// decode checks and decodes one message.
func (c codec) decode(b []byte) (message, error) {
	var m message
	if len(b) < hdrLen {
		return m, malformed("%d bytes, shorter than the %d-byte header", len(b), hdrLen)
	}
	le := binary.LittleEndian
	if le.Uint32(b) != wireMagic {
		return m, malformed("bad magic %#x", le.Uint32(b))
	}
	if b[4] != wireVersion {
		return m, malformed("wire version %d, want %d", b[4], wireVersion)
	}
	m.Type = msgType(b[5])
	if m.Type == 0 || m.Type >= mTypeEnd {
		return m, malformed("unknown message type %d", b[5])
	}
	m.Seq = le.Uint64(b[8:])
	if n := le.Uint64(b[16:]); n != c.n {
		return m, malformed("%s from a log of %d regions, this one has %d", m.Type, n, c.n)
	}
	if rs := le.Uint32(b[24:]); rs != c.rs {
		return m, malformed("%s from a log with region size %d, this one has %d", m.Type, rs, c.rs)
	}
	plen := le.Uint32(b[28:])
	if uint64(plen) != uint64(len(b)-hdrLen) {
		return m, malformed("%s payload length %d, but %d bytes follow the header", m.Type, plen, len(b)-hdrLen)
	}
	p := b[hdrLen:]
	exact := func(n int) error {
		if len(p) != n {
			return malformed("%s payload of %d bytes, want %d", m.Type, len(p), n)
		}
		return nil
	}
	region := func(r uint64) error {
		if r >= c.n {
			return malformed("%s names region %d of %d", m.Type, r, c.n)
		}
		return nil
	}
	// regionList reads the rest of the payload from off: a count u32
	// (1 to most), 0 u32, exactly that many regions.
	regionList := func(off int, most uint64) ([]uint64, error) {
		if len(p) < off+8 {
			return nil, malformed("%s payload of %d bytes, shorter than its fields", m.Type, len(p))
		}
		cnt := uint64(le.Uint32(p[off:]))
		if cnt == 0 || cnt > most {
			return nil, malformed("%s of %d regions (1 to %d)", m.Type, cnt, most)
		}
		if le.Uint32(p[off+4:]) != 0 {
			return nil, malformed("%s reserved field %#x", m.Type, le.Uint32(p[off+4:]))
		}
		if err := exact(off + 8 + 8*int(cnt)); err != nil {
			return nil, err
		}
		out := make([]uint64, cnt)
		for i := range out {
			out[i] = le.Uint64(p[off+8+8*i:])
			if err := region(out[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch m.Type {
	case mAnnounce:
		if err := exact(8); err != nil {
			return m, err
		}
		m.Status, m.Flags, m.Members = p[0], p[1], le.Uint32(p[4:])
		if m.Status > stRetired {
			return m, malformed("ANNOUNCE status %d", m.Status)
		}
		if m.Flags&^annTookOver != 0 {
			return m, malformed("ANNOUNCE flags %#x", m.Flags)
		}
		if m.Members == 0 || m.Members > MaxMembers {
			return m, malformed("ANNOUNCE of a group of %d members", m.Members)
		}
	case mMarks:
		if len(p) < 8 {
			return m, malformed("MARKS payload of %d bytes, shorter than its counts", len(p))
		}
		nm, nc := uint64(le.Uint32(p)), uint64(le.Uint32(p[4:]))
		if nm+nc == 0 || nm+nc > maxList {
			return m, malformed("MARKS with %d marks and %d clears (1 to %d)", nm, nc, maxList)
		}
		if err := exact(int(8 + 8*(nm+nc))); err != nil {
			return m, err
		}
		all := make([]uint64, nm+nc)
		for i := range all {
			all[i] = le.Uint64(p[8+8*i:])
			if err := region(all[i]); err != nil {
				return m, err
			}
		}
		m.Marks, m.Clears = all[:nm:nm], all[nm:]
	case mSync:
		if err := exact(16); err != nil {
			return m, err
		}
		m.Region, m.Value = le.Uint64(p), le.Uint64(p[8:])
		if err := region(m.Region); err != nil {
			return m, err
		}
		if m.Value > syncWant {
			return m, malformed("SYNC value %d", m.Value)
		}
	case mPropose:
		if len(p) < 8 {
			return m, malformed("PROPOSE payload of %d bytes, shorter than its fields", len(p))
		}
		m.Proposal = le.Uint64(p)
		var err error
		if m.Regions, err = regionList(8, maxBatch); err != nil {
			return m, err
		}
		for i, r := range m.Regions {
			if slices.Contains(m.Regions[:i], r) {
				return m, malformed("PROPOSE names region %d twice", r)
			}
		}
	case mVote:
		if err := exact(24); err != nil {
			return m, err
		}
		m.Proposer, m.Proposal, m.Accept = MemberID(le.Uint64(p)), le.Uint64(p[8:]), le.Uint64(p[16:])
	case mSyncs:
		var err error
		if m.Marks, err = regionList(0, maxList); err != nil {
			return m, err
		}
	case mLeaving:
		if err := exact(0); err != nil {
			return m, err
		}
	case mFenced:
		if err := exact(8); err != nil {
			return m, err
		}
		v := le.Uint64(p)
		if v > 1<<32-1 {
			return m, malformed("FENCED node %d", v)
		}
		m.Node = uint32(v)
	case mMerged:
		if len(p) < 24 {
			return m, malformed("MERGED payload of %d bytes, shorter than its fields", len(p))
		}
		m.Slot = le.Uint32(p)
		last := le.Uint32(p[4:])
		m.Owner = MemberID(le.Uint64(p[8:]))
		cnt := uint64(le.Uint32(p[16:]))
		if m.Slot >= MaxSlots {
			return m, malformed("MERGED slot %d of %d", m.Slot, MaxSlots)
		}
		if last > 1 {
			return m, malformed("MERGED last flag %d", last)
		}
		m.Last = last == 1
		if cnt > maxList {
			return m, malformed("MERGED with %d regions (at most %d)", cnt, maxList)
		}
		if err := exact(int(24 + 8*cnt)); err != nil {
			return m, err
		}
		m.Marks = make([]uint64, cnt)
		for i := range m.Marks {
			m.Marks[i] = le.Uint64(p[24+8*i:])
			if err := region(m.Marks[i]); err != nil {
				return m, err
			}
		}
	case mState:
		if len(p) < 32 {
			return m, malformed("STATE payload of %d bytes, shorter than its fields", len(p))
		}
		m.StateID, m.Offset, m.Total = le.Uint64(p), le.Uint64(p[8:]), le.Uint64(p[16:])
		dl := uint64(le.Uint32(p[24:]))
		if dl == 0 || dl > maxChunk {
			return m, malformed("STATE chunk of %d bytes (1 to %d)", dl, maxChunk)
		}
		if err := exact(int(32 + dl)); err != nil {
			return m, err
		}
		if m.Total > c.maxState() {
			return m, malformed("STATE of %d bytes, more than a state of this log can be (%d)", m.Total, c.maxState())
		}
		if m.Offset > m.Total || dl > m.Total-m.Offset {
			return m, malformed("STATE chunk [%d, %d) outside its total %d", m.Offset, m.Offset+dl, m.Total)
		}
		m.Data = p[32:]
	}
	return m, nil
}
