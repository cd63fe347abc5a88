//go:build linux

package transport_test

import (
	"testing"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// inSyncReplier answers IN_SYNC (and MARK/CLEAR) requests the way the
// daemon does, into buffers it reuses, so that a round trip through it
// shows the transport's allocations alone. It serves one connection: its
// buffers are not shared between readers.
type inSyncReplier struct {
	out []byte
	p   [ulog.Int64Len]byte
}

func (h *inSyncReplier) Handle(d *transport.Datagram, from transport.Peer) {
	if d.Err != nil {
		return
	}
	var payload []byte
	if d.Frame.Req.Type() == ulog.TypeInSync {
		r, err := ulog.Region(d.Frame.Req.Data)
		if err != nil {
			return
		}
		payload = ulog.AppendBool(h.p[:0], r%2 == 0)
	}
	h.out = ulog.AppendReply(h.out[:0], &d.Frame.Req, 0, 0, payload)
	_ = from.Send(h.out)
}

// markRequest returns a MARK_REGION request for 32 regions, the most a
// kernel sends at once.
func markRequest(t testing.TB, seq uint32) []byte {
	t.Helper()
	var regions []byte
	for i := range 32 {
		regions = ulog.AppendUint64(regions, uint64(i)*3)
	}
	req := ulog.Request{LUID: 0x11, Version: ulog.Version, Seq: seq, RawType: uint32(ulog.TypeMarkRegion), Data: regions}
	if err := req.SetUUID("alloc"); err != nil {
		t.Fatal(err)
	}
	return ulog.AppendRequest(nil, &req)
}

// A request and its reply through the unix transport allocate nothing in
// the steady state, in the transport or in the client.
func TestUnixZeroAllocs(t *testing.T) {
	tr, path := listenUnix(t, transport.Options{})
	serve(t, tr, &inSyncReplier{})
	c := dial(t, path)
	inSync, mark := inSync(t, "alloc", 0x11, testSeqBase, 4), markRequest(t, testSeqBase+1)
	buf := make([]byte, transport.MaxDatagram)
	roundTrip := func() {
		for _, req := range [][]byte{inSync, mark} {
			if err := c.Send(req); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Receive(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 100 {
		roundTrip()
	}
	if allocs := testing.AllocsPerRun(2000, roundTrip); allocs != 0 {
		t.Errorf("%v allocations per IN_SYNC + MARK round trip, want 0", allocs)
	}
	if st := tr.Stats(); st.Handled != st.Sent || st.Dropped() != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The same through the netlink transport and a fake kernel.
func TestIntegrationNetlinkZeroAllocs(t *testing.T) {
	tr, fk := startNetlink(t, transport.Options{})
	serve(t, tr, &inSyncReplier{})
	inSync, mark := inSync(t, "alloc", 0x11, testSeqBase, 4), markRequest(t, testSeqBase+1)
	buf := make([]byte, transport.MaxDatagram)
	pid := tr.(portIDer).PortID()
	roundTrip := func() {
		for _, req := range [][]byte{inSync, mark} {
			if err := fk.Multicast(req); err != nil {
				t.Fatal(err)
			}
			if _, from, err := fk.Receive(buf); err != nil || from != pid {
				t.Fatalf("reply from %d: %v", from, err)
			}
		}
	}
	for range 100 {
		roundTrip()
	}
	if allocs := testing.AllocsPerRun(2000, roundTrip); allocs != 0 {
		t.Errorf("%v allocations per IN_SYNC + MARK round trip, want 0", allocs)
	}
}
