package cluster

import (
	"errors"
	"fmt"
)

// MemberID names one group member: a process on a node. CPG identifies a
// member by (nodeid, pid); a dlogd restarted on the same node is a new
// member, so a dead incarnation is never confused with its successor.
type MemberID uint64

// MakeMemberID packs a corosync nodeid and a pid.
func MakeMemberID(nodeid, pid uint32) MemberID { return MemberID(uint64(nodeid)<<32 | uint64(pid)) }

// NodeID is the corosync nodeid.
func (m MemberID) NodeID() uint32 { return uint32(m >> 32) }

// PID is the process id on its node.
func (m MemberID) PID() uint32 { return uint32(m) }

func (m MemberID) String() string { return fmt.Sprintf("%d/%d", m.NodeID(), m.PID()) }

// GroupHandler receives a group's events. The Group calls it from one goroutine,
// in the group's agreed order: every member that stays in the group sees the
// same messages and membership changes in the same order (CPG's virtual
// synchrony), its own messages included. GroupHandler methods must not block on
// the group (they may call Multicast).
type GroupHandler interface {
	// Deliver is a message multicast by from.
	Deliver(from MemberID, msg []byte)
	// ConfigChange is a membership change: members is the new membership,
	// left the members that left or died, joined those that joined. A
	// member's own join is the first event it gets.
	ConfigChange(members, left, joined []MemberID)
}

// Group is one joined closed process group.
type Group interface {
	// Self is this member.
	Self() MemberID
	// Multicast sends msg to every member, this one included, in agreed
	// order. It may block briefly under flow control; it fails once the
	// group is left or the connection to the cluster engine is lost.
	Multicast(msg []byte) error
	// Quorate reports whether this node's partition has quorum.
	Quorate() bool
	// Leave leaves the group; no GroupHandler call is made after it returns.
	Leave() error
}

// Messenger connects to the cluster engine (corosync, or the in-process
// FakeNet) and joins groups.
type Messenger interface {
	// Name names the transport in messages ("corosync", "fake").
	Name() string
	// Check reports whether the cluster engine is reachable now; CTR
	// fails with its error.
	Check() error
	// Join joins the named group. h may be called before Join returns.
	Join(name string, h GroupHandler) (Group, error)
}

// ErrUnreachable is returned (wrapped) when the cluster engine cannot be
// reached.
var ErrUnreachable = errors.New("cluster: cluster engine unreachable")

// ErrLeft is returned by Multicast after Leave or after the member was
// expelled (its connection to the cluster engine is gone).
var ErrLeft = errors.New("cluster: not a member of the group")
