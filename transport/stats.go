package transport

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// Stats are a transport's counters since Listen. Every datagram read from
// a socket is counted once in Received and then either in Handled or in
// exactly one Dropped* counter: Received == Handled + Dropped() whenever
// no datagram is between the two (the counters are read one by one).
type Stats struct {
	// Received counts datagrams read from the socket(s).
	Received uint64
	// Handled counts datagrams handed to the Handler.
	Handled uint64

	// DroppedTruncated counts datagrams the kernel flagged MSG_TRUNC:
	// longer than MaxDatagram.
	DroppedTruncated uint64
	// DroppedForeign counts netlink datagrams whose sender nl_pid is
	// neither 0 (the kernel) nor the fake kernel of a test: forged requests.
	DroppedForeign uint64
	// DroppedShort counts datagrams too short for a netlink and a
	// connector header (ulog.ErrShort), empty unix datagrams included.
	DroppedShort uint64
	// DroppedBadLength counts datagrams whose nlmsg_len exceeds the bytes
	// received (ulog.ErrTruncated) or whose cn_msg.len exceeds nlmsg_len
	// (ulog.ErrCnLen).
	DroppedBadLength uint64
	// DroppedNotDone counts datagrams whose nlmsg_type is not NLMSG_DONE
	// (ulog.ErrNotDone).
	DroppedNotDone uint64
	// DroppedConnectorID counts datagrams whose cn_msg.id is not 7/1
	// (ulog.ErrConnectorID), such as proc connector events.
	DroppedConnectorID uint64

	// Overruns counts ENOBUFS from recvmsg on netlink: the receive queue
	// was full and the kernel dropped messages for this socket (it then
	// sees ESRCH and runs its reconnect sequence, docs/protocol.md §1.6).
	Overruns uint64
	// RecvErrors counts other non-fatal receive errors (a unix
	// connection reset by its peer).
	RecvErrors uint64

	// Polled counts the datagrams received during the busy-poll
	// (Options.Poll), without parking the reader.
	Polled uint64
	// Detached counts the Handles that detached from their receiver
	// (Datagram.Detach) to block while another receiver went on.
	Detached uint64

	// Sent counts datagrams sent by Peers.
	Sent uint64
	// SendErrors counts Peer.Send calls that failed (closed connection
	// or transport included).
	SendErrors uint64

	// Accepted counts unix connections accepted (and admitted).
	Accepted uint64
	// Refused counts unix connections closed at once because their
	// SO_PEERCRED uid was neither 0 nor the daemon's euid.
	Refused uint64
	// Conns is the number of unix connections open now.
	Conns uint64
}

// Dropped returns the number of datagrams dropped for any reason.
func (s Stats) Dropped() uint64 {
	return s.DroppedTruncated + s.DroppedForeign + s.DroppedShort +
		s.DroppedBadLength + s.DroppedNotDone + s.DroppedConnectorID
}

// dropReason is why a datagram was not handed to the Handler.
type dropReason uint8

const (
	dropTruncated dropReason = iota
	dropForeign
	dropShort
	dropBadLength
	dropNotDone
	dropConnectorID
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropTruncated:
		return "truncated"
	case dropForeign:
		return "foreign-sender"
	case dropShort:
		return "short"
	case dropBadLength:
		return "bad-length"
	case dropNotDone:
		return "not-done"
	case dropConnectorID:
		return "connector-id"
	}
	return "unknown"
}

// reasonOf maps a codec error with ActionDrop to a drop reason.
func reasonOf(err error) dropReason {
	switch {
	case errors.Is(err, ulog.ErrConnectorID):
		return dropConnectorID
	case errors.Is(err, ulog.ErrNotDone):
		return dropNotDone
	case errors.Is(err, ulog.ErrTruncated), errors.Is(err, ulog.ErrCnLen):
		return dropBadLength
	default:
		return dropShort
	}
}

// counters are the live form of Stats.
type counters struct {
	received, handled atomic.Uint64
	dropped           [numDropReasons]atomic.Uint64
	overruns          atomic.Uint64
	recvErrors        atomic.Uint64
	polled            atomic.Uint64
	detached          atomic.Uint64
	sent, sendErrors  atomic.Uint64
	accepted, refused atomic.Uint64
	conns             atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Received:           c.received.Load(),
		Handled:            c.handled.Load(),
		DroppedTruncated:   c.dropped[dropTruncated].Load(),
		DroppedForeign:     c.dropped[dropForeign].Load(),
		DroppedShort:       c.dropped[dropShort].Load(),
		DroppedBadLength:   c.dropped[dropBadLength].Load(),
		DroppedNotDone:     c.dropped[dropNotDone].Load(),
		DroppedConnectorID: c.dropped[dropConnectorID].Load(),
		Overruns:           c.overruns.Load(),
		RecvErrors:         c.recvErrors.Load(),
		Polled:             c.polled.Load(),
		Detached:           c.detached.Load(),
		Sent:               c.sent.Load(),
		SendErrors:         c.sendErrors.Load(),
		Accepted:           c.accepted.Load(),
		Refused:            c.refused.Load(),
		Conns:              uint64(max(c.conns.Load(), 0)),
	}
}

// logInterval is the least time between two log lines about the same kind
// of non-fatal event; the ones in between are counted and reported with
// the next line.
const logInterval = time.Second

// rateLimit lets one event through per logInterval.
type rateLimit struct {
	next       atomic.Int64 // UnixNano before which events are suppressed
	suppressed atomic.Uint64
}

// allow reports whether to log now and how many events were suppressed
// since the last one logged.
func (r *rateLimit) allow() (bool, uint64) {
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(logInterval)) {
		r.suppressed.Add(1)
		return false, 0
	}
	return true, r.suppressed.Swap(0)
}

// gate is what both transports share: the counters, the log, and the
// checks every received datagram goes through.
type gate struct {
	log      *slog.Logger
	c        counters
	drops    [numDropReasons]rateLimit
	overrun  rateLimit
	recvErr  rateLimit
	sendErrs rateLimit
}

// admit counts a datagram that came from an allowed sender and decides
// whether to hand it to the Handler: not truncated, and headers sound by
// the codec's checks (Datagram.Decode, into d, the reader's scratch
// Datagram). from names the sender for the log. size is the datagram's
// real length, larger than len(b) if it was truncated.
func (g *gate) admit(b []byte, size int, truncated bool, d *Datagram, from Peer) bool {
	g.c.received.Add(1)
	if truncated {
		g.drop(dropTruncated, from, size, nil)
		return false
	}
	if err := d.Decode(b); err != nil {
		g.drop(reasonOf(err), from, len(b), err)
		return false
	}
	g.c.handled.Add(1)
	return true
}

// foreign counts and logs a datagram from a sender that is not allowed.
func (g *gate) foreign(from any, n int) {
	g.c.received.Add(1)
	g.drop(dropForeign, from, n, nil)
}

// drop counts a dropped datagram and logs it, rate-limited per reason.
func (g *gate) drop(r dropReason, from any, n int, err error) {
	g.c.dropped[r].Add(1)
	if ok, suppressed := g.drops[r].allow(); ok {
		g.log.Warn("transport: dropped datagram", "reason", r.String(), "from", from, "bytes", n,
			"err", err, "suppressed", suppressed)
	}
}

// overrunSeen counts and logs an ENOBUFS.
func (g *gate) overrunSeen() {
	g.c.overruns.Add(1)
	if ok, suppressed := g.overrun.allow(); ok {
		g.log.Warn("transport: netlink receive queue overrun (ENOBUFS): the kernel dropped requests; it will resend them after its reconnect sequence",
			"overruns", g.c.overruns.Load(), "suppressed", suppressed)
	}
}

// recvError counts and logs a non-fatal receive error.
func (g *gate) recvError(from any, err error) {
	g.c.recvErrors.Add(1)
	if ok, suppressed := g.recvErr.allow(); ok {
		g.log.Warn("transport: receive error", "from", from, "err", err, "suppressed", suppressed)
	}
}

// sendFailed counts a failed send. The Peer's caller logs it with the
// request's context; this only keeps a rate-limited trace of its own at
// debug level.
func (g *gate) sendFailed(to any, err error) {
	g.c.sendErrors.Add(1)
	if ok, suppressed := g.sendErrs.allow(); ok {
		g.log.Debug("transport: send failed", "to", to, "err", err, "suppressed", suppressed)
	}
}
