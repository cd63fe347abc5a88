package fakekernel

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// Peer is the reply side of a Local: it keeps what the handler sends.
type Peer struct {
	Name    string
	Replies chan []byte // each reply, copied
}

// newPeer returns a Peer with room for n replies.
func newPeer(name string, n int) *Peer { return &Peer{Name: name, Replies: make(chan []byte, n)} }

// Send keeps a copy of b.
func (p *Peer) Send(b []byte) error { p.Replies <- bytes.Clone(b); return nil }

// String returns the peer's name.
func (p *Peer) String() string { return p.Name }

// Handle hands the datagram b to h as a transport does: decoded once by
// the admission check (transport.Datagram.Decode), and not at all if that
// check drops it. It reports whether h got it.
func Handle(h transport.Handler, b []byte, from transport.Peer) bool {
	var d transport.Datagram
	if d.Decode(b) != nil {
		return false
	}
	h.Handle(&d, from)
	return true
}

// Local is the kernel's end of an in-process handler: requests go
// straight to h.Handle, replies come back through P. Any number of
// requests may be outstanding; Wait matches replies by seq. It is safe for
// concurrent use.
type Local struct {
	// Version is the protocol version of the requests (3 from NewLocal;
	// tests of other versions change it).
	Version uint32
	// P receives the replies.
	P *Peer

	h     transport.Handler
	seqs  Seqs
	mu    sync.Mutex
	stash map[uint32]ulog.Reply
}

// NewLocal returns a kernel for h.
func NewLocal(h transport.Handler) *Local {
	return &Local{Version: Version, P: newPeer("test-kernel", 4096), h: h, stash: map[uint32]ulog.Reply{}}
}

// Request returns the request the kernel would send.
func (l *Local) Request(t ulog.RequestType, uuid string, luid uint64, data []byte) (*ulog.Request, error) {
	r, err := NewRequest(&l.seqs, t, uuid, luid, data)
	if err != nil {
		return nil, err
	}
	r.Version = l.Version
	return r, nil
}

// Send hands the datagram of r to the handler.
func (l *Local) Send(r *ulog.Request) { Handle(l.h, ulog.AppendRequest(nil, r), l.P) }

// Wait returns the reply to r (decoded and checked by Decode), keeping
// replies to other requests for their own Wait; it gives up after
// timeout.
func (l *Local) Wait(r *ulog.Request, timeout time.Duration) (ulog.Reply, error) {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		if rep, ok := l.stash[r.Seq]; ok {
			delete(l.stash, r.Seq)
			l.mu.Unlock()
			return rep, nil
		}
		l.mu.Unlock()
		select {
		case b := <-l.P.Replies:
			rep, err := Decode(b)
			if err != nil {
				return rep, err
			}
			l.mu.Lock()
			l.stash[rep.MatchSeq()] = rep
			l.mu.Unlock()
		case <-deadline:
			return ulog.Reply{}, fmt.Errorf("fakekernel: no reply to %s seq %d within %v", r.Type(), r.Seq, timeout)
		}
	}
}

// Finish waits for the reply to r and checks it (Check, no limit on its
// size).
func (l *Local) Finish(r *ulog.Request, timeout time.Duration) (Result, error) {
	rep, err := l.Wait(r, timeout)
	if err != nil {
		return Result{}, err
	}
	return Check(r, &rep, AnyCapacity)
}
