package cluster

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the cluster message decoder of a
// 100-region log: it must never panic, and a message it accepts must
// re-encode to the same bytes (no field is read that the checks did not
// cover).
func FuzzDecode(f *testing.F) {
	c := codec{n: 100, rs: 1024}
	f.Add(c.announce(1, stSynced, 0, 3))
	f.Add(c.marks(2, []uint64{1, 2, 99}, []uint64{5}))
	f.Add(c.sync(3, 7, true))
	f.Add(c.propose(4, 9, []uint64{42}))
	f.Add(c.propose(4, 10, []uint64{3, 1, 99, 50}))
	f.Add(c.vote(5, MakeMemberID(2, 77), 9, 0))
	f.Add(c.vote(5, MakeMemberID(2, 77), 10, 0b1011))
	f.Add(c.release(9, 7))
	f.Add(c.want(11, 99))
	f.Add(c.syncs(10, []uint64{4, 5, 99}))
	f.Add(c.leaving(6))
	f.Add(c.merged(7, 3, MakeMemberID(1, 5), []uint64{0, 50}, true))
	st := newState(100, true, 0)
	st.members[MakeMemberID(1, 1)] = &member{status: stSynced, slot: -1}
	st.members[MakeMemberID(2, 2)] = &member{status: stUnsynced, slot: -1}
	st.marksOf[MakeMemberID(1, 1)] = newBits(100, false)
	blob := st.encode(1024, MakeMemberID(1, 1), 3, []MemberID{MakeMemberID(2, 2)})
	f.Add(c.state(8, 1, 0, uint64(len(blob)), blob))
	f.Add(codec{n: 101, rs: 1024}.sync(1, 1, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := c.decode(b)
		if err != nil {
			return
		}
		var again []byte
		switch m.Type {
		case mAnnounce:
			again = c.announce(m.Seq, m.Status, m.Flags, int(m.Members))
		case mMarks:
			again = c.marks(m.Seq, m.Marks, m.Clears)
		case mSync:
			switch m.Value {
			case syncTaint:
				again = c.taint(m.Seq, m.Region)
			case syncRelease:
				again = c.release(m.Seq, m.Region)
			case syncWant:
				again = c.want(m.Seq, m.Region)
			default:
				again = c.sync(m.Seq, m.Region, m.Value == 1)
			}
		case mPropose:
			again = c.propose(m.Seq, m.Proposal, m.Regions)
		case mVote:
			again = c.vote(m.Seq, m.Proposer, m.Proposal, m.Accept)
		case mSyncs:
			again = c.syncs(m.Seq, m.Marks)
		case mFenced:
			again = c.fenced(m.Seq, m.Node)
		case mLeaving:
			again = c.leaving(m.Seq)
		case mMerged:
			again = c.merged(m.Seq, m.Slot, m.Owner, m.Marks, m.Last)
		case mState:
			again = c.state(m.Seq, m.StateID, m.Offset, m.Total, m.Data)
			if sn, err := decodeState(m.Data, 100, 1024, true, 0); err == nil && m.Offset == 0 && uint64(len(m.Data)) == m.Total {
				_ = sn.st.sync.Count()
			}
		}
		// Reserved bytes are not checked; compare what is meaningful.
		if len(again) != len(b) || !bytes.Equal(again[8:], b[8:]) || !bytes.Equal(again[:5], b[:5]) || again[5] != b[5] {
			if m.Type != mAnnounce && m.Type != mMerged && m.Type != mState {
				t.Fatalf("%s re-encodes differently:\n%x\n%x", m.Type, b, again)
			}
		}
	})
}

// FuzzState feeds arbitrary bytes to the state-transfer decoder of a
// 100-region clustered-disk log with 4 slots and of a clustered-core one.
func FuzzState(f *testing.F) {
	st := newState(100, false, 4)
	a, b := MakeMemberID(1, 1), MakeMemberID(2, 2)
	st.members[a] = &member{status: stSynced, slot: 0}
	st.members[b] = &member{status: stUnsynced, slot: -1}
	st.slots[0] = slotInfo{owner: a, state: slotUsed}
	st.grants[a] = []uint64{7, 8, 12}
	st.pending[a] = &proposal{id: 3, regions: []uint64{9, 10}, accept: 0b10, waiting: []MemberID{b}}
	st.sync.SetRange(0, 50)
	f.Add(st.encode(1024, a, 5, []MemberID{b}))
	core := newState(100, true, 0)
	core.members[a] = &member{status: stSynced, slot: -1}
	core.marksOf[a] = newBits(100, false)
	core.marksOf[a].Set(4)
	f.Add(core.encode(1024, a, 1, nil))
	st.tainted[7], st.tainted[9] = true, true
	st.unfenced[3] = true
	f.Add(st.encode(1024, a, 6, []MemberID{b}))
	core.unfenced[3] = true
	core.orphans[3] = newBits(100, false)
	core.orphans[3].Set(60)
	f.Add(core.encode(1024, a, 2, nil))
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, c := range []struct {
			core   bool
			nslots int
		}{{false, 4}, {true, 0}} {
			sn, err := decodeState(blob, 100, 1024, c.core, c.nslots)
			if err != nil {
				continue
			}
			// An accepted state is self-consistent enough to re-encode and
			// decode to the same bytes.
			again := sn.st.encode(1024, sn.pointFrom, sn.pointSeq, sn.recipients)
			if _, err := decodeState(again, 100, 1024, c.core, c.nslots); err != nil {
				t.Fatalf("re-encoded state does not decode: %v", err)
			}
		}
	})
}

// TestStateTaintFencing: taints and unfenced nodes (with their orphaned
// marks) survive a state transfer.
func TestStateTaintFencing(t *testing.T) {
	a, b := MakeMemberID(1, 1), MakeMemberID(2, 2)
	st := newState(100, true, 0)
	st.members[a] = &member{status: stSynced, slot: -1}
	st.members[b] = &member{status: stSynced, slot: -1}
	st.grants[a] = []uint64{7, 2}
	st.pending[b] = &proposal{id: 3, regions: []uint64{9, 11}, accept: 0b01, waiting: []MemberID{a}}
	st.tainted[7], st.tainted[9] = true, true
	st.unfenced[3], st.unfenced[4] = true, true
	st.orphans[3] = newBits(100, false)
	st.orphans[3].Set(60)
	sn, err := decodeState(st.encode(1024, a, 1, nil), 100, 1024, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := sn.st
	if !slices.Equal(got.grants[a], []uint64{7, 2}) || !slices.Equal(got.pending[b].regions, []uint64{9, 11}) || got.pending[b].accept != 0b01 ||
		!got.tainted[7] || !got.tainted[9] || len(got.tainted) != 2 {
		t.Fatalf("grants %v pending %+v tainted %v", got.grants, got.pending[b], got.tainted)
	}
	if !got.unfenced[3] || !got.unfenced[4] || len(got.unfenced) != 2 || !got.orphans[3].Test(60) || got.orphans[3].Count() != 1 || len(got.orphans) != 1 {
		t.Fatalf("unfenced %v orphans %v", got.unfenced, got.orphans)
	}
}
