package cluster

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dlog-dev/dlog/engine"
)

// Slot states (clustered-disk).
const (
	slotFree     = 0
	slotUsed     = 1 // owned by a synced member
	slotDeparted = 2 // its owner left or died: the server merges it, then frees it
)

type member struct {
	status uint8 // stUnsynced, stSynced, stRetired
	slot   int   // clustered-disk: the member's slot, or -1
}

type slotInfo struct {
	owner MemberID
	state uint8
}

// proposal is an open PROPOSE: the regions still free when it was
// delivered, and which of them every voter so far accepted.
type proposal struct {
	id      uint64
	regions []uint64   // 1 to maxBatch
	accept  uint64     // bit i: regions[i] accepted by every vote so far
	waiting []MemberID // voters still to answer, sorted
}

// accepted returns the regions of p that every vote accepted.
func (p *proposal) accepted() []uint64 {
	var out []uint64
	for i, r := range p.regions {
		if p.accept&(1<<i) != 0 {
			out = append(out, r)
		}
	}
	return out
}

// allOf is the accept mask of k regions.
func allOf(k int) uint64 {
	if k >= 64 {
		return ^uint64(0)
	}
	return 1<<k - 1
}

// bits is a bitmap over Go memory that can be snapshotted word by word.
type bits struct {
	words []uint64
	*engine.Bitmap
}

func newBits(n uint64, fill bool) bits {
	w := make([]uint64, max(1, engine.BitsetWords(n)))
	if fill {
		for i := range w {
			w[i] = ^uint64(0)
		}
		if r := n % 64; r != 0 {
			w[n/64] = 1<<r - 1
		}
		if n == 0 {
			w[0] = 0
		}
	}
	b, err := engine.NewBitmap(w, n)
	if err != nil {
		panic(err) // sizes are computed above
	}
	return bits{w, b}
}

// bitsFor returns m[k], made empty for n regions if absent.
func bitsFor[K comparable](m map[K]bits, k K, n uint64) bits {
	b, ok := m[k]
	if !ok {
		b = newBits(n, false)
		m[k] = b
	}
	return b
}

// orBits sets in dst every bit set in src.
func orBits(dst, src bits) {
	for r, ok := src.NextSet(0); ok; r, ok = src.NextSet(r + 1) {
		dst.Set(r)
	}
}

// state is the replicated part of a cluster log: every synced member holds
// the same copy, changed only by events in the group's agreed order.
type state struct {
	n       uint64
	core    bool
	members map[MemberID]*member
	slots   [MaxSlots]slotInfo
	nslots  int
	grants  map[MemberID][]uint64  // the regions each member holds for recovery (at most maxBatch), not yet reported
	pending map[MemberID]*proposal // at most one open proposal per member
	sync    bits                   // 1 = in sync (the cluster's sync bits)
	marksOf map[MemberID]bits      // clustered-core: every member's marks
	tainted map[uint64]bool        // handed out or proposed regions another member wrote meanwhile
	// unfenced: nodes a synced member of which departed without LEAVING
	// and which neither rejoined nor were confirmed fenced: their kernel
	// may still write, so nothing is handed out and no slot of theirs is
	// merged (docs/design/cluster.md, "Fencing").
	unfenced map[uint32]bool
	orphans  map[uint32]bits // clustered-core: the marks of an unfenced node's departed members
}

// taintBit flags a tainted region in a snapshot's grant and proposal
// records (regions are below 2^63).
const taintBit = 1 << 63

func newState(n uint64, core bool, nslots int) *state {
	return &state{
		n: n, core: core, nslots: nslots,
		members:  map[MemberID]*member{},
		grants:   map[MemberID][]uint64{},
		pending:  map[MemberID]*proposal{},
		marksOf:  map[MemberID]bits{},
		tainted:  map[uint64]bool{},
		sync:     newBits(n, false),
		unfenced: map[uint32]bool{},
		orphans:  map[uint32]bits{},
	}
}

func (s *state) synced() []MemberID {
	var out []MemberID
	for id, m := range s.members {
		if m.status == stSynced {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (s *state) isSynced(id MemberID) bool {
	m := s.members[id]
	return m != nil && m.status == stSynced
}

// lockedBy reports which member holds region r: granted to it, or under an
// open proposal of it.
func (s *state) lockedBy(r uint64) (MemberID, bool) {
	for id, g := range s.grants {
		if slices.Contains(g, r) {
			return id, true
		}
	}
	for id, p := range s.pending {
		if slices.Contains(p.regions, r) {
			return id, true
		}
	}
	return 0, false
}

// ungrant ends id's hold on r (reported, given back); it reports whether
// id held r.
func (s *state) ungrant(id MemberID, r uint64) bool {
	g := s.grants[id]
	i := slices.Index(g, r)
	if i < 0 {
		return false
	}
	g = slices.Delete(g, i, i+1)
	if len(g) == 0 {
		delete(s.grants, id)
	} else {
		s.grants[id] = g
	}
	s.untaint(r)
	return true
}

// dropGrants ends every hold of id: its grant and its open proposal.
func (s *state) dropGrants(id MemberID) {
	g := s.grants[id]
	delete(s.grants, id)
	for _, r := range g {
		s.untaint(r)
	}
	s.dropProposal(id)
}

// dropProposal forgets id's open proposal.
func (s *state) dropProposal(id MemberID) {
	p := s.pending[id]
	if p == nil {
		return
	}
	delete(s.pending, id)
	for _, r := range p.regions {
		s.untaint(r)
	}
}

// Snapshot layout (little-endian). A joiner checks every count and the
// exact total against THIS log (docs/conformance.md §5 m).
const (
	stateMagic   = 0x54534C44 // "DLST"
	stateVersion = 3
	stateFixed   = 64
	memberRec    = 16
	slotRec      = 16
	grantRec     = 16 // then 8 per region
	pendingRec   = 32 // then 8 per region and 8 per voter awaited
	recipRec     = 8
)

// encode snapshots s, taken while processing the delivery of message
// (pointFrom, pointSeq), for the recipients.
func (s *state) encode(rs uint32, pointFrom MemberID, pointSeq uint64, recipients []MemberID) []byte {
	le := binary.LittleEndian
	ids := make([]MemberID, 0, len(s.members))
	for id := range s.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	gids := sortedKeys(s.grants)
	pids := sortedKeys(s.pending)
	var marked []MemberID
	if s.core {
		marked = sortedKeys(s.marksOf)
	}
	b := make([]byte, 0, 4096+8*engine.BitsetWords(s.n)*(1+len(marked)))
	b = le.AppendUint32(b, stateMagic)
	b = le.AppendUint32(b, stateVersion)
	b = le.AppendUint64(b, s.n)
	b = le.AppendUint32(b, rs)
	b = le.AppendUint32(b, uint32(b2u(s.core)))
	b = le.AppendUint64(b, uint64(pointFrom))
	b = le.AppendUint64(b, pointSeq)
	for _, c := range []int{len(ids), s.nslots, len(gids), len(pids), len(recipients), len(marked)} {
		b = le.AppendUint32(b, uint32(c))
	}
	for _, id := range ids {
		m := s.members[id]
		b = le.AppendUint64(b, uint64(id))
		b = append(b, m.status, 0, 0, 0)
		b = le.AppendUint32(b, uint32(int32(m.slot)))
	}
	for i := 0; i < s.nslots; i++ {
		b = le.AppendUint64(b, uint64(s.slots[i].owner))
		b = append(b, s.slots[i].state, 0, 0, 0, 0, 0, 0, 0)
	}
	for _, id := range gids {
		g := s.grants[id]
		b = le.AppendUint64(b, uint64(id))
		b = le.AppendUint32(b, uint32(len(g)))
		b = le.AppendUint32(b, 0)
		for _, r := range g {
			b = le.AppendUint64(b, r|s.taintFlag(r))
		}
	}
	for _, id := range pids {
		p := s.pending[id]
		b = u64s(b, uint64(id), p.id, p.accept)
		b = le.AppendUint32(b, uint32(len(p.regions)))
		b = le.AppendUint32(b, uint32(len(p.waiting)))
		for _, r := range p.regions {
			b = le.AppendUint64(b, r|s.taintFlag(r))
		}
		for _, w := range p.waiting {
			b = le.AppendUint64(b, uint64(w))
		}
	}
	for _, r := range recipients {
		b = le.AppendUint64(b, uint64(r))
	}
	b = appendWords(b, s.sync, s.n)
	for _, id := range marked {
		b = le.AppendUint64(b, uint64(id))
		b = appendWords(b, s.marksOf[id], s.n)
	}
	nodes := make([]uint32, 0, len(s.unfenced))
	for k := range s.unfenced {
		nodes = append(nodes, k)
	}
	slices.Sort(nodes)
	b = le.AppendUint32(b, uint32(len(nodes)))
	for _, k := range nodes {
		o, ok := s.orphans[k]
		b = le.AppendUint32(b, k)
		b = le.AppendUint32(b, uint32(b2u(ok)))
		if ok {
			b = appendWords(b, o, s.n)
		}
	}
	return b
}

func (s *state) taintFlag(r uint64) uint64 {
	if s.tainted[r] {
		return taintBit
	}
	return 0
}

// untaint forgets a taint once nobody holds r any more.
func (s *state) untaint(r uint64) {
	if _, held := s.lockedBy(r); !held {
		delete(s.tainted, r)
	}
}

func appendWords(b []byte, x bits, n uint64) []byte {
	nw := uint64(engine.BitsetWords(n))
	for i := uint64(0); i < nw; i++ {
		b = binary.LittleEndian.AppendUint64(b, x.words[i])
	}
	return b
}

func sortedKeys[V any](m map[MemberID]V) []MemberID {
	out := make([]MemberID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// snapshot is a decoded state transfer.
type snapshot struct {
	st         *state
	pointFrom  MemberID
	pointSeq   uint64
	recipients []MemberID
}

// decodeState checks and decodes a state blob for a log of n regions of
// size rs, core or disk, with nslots slots.
func decodeState(b []byte, n uint64, rs uint32, core bool, nslots int) (*snapshot, error) {
	le := binary.LittleEndian
	bad := func(f string, a ...any) (*snapshot, error) {
		return nil, fmt.Errorf("%w: state: %s", ErrMalformed, fmt.Sprintf(f, a...))
	}
	if len(b) < stateFixed {
		return bad("%d bytes, shorter than its %d-byte header", len(b), stateFixed)
	}
	if le.Uint32(b) != stateMagic || le.Uint32(b[4:]) != stateVersion {
		return bad("bad magic or version")
	}
	if le.Uint64(b[8:]) != n || le.Uint32(b[16:]) != rs {
		return bad("for a log of %d regions of %d sectors, this one has %d of %d", le.Uint64(b[8:]), le.Uint32(b[16:]), n, rs)
	}
	if (le.Uint32(b[20:]) == 1) != core {
		return bad("clustered-core flag %d does not match this log", le.Uint32(b[20:]))
	}
	sn := &snapshot{pointFrom: MemberID(le.Uint64(b[24:])), pointSeq: le.Uint64(b[32:])}
	cnt := make([]int, 6)
	for i := range cnt {
		cnt[i] = int(le.Uint32(b[40+4*i:]))
	}
	nm, ns, ng, np, nr, nk := cnt[0], cnt[1], cnt[2], cnt[3], cnt[4], cnt[5]
	if nm > MaxMembers || ng > nm || np > nm || nr > nm || nk > nm {
		return bad("counts %v beyond %d members", cnt, MaxMembers)
	}
	if ns != nslots {
		return bad("%d slots, this log device has %d", ns, nslots)
	}
	if !core && nk != 0 {
		return bad("mark bitmaps in a clustered-disk state")
	}
	bs := 8 * engine.BitsetWords(n)
	p := b[stateFixed:]
	need := func(k int) bool { return len(p) >= k }
	take := func(k int) []byte { q := p[:k]; p = p[k:]; return q }
	st := newState(n, core, nslots)
	if !need(nm*memberRec + ns*slotRec) {
		return bad("truncated tables")
	}
	for i := 0; i < nm; i++ {
		q := take(memberRec)
		id := MemberID(le.Uint64(q))
		slot := int(int32(le.Uint32(q[12:])))
		if q[8] > stRetired || slot < -1 || slot >= nslots || st.members[id] != nil {
			return bad("member record %d", i)
		}
		st.members[id] = &member{status: q[8], slot: slot}
	}
	for i := 0; i < ns; i++ {
		q := take(slotRec)
		st.slots[i] = slotInfo{owner: MemberID(le.Uint64(q)), state: q[8]}
		if q[8] > slotDeparted {
			return bad("slot %d state %d", i, q[8])
		}
	}
	// regions reads k held regions, each below n, taken by no other
	// grant or proposal, with its taint flag.
	regions := func(k int) ([]uint64, bool) {
		out := make([]uint64, k)
		for j := range out {
			r := le.Uint64(take(8))
			if r&taintBit != 0 {
				r &^= taintBit
				st.tainted[r] = true
			}
			if _, held := st.lockedBy(r); held || r >= n || slices.Contains(out[:j], r) {
				return nil, false
			}
			out[j] = r
		}
		return out, true
	}
	for i := 0; i < ng; i++ {
		if !need(grantRec) {
			return bad("truncated grant %d", i)
		}
		q := take(grantRec)
		id, k := MemberID(le.Uint64(q)), int(le.Uint32(q[8:]))
		if st.members[id] == nil || st.grants[id] != nil || k == 0 || k > maxBatch || le.Uint32(q[12:]) != 0 || !need(8*k) {
			return bad("grant record %d", i)
		}
		g, ok := regions(k)
		if !ok {
			return bad("grant record %d: a region out of range or held twice", i)
		}
		st.grants[id] = g
	}
	for i := 0; i < np; i++ {
		if !need(pendingRec) {
			return bad("truncated proposal %d", i)
		}
		q := take(pendingRec)
		id := MemberID(le.Uint64(q))
		pr := &proposal{id: le.Uint64(q[8:]), accept: le.Uint64(q[16:])}
		k, nw := int(le.Uint32(q[24:])), int(le.Uint32(q[28:]))
		if st.members[id] == nil || k == 0 || k > maxBatch || pr.accept&^allOf(k) != 0 || nw > nm || st.pending[id] != nil || !need(8*(k+nw)) {
			return bad("proposal record %d", i)
		}
		var ok bool
		if pr.regions, ok = regions(k); !ok {
			return bad("proposal record %d: a region out of range or held twice", i)
		}
		for k := 0; k < nw; k++ {
			w := MemberID(le.Uint64(take(8)))
			if st.members[w] == nil {
				return bad("proposal %d waits for a non-member", i)
			}
			pr.waiting = append(pr.waiting, w)
		}
		st.pending[id] = pr
	}
	if !need(nr * recipRec) {
		return bad("truncated recipients")
	}
	for i := 0; i < nr; i++ {
		r := MemberID(le.Uint64(take(recipRec)))
		if st.members[r] == nil {
			return bad("recipient %s is not a member", r)
		}
		sn.recipients = append(sn.recipients, r)
	}
	if len(p) < bs+nk*(8+bs)+4 {
		return bad("%d bytes of bitmaps, want at least %d for %d regions and %d mark sets", len(p), bs+nk*(8+bs)+4, n, nk)
	}
	if err := readWords(st.sync, take(bs), n); err != nil {
		return bad("sync bits: %v", err)
	}
	for i := 0; i < nk; i++ {
		id := MemberID(le.Uint64(take(8)))
		if st.members[id] == nil {
			return bad("marks of a non-member")
		}
		m := newBits(n, false)
		if err := readWords(m, take(bs), n); err != nil {
			return bad("marks: %v", err)
		}
		st.marksOf[id] = m
	}
	nu := int(le.Uint32(take(4)))
	if nu > MaxMembers {
		return bad("%d unfenced nodes", nu)
	}
	for i := 0; i < nu; i++ {
		if !need(8) {
			return bad("truncated unfenced node %d", i)
		}
		q := take(8)
		k, has := le.Uint32(q), le.Uint32(q[4:])
		if st.unfenced[k] || has > 1 || (has == 1 && !core) || (has == 1 && !need(bs)) {
			return bad("unfenced node record %d", i)
		}
		st.unfenced[k] = true
		if has == 1 {
			o := newBits(n, false)
			if err := readWords(o, take(bs), n); err != nil {
				return bad("orphan marks: %v", err)
			}
			st.orphans[k] = o
		}
	}
	if len(p) != 0 {
		return bad("%d bytes past the end", len(p))
	}
	sn.st = st
	return sn, nil
}

func readWords(x bits, b []byte, n uint64) error {
	for i := range len(b) / 8 {
		x.words[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	if r := n % 64; r != 0 && x.words[n/64]>>r != 0 {
		return fmt.Errorf("bits set beyond region %d", n)
	}
	x.Recount()
	return nil
}
