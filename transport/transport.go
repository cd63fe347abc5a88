package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dlog-dev/dlog/ulog"
)

// Peer is where a datagram came from; Send sends one datagram back there.
//
// A Peer is safe for concurrent use and stays usable after Handle returned
// (replies are sent later from worker goroutines) until its connection
// closes; from then on Send returns an error wrapping net.ErrClosed.
// String names the peer for logs ("kernel", "unix:@3 pid=123 uid=0").
type Peer interface {
	Send(b []byte) error
	String() string
}

// Handler handles one received request.
//
// d and the bytes it holds are only valid until Handle returns: the
// transport reuses them. Handle is called from the transport's reader
// goroutine(s), one datagram at a time per connection (the unix transport
// calls it concurrently for different connections), and must not block on
// disk I/O.
//
// Every datagram a Handler sees has passed the transport's checks and is
// decoded once, by Datagram.Decode: it came from an allowed sender, was
// not truncated, and its netlink and connector headers are sound
// (ulog.DecodeRequest does not answer it with ulog.ActionDrop). Requests
// the codec wants answered with an error (ActionAckAgain,
// ActionReplyError) are handed over with d.Err set, for the Handler to
// answer.
type Handler interface {
	Handle(d *Datagram, from Peer)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(d *Datagram, from Peer)

// Handle calls f(d, from).
func (f HandlerFunc) Handle(d *Datagram, from Peer) { f(d, from) }

// Datagram is one received datagram and its decoding.
type Datagram struct {
	// Bytes is the datagram exactly as received.
	Bytes []byte
	// Frame is Bytes decoded by ulog.DecodeRequest; Frame.Req.Data
	// aliases Bytes. After an Err, Frame holds what ulog.DecodeRequest
	// leaves for the error reply.
	Frame ulog.Frame
	// Err is nil for a sound request, or the codec's fault whose Action
	// is ActionAckAgain or ActionReplyError: the sender waits for that
	// answer.
	Err *ulog.FrameError

	detach   func() bool // set by a transport that can Detach; nil: it cannot
	reattach func()      // set with detach
}

// Detach, called by a Handler during Handle, asks the transport to go on
// receiving without this goroutine, so that this Handle may block (on a
// disk write, say) before it returns. It reports whether it did: then
// another reader of the transport receives the next datagrams and may call
// Handle for them before this one returns; this Handle may still use d
// (the transport gives it no other datagram until it returns). False means
// that the transport cannot spare a reader (it has one, or every other one
// is detached too): Handle must not block. Detach may be called once per
// Handle; later calls report false.
//
// The netlink transport has Options.Receivers readers, of which one at a
// time receives and calls Handle: until the Handler detaches or returns,
// no other Handle runs, so what a Handler does before it detaches is
// ordered with every other datagram as with a single reader. Detach wakes
// a waiting reader to receive next.
func (d *Datagram) Detach() bool { return d.detach != nil && d.detach() }

// Reattach, called by a Handler that detached, tells the transport that
// the rest of this Handle will not block (it only sends its reply and
// returns), so that the transport counts its receiver as receiving again
// and another Handle may detach meanwhile. It does nothing if Handle did
// not detach, or already reattached.
func (d *Datagram) Reattach() {
	if d.reattach != nil {
		d.reattach()
	}
}

// OnReattach sets the function Reattach calls.
func (d *Datagram) OnReattach(f func()) { d.reattach = f }

// OnDetach sets the function Detach calls (nil: Detach reports false).
// For transports, and for drivers that call a Handler themselves and can
// go on feeding it while a Handle blocks (tests).
func (d *Datagram) OnDetach(f func() bool) { d.detach = f }

// Decode decodes b into d as both transports do before handing a
// datagram on, without allocating for a sound request. It returns the
// codec's error if the datagram is to be dropped (ActionDrop); a fault the
// sender is owed an answer for is not an error of Decode but d.Err.
func (d *Datagram) Decode(b []byte) error {
	d.Bytes, d.Err = b, nil
	err := ulog.DecodeRequest(b, &d.Frame)
	if err == nil {
		return nil
	}
	var fe *ulog.FrameError
	if !errors.As(err, &fe) || fe.Action == ulog.ActionDrop {
		return err
	}
	d.Err = fe
	return nil
}

// Transport receives kernel-format datagrams (nlmsghdr + cn_msg +
// dm_ulog_request + payload, exactly as the kernel sends them) and hands
// each to a Handler.
type Transport interface {
	// Serve reads until ctx is done or Close is called (then it returns
	// nil), or a fatal socket error (returned, wrapped). Non-fatal
	// conditions (ENOBUFS overrun, a truncated or foreign datagram) are
	// counted and logged and Serve goes on. Serve may be called once.
	//
	// When ctx is done Serve stops reading and returns once every Handle
	// it called has returned (a detached one too: a Handler that detached
	// to wait on a disk delays the return), but the socket stays open:
	// Peers can still send the replies of requests already handed out
	// until Close.
	Serve(ctx context.Context, h Handler) error
	// Close closes the socket(s) and makes Serve return nil. Later Sends
	// fail with an error wrapping net.ErrClosed. Close is idempotent.
	Close() error
	// Stats returns the transport's counters.
	Stats() Stats
	// String names the transport: "netlink" or "unix:/path".
	String() string
}

// Options configure Listen. The zero value is the production setting.
type Options struct {
	// Logger receives the transport's log; nil means slog.Default().
	Logger *slog.Logger

	// RcvBuf is the netlink socket's receive buffer in bytes
	// (SO_RCVBUFFORCE, falling back to SO_RCVBUF, which the kernel caps
	// at net.core.rmem_max). 0 means DefaultRcvBuf.
	RcvBuf int

	// Mode is the permission of the unix socket file; 0 means 0600.
	Mode os.FileMode
	// SendTimeout bounds how long a unix Peer.Send waits for room in a
	// client's receive queue before giving up with an error wrapping
	// os.ErrDeadlineExceeded; 0 means DefaultSendTimeout. (Netlink sends
	// never wait: a full queue is a lost datagram, as for the kernel.)
	SendTimeout time.Duration

	// Poll, when positive, makes the netlink transport's reader keep
	// trying a non-blocking receive for this long after the socket runs
	// dry, before it parks (dlogd serve --poll): a request that comes
	// within it skips the wake-up, at the price of a CPU kept busy
	// meanwhile. Only worth it where another CPU runs the kernel's side;
	// the caller decides that (dlogd ignores it on one CPU). At most
	// MaxPoll. The unix transport ignores it.
	Poll time.Duration

	// NetpollWait makes the netlink transport's reader wait for requests
	// in the runtime's poller (park the goroutine, epoll_wait on some
	// thread, wake it), as it did before. By default it blocks in recvmsg
	// on its own thread, which the kernel wakes directly when a request
	// comes, as a C daemon's blocking receive is: with more than one CPU
	// the poller's chain of wake-ups made every request several times
	// slower under emulation (docs/performance.md).
	NetpollWait bool

	// Receivers is the number of goroutines that receive on the netlink
	// socket (0: DefaultReceivers; at most MaxReceivers), one at a time:
	// the one that holds the lead receives and calls Handle, the others
	// wait for it. A Handler that must block calls Datagram.Detach, which
	// passes the lead to another receiver, and blocks on its goroutine
	// while that one goes on receiving, so that the work and the reply
	// stay on the goroutine that received the request and no request
	// waits for a hand-off to another goroutine (docs/performance.md). At
	// least one receiver always stays attached. With NetpollWait or Poll
	// there is one receiver, which cannot detach. The unix transport
	// ignores it.
	Receivers int
}

// Defaults and bounds for Options.
const (
	// MaxPoll bounds Options.Poll.
	MaxPoll = 10 * time.Millisecond
	// DefaultReceivers is Options.Receivers when 0: one receiver to block
	// on a log's disk and one to go on receiving.
	DefaultReceivers = 2
	// MaxReceivers bounds Options.Receivers.
	MaxReceivers = 16
	// DefaultRcvBuf is the netlink receive buffer asked for when
	// Options.RcvBuf is 0. The kernel doubles it for its bookkeeping;
	// 4 MiB holds several thousand queued requests (a request takes about
	// 1.3 KiB of buffer), far more than the kernel ever has outstanding.
	DefaultRcvBuf = 4 << 20
	// DefaultSendTimeout is the unix send timeout when
	// Options.SendTimeout is 0: a reply the kernel would have given up on
	// (it resends after 15 s) is not worth waiting for.
	DefaultSendTimeout = 5 * time.Second
	// DefaultMode is the unix socket file mode when Options.Mode is 0.
	DefaultMode os.FileMode = 0o600
)

// MaxDatagram is the largest datagram either transport accepts: a netlink
// header and the largest connector message the kernel takes from user
// space (CONNECTOR_MAX_MSG_SIZE). A longer one is dropped as truncated.
const MaxDatagram = ulog.NlmsgHdrLen + ulog.MaxConnectorMsg

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RcvBuf <= 0 {
		o.RcvBuf = DefaultRcvBuf
	}
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
}

// Listen builds a transport from the --transport flag value: "netlink" for
// the kernel's connector, or "unix:PATH" for a SOCK_SEQPACKET socket at
// PATH. It fails with an error wrapping ErrSpec for anything else.
func Listen(spec string, opts Options) (Transport, error) {
	opts.setDefaults()
	switch {
	case spec == "netlink":
		return listenNetlink(opts, 0)
	case strings.HasPrefix(spec, "unix:"):
		path := strings.TrimPrefix(spec, "unix:")
		if path == "" {
			return nil, fmt.Errorf("transport: %q: empty path: %w", spec, ErrSpec)
		}
		if strings.HasPrefix(path, "@") {
			return nil, fmt.Errorf("transport: %q: abstract unix sockets are not supported, give a file system path: %w", spec, ErrSpec)
		}
		return listenUnix(path, opts)
	default:
		return nil, fmt.Errorf("transport: %q: want \"netlink\" or \"unix:PATH\": %w", spec, ErrSpec)
	}
}
