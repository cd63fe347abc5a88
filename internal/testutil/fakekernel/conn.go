//go:build linux

package fakekernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// DefaultPatience is how long a Conn waits for a reply before it resends
// the request with a new sequence number: the kernel's 15 s.
const DefaultPatience = 15 * time.Second

// Stats are the counters of round trips; several Conns may share one.
type Stats struct {
	Requests atomic.Uint64                          // answered requests
	ByType   [ulog.MaxRequestType + 1]atomic.Uint64 // answered requests by type
	Timeouts atomic.Uint64                          // deadlines missed (each followed by a resend)
	Stale    atomic.Uint64                          // replies to an older seq, ignored
	EAGAIN   atomic.Uint64                          // -EAGAIN replies, resent at once
}

// Conn is the kernel's end of one connection to a daemon's unix
// transport. Its requests go one at a time, as from one dm-raid1 worker;
// a Conn is not for concurrent use.
type Conn struct {
	// Patience is the resend timeout; 0 means DefaultPatience.
	Patience time.Duration
	// Seqs numbers the requests; nil means the Conn's own.
	Seqs *Seqs
	// Stats counts the round trips; nil means the Conn's own.
	Stats *Stats
	// Sends is how many times the last request was sent (resends after
	// a timeout or -EAGAIN included).
	Sends int

	c    *transport.UnixClient
	seqs Seqs
	st   Stats
	sbuf []byte
	rbuf []byte
}

// Dial connects to the unix transport listening at path.
func Dial(path string) (*Conn, error) {
	c, err := transport.DialUnix(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	return &Conn{c: c, rbuf: make([]byte, transport.MaxDatagram)}, nil
}

// Close closes the connection.
func (k *Conn) Close() error { return k.c.Close() }

// Call sends one request and waits for its reply as the kernel does
// (dm-log-userspace-transfer.c): a reply is matched by seq; after Patience
// without one the request is resent with a new seq until ctx is done
// (whose deadline also bounds each wait);
// -EAGAIN resends at once. capacity is the room offered for the reply
// (AnyCapacity: no limit). The error wraps ErrGone when the connection
// broke and ErrProtocol for a reply the kernel would reject or misread.
func (k *Conn) Call(ctx context.Context, t ulog.RequestType, uuid string, luid uint64, data []byte, capacity int) (Result, error) {
	seqs, st, patience := k.Seqs, k.Stats, k.Patience
	if seqs == nil {
		seqs = &k.seqs
	}
	if st == nil {
		st = &k.st
	}
	if patience <= 0 {
		patience = DefaultPatience
	}
	k.Sends = 0
	for {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		r, err := NewRequest(seqs, t, uuid, luid, data)
		if err != nil {
			return Result{}, err
		}
		k.Sends++
		k.sbuf = ulog.AppendRequest(k.sbuf[:0], r)
		_ = k.c.SetWriteDeadline(deadline(ctx, patience))
		if err := k.c.Send(k.sbuf); err != nil {
			if isTimeout(err) {
				st.Timeouts.Add(1)
				continue
			}
			return Result{}, fmt.Errorf("%w: send %s: %v", ErrGone, t, err)
		}
		_ = k.c.SetReadDeadline(deadline(ctx, patience))
	receive:
		for {
			n, err := k.c.Receive(k.rbuf)
			switch {
			case err != nil && isTimeout(err):
				st.Timeouts.Add(1)
				break receive // resend with a new seq
			case err != nil:
				return Result{}, fmt.Errorf("%w: receive %s: %v", ErrGone, t, err)
			}
			rep, err := Decode(k.rbuf[:n])
			if err != nil {
				return Result{}, fmt.Errorf("%s: %w", t, err)
			}
			if rep.MatchSeq() != r.Seq {
				st.Stale.Add(1)
				continue
			}
			res, err := Check(r, &rep, capacity)
			if err != nil {
				return Result{}, err
			}
			st.Requests.Add(1)
			st.ByType[t].Add(1)
			if res.Err == EAGAIN {
				st.EAGAIN.Add(1)
				break receive
			}
			return res, nil
		}
	}
}

// deadline is patience from now, or ctx's deadline if that is sooner.
func deadline(ctx context.Context, patience time.Duration) time.Time {
	d := time.Now().Add(patience)
	if c, ok := ctx.Deadline(); ok && c.Before(d) {
		return c
	}
	return d
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
