package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// FakeNet is an in-process cluster engine with CPG's guarantees: every
// group has one total order of messages and membership changes, and every
// member delivers that order from its own join on, its own messages
// included, each member from one goroutine. Nodes can be killed (their
// members vanish from every group at one point of each group's order, as
// corosync reports a dead node) and can lose quorum. It is the engine the
// cluster log's tests run on; the log logic itself is not faked.
type FakeNet struct {
	mu       sync.Mutex
	groups   map[string][]*fakeMember
	nodes    map[uint32]*FakeNode
	expected int
	pid      uint32
	part     map[uint32]int // node -> partition (0 unless Partition)
	quorum   func(node uint32) bool
	latency  atomic.Int64 // every event is delivered this long after it was sent (SetLatency)
}

// SetLatency delays the delivery of every event sent from now on by d (a
// slow network, or corosync under software emulation); order is kept.
func (f *FakeNet) SetLatency(d time.Duration) { f.latency.Store(int64(d)) }

// NewFakeNet returns a network whose quorum is a majority of expected nodes.
func NewFakeNet(expected int) *FakeNet {
	return &FakeNet{groups: map[string][]*fakeMember{}, nodes: map[uint32]*FakeNode{}, expected: expected, pid: 1000, part: map[uint32]int{}}
}

// FakeNode is one node's cluster engine; it is a Messenger.
type FakeNode struct {
	net   *FakeNet
	id    uint32
	dead  bool
	held  atomic.Bool // messages held (Hold); read without f.mu
	muted atomic.Bool // its multicasts are lost (Mute)
	lose  func(msg []byte) bool
}

// Mute loses every message the node's members multicast from now on that
// lose reports true for (nil: every message), as if the node died before
// they left it; Multicast still succeeds.
func (f *FakeNet) Mute(node uint32, lose func(msg []byte) bool) {
	n := f.Node(node)
	f.mu.Lock()
	n.lose = lose
	f.mu.Unlock()
	n.muted.Store(true)
}

// Node returns node id, alive (a killed node comes back alive).
func (f *FakeNet) Node(id uint32) *FakeNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[id]
	if n == nil {
		n = &FakeNode{net: f, id: id}
		f.nodes[id] = n
	}
	n.dead = false
	return n
}

// Kill kills a node: its members leave every group at once.
func (f *FakeNet) Kill(id uint32) { f.kill(id, true) }

// KillProcesses kills the node's group members only (its dlogd dies, its
// kernel and cluster engine live on): they leave every group at once.
func (f *FakeNet) KillProcesses(id uint32) { f.kill(id, false) }

func (f *FakeNet) kill(id uint32, node bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[id]
	if n == nil {
		return
	}
	n.dead = node
	for name, ms := range f.groups {
		var gone []MemberID
		var rest []*fakeMember
		for _, m := range ms {
			if m.node == n {
				gone = append(gone, m.id)
				m.stop()
			} else {
				rest = append(rest, m)
			}
		}
		if len(gone) > 0 {
			f.groups[name] = rest
			f.confchg(rest, gone, nil)
		}
	}
}

func (f *FakeNet) quorate(node uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.quorum != nil {
		return f.quorum(node)
	}
	alive := 0
	for _, n := range f.nodes {
		if !n.dead {
			alive++
		}
	}
	return alive*2 > f.expected
}

func (n *FakeNode) Name() string { return "fake" }

func (n *FakeNode) Check() error {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	if n.dead {
		return fmt.Errorf("%w: fake node %d is down", ErrUnreachable, n.id)
	}
	return nil
}

func (n *FakeNode) Join(name string, h GroupHandler) (Group, error) {
	f := n.net
	f.mu.Lock()
	defer f.mu.Unlock()
	if n.dead {
		return nil, fmt.Errorf("%w: fake node %d is down", ErrUnreachable, n.id)
	}
	f.pid++
	m := &fakeMember{id: MakeMemberID(n.id, f.pid), node: n, name: name, h: h, done: make(chan struct{})}
	m.cond.L = &m.mu
	go m.run()
	ms := append(f.groups[name], m)
	f.groups[name] = ms
	f.confchg(ms, nil, []MemberID{m.id})
	return m, nil
}

// confchg queues a membership change to the members of ms, each seeing
// only its own partition; f.mu is held.
func (f *FakeNet) confchg(ms []*fakeMember, left, joined []MemberID) {
	for _, m := range ms {
		p := f.part[m.node.id]
		var ids, l, j []MemberID
		for _, x := range ms {
			if f.part[x.node.id] == p {
				ids = append(ids, x.id)
			}
		}
		for _, id := range left {
			if f.part[id.NodeID()] == p {
				l = append(l, id)
			}
		}
		for _, id := range joined {
			if f.part[id.NodeID()] == p {
				j = append(j, id)
			}
		}
		if len(l)+len(j) > 0 {
			m.push(fakeEvent{cc: true, members: ids, left: l, joined: j})
		}
	}
}

// Partition splits the nodes into partitions (every node not listed stays
// in partition 0) and sets the quorum function (nil: majority of alive
// nodes); each member sees the others of other partitions leave.
func (f *FakeNet) Partition(quorum func(node uint32) bool, parts ...[]uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.part
	f.part = map[uint32]int{}
	for i, p := range parts {
		for _, n := range p {
			f.part[n] = i + 1
		}
	}
	f.quorum = quorum
	f.regroup(old)
}

// Heal merges every partition and sets the quorum function, in one step:
// the merge is queued before anything sent afterwards, as corosync
// delivers a merged membership before any later message.
func (f *FakeNet) Heal(quorum func(node uint32) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.part
	f.part = map[uint32]int{}
	f.quorum = quorum
	f.regroup(old)
}

// regroup tells every member what changed in its view; f.mu is held.
func (f *FakeNet) regroup(old map[uint32]int) {
	for _, ms := range f.groups {
		for _, m := range ms {
			var ids, left, joined []MemberID
			for _, x := range ms {
				was := old[x.node.id] == old[m.node.id]
				is := f.part[x.node.id] == f.part[m.node.id]
				if is {
					ids = append(ids, x.id)
				}
				if was && !is {
					left = append(left, x.id)
				}
				if is && !was {
					joined = append(joined, x.id)
				}
			}
			if len(left)+len(joined) > 0 {
				m.push(fakeEvent{cc: true, members: ids, left: left, joined: joined})
			}
		}
	}
}

type fakeEvent struct {
	at                    time.Time // deliver not before
	cc                    bool
	from                  MemberID
	msg                   []byte
	members, left, joined []MemberID
}

type fakeMember struct {
	id   MemberID
	node *FakeNode
	name string
	h    GroupHandler

	mu      sync.Mutex
	cond    sync.Cond
	inbox   []fakeEvent
	stopped bool
	done    chan struct{}
}

func (m *fakeMember) push(e fakeEvent) {
	if d := m.node.net.latency.Load(); d > 0 {
		e.at = time.Now().Add(time.Duration(d))
	}
	m.mu.Lock()
	m.inbox = append(m.inbox, e)
	m.cond.Signal()
	m.mu.Unlock()
}

func (m *fakeMember) stop() {
	m.mu.Lock()
	m.stopped = true
	m.cond.Signal()
	m.mu.Unlock()
}

func (m *fakeMember) run() {
	defer close(m.done)
	for {
		m.mu.Lock()
		for len(m.inbox) == 0 && !m.stopped {
			m.cond.Wait()
		}
		if m.stopped {
			m.mu.Unlock()
			return
		}
		e := m.inbox[0]
		if wait := time.Until(e.at); wait > 0 {
			m.mu.Unlock()
			time.Sleep(wait)
			continue
		}
		if !e.cc && m.node.held.Load() {
			m.mu.Unlock()
			time.Sleep(time.Millisecond)
			continue
		}
		m.inbox = m.inbox[1:]
		m.mu.Unlock()
		if e.cc {
			m.h.ConfigChange(e.members, e.left, e.joined)
		} else {
			m.h.Deliver(e.from, e.msg)
		}
	}
}

// Hold stops delivering messages (not membership changes) to the nodes'
// members until Release.
func (f *FakeNet) Hold(nodes ...uint32) {
	for _, n := range nodes {
		f.Node(n).held.Store(true)
	}
}

// Release resumes delivery to every node.
func (f *FakeNet) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nodes {
		n.held.Store(false)
	}
}

// Fenced is a fence confirmation (Options.FenceConfirm): a killed node
// (Kill) is fenced, a live one is not.
func (f *FakeNet) Fenced(_ context.Context, node uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[node]; n != nil && !n.dead {
		return fmt.Errorf("fake node %d is alive", node)
	}
	return nil
}

// NodeMember reports whether a node is alive (NodeView).
func (m *fakeMember) NodeMember(node uint32) bool {
	f := m.node.net
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[node]
	return n != nil && !n.dead
}

func (m *fakeMember) Self() MemberID { return m.id }
func (m *fakeMember) Quorate() bool  { return m.node.net.quorate(m.node.id) }

func (m *fakeMember) Multicast(msg []byte) error {
	f := m.node.net
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := f.groups[m.name]
	if m.node.dead || !slices.Contains(ms, m) {
		return ErrLeft
	}
	if m.node.muted.Load() && (m.node.lose == nil || m.node.lose(msg)) {
		return nil
	}
	b := slices.Clone(msg)
	for _, x := range ms {
		if f.part[x.node.id] == f.part[m.node.id] {
			x.push(fakeEvent{from: m.id, msg: b})
		}
	}
	return nil
}

func (m *fakeMember) Leave() error {
	f := m.node.net
	f.mu.Lock()
	ms := f.groups[m.name]
	if i := slices.Index(ms, m); i >= 0 {
		ms = slices.Delete(slices.Clone(ms), i, i+1)
		f.groups[m.name] = ms
		f.confchg(ms, []MemberID{m.id}, nil)
	}
	f.mu.Unlock()
	m.stop()
	<-m.done
	return nil
}

// inboxes reports each member's undelivered events (tests).
func (f *FakeNet) inboxes() map[MemberID]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[MemberID]int{}
	for _, ms := range f.groups {
		for _, m := range ms {
			m.mu.Lock()
			out[m.id] = len(m.inbox)
			m.mu.Unlock()
		}
	}
	return out
}
