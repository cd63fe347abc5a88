package cluster

// The server's duties (clustered-disk): merging departed slots, the clean point.

import (
	"github.com/dlog-dev/dlog/engine"
)

func (l *Log) isServer() bool {
	s := l.st.synced()
	return len(s) > 0 && s[0] == l.me && l.status == stSynced
}

// serverDuties merges the slots of departed members: read the slot, write
// the union with its marks dirty (synced), free the slot, then tell the
// group which regions it held.
func (l *Log) serverDuties() {
	l.fenceDuties()
	// Nothing is merged until the view is settled (every member
	// announced): a split brain is found before any write of the image.
	if l.core || l.replaying || l.group == nil || !l.isServer() || !l.group.Quorate() || l.failed != nil || !l.resolved || l.minorityHold() {
		return
	}
	st := l.st
	for k := 0; k < st.nslots; k++ {
		s := st.slots[k]
		if s.state != slotDeparted || l.merging[k] || st.unfenced[s.owner.NodeID()] {
			continue
		}
		desc, marks, err := l.raw.readSlot(l.geo, k)
		if err != nil {
			l.log.Error("cannot read a departed member's slot; will retry", "slot", k, "owner", s.owner.String(), "err", err)
			continue
		}
		if desc.owner != s.owner {
			marks = nil
		}
		if err := l.raw.writeUnion(l.geo, LiveMagic, st.sync, marks); err != nil {
			l.log.Error("cannot write the union image; will retry", "err", err)
			continue
		}
		// The slot stays as it is on the device: if this server dies
		// before its MERGED is delivered, the next server merges it
		// again from there (a merge is idempotent); the slot's next
		// owner overwrites it.
		l.merging[k] = true
		l.stats.merges++
		l.log.Info("merged a departed member's slot", "slot", k, "owner", s.owner.String(), "regions", len(marks))
		for {
			part := marks[:min(len(marks), maxList)]
			marks = marks[len(part):]
			last := len(marks) == 0
			l.send(func(seq uint64) []byte { return l.codec.merged(seq, uint32(k), s.owner, part, last) })
			if last {
				break
			}
		}
	}
}

// cleanPoint runs when this member's LEAVING is delivered: if it is the
// group's last member, the union image becomes exact (its own and any
// unmerged slot's marks dirty) and gets the kernel's magic back.
func (l *Log) cleanPoint() {
	if l.core || len(l.cur) != 1 || l.cur[0] != l.me {
		return
	}
	var dirty []uint64
	for k := 0; k < l.st.nslots; k++ {
		s := l.st.slots[k]
		if s.state == slotFree {
			continue
		}
		desc, marks, err := l.raw.readSlot(l.geo, k)
		if err != nil {
			l.log.Error("cannot read a slot at the clean point; the image stays live (a cluster dlogd merges it)", "err", err)
			return
		}
		if desc.owner == s.owner {
			dirty = append(dirty, marks...)
		}
	}
	if err := l.raw.writeUnion(l.geo, engine.DiskMagic, l.st.sync, dirty); err != nil {
		l.log.Error("cannot write the clean image", "err", err)
		return
	}
	l.log.Info("last member left: log image written in the kernel's format", "dirty", len(dirty))
}
