//go:build linux

package transport_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// A Handle that detaches may block while another receiver goes on
// handling datagrams; Handles never overlap until one detaches; the last
// attached receiver cannot detach; a transport with one receiver never
// lets a Handle detach.
func TestIntegrationNetlinkDetach(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts transport.Options
		can  bool
	}{
		{"default", transport.Options{}, true},
		{"three receivers", transport.Options{Receivers: 3}, true},
		{"one receiver", transport.Options{Receivers: 1}, false},
		{"netpoll", transport.Options{NetpollWait: true, Receivers: 4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, fk := startNetlink(t, tc.opts)
			luid := testLUID()
			type result struct {
				region   uint64
				detached bool
			}
			results := make(chan result, 64)
			release := make(chan struct{})
			release50 := make(chan struct{})
			var releaseOnce, release50Once sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			unblock50 := func() { release50Once.Do(func() { close(release50) }) }
			t.Cleanup(unblock) // before Serve's cleanup waits for them
			t.Cleanup(unblock50)
			var attached atomic.Int32 // Handles running and not detached
			var overlap atomic.Bool
			serve(t, tr, transport.HandlerFunc(func(d *transport.Datagram, _ transport.Peer) {
				if d.Err != nil || d.Frame.Req.LUID != luid || d.Frame.Req.Seq < testSeqBase {
					return
				}
				if attached.Add(1) > 1 {
					overlap.Store(true)
				}
				r, err := ulog.Region(d.Frame.Req.Data)
				if err != nil {
					t.Errorf("region: %v", err)
				}
				time.Sleep(time.Millisecond) // room for an overlap to show
				det := false
				if r < 100 || r >= 200 {
					// Not counted from before the Detach: once it
					// succeeds, the next Handle may start at once.
					attached.Add(-1)
					if det = d.Detach(); !det {
						attached.Add(1)
					}
					if d.Detach() {
						t.Error("a second Detach of one Handle reported true")
					}
				}
				if det {
					switch r {
					case 0:
						<-release
					case 50:
						// Reattached: not blocking any more (a slow
						// reply), so another Handle may detach.
						d.Reattach()
						d.Reattach()
						<-release50
					}
				}
				results <- result{r, det}
				if !det {
					attached.Add(-1)
				}
			}))
			send := func(region uint64) {
				t.Helper()
				if err := fk.Multicast(inSync(t, "detach", luid, testSeqBase+uint32(region), region)); err != nil {
					t.Fatal(err)
				}
			}
			next := func() result {
				t.Helper()
				select {
				case r := <-results:
					return r
				case <-time.After(5 * time.Second):
					t.Fatal("no datagram handled within 5 s")
				}
				return result{}
			}
			// Region 0 detaches and blocks (when it can); the requests
			// after it are handled meanwhile, and none of them can
			// detach: the one receiver left must stay attached.
			send(0)
			if !tc.can {
				if r := next(); r.region != 0 || r.detached {
					t.Fatalf("first handled %+v, want region 0 not detached", r)
				}
			}
			for region := uint64(100); region < 110; region++ {
				send(region)
				if r := next(); r.region != region || r.detached {
					t.Fatalf("handled %+v, want region %d not detached", r, region)
				}
			}
			// With region 0 detached, two receivers leave one attached,
			// which cannot detach; three leave two, of which one can.
			send(2)
			want2 := tc.opts.Receivers == 3
			if r := next(); r.region != 2 || r.detached != want2 {
				t.Fatalf("handled %+v while region 0 blocks, want region 2 detached: %v", r, want2)
			}
			unblock()
			if tc.can {
				if r := next(); r.region != 0 || !r.detached {
					t.Fatalf("handled %+v, want the blocked region 0, detached", r)
				}
			}
			// Once it returned, its receiver is attached again (an
			// instant after it sent its result: try a few times).
			sawDetached := uint64(0)
			if tc.can {
				sawDetached = 1 // region 0
				if tc.opts.Receivers == 3 {
					sawDetached++ // region 2
				}
			}
			for try := uint64(0); ; try++ {
				time.Sleep(5 * time.Millisecond)
				send(200 + try)
				r := next()
				if r.region != 200+try {
					t.Fatalf("after the release: handled %+v, want region %d", r, 200+try)
				}
				if r.detached {
					sawDetached++
				}
				if r.detached == tc.can {
					break
				}
				if try == 20 {
					t.Fatalf("after the release: region %d detached: %v, want %v", r.region, r.detached, tc.can)
				}
			}
			if tc.can && tc.opts.Receivers == 0 {
				// Two receivers: one detached and reattached, blocked;
				// the other can still detach.
				send(50)
				time.Sleep(20 * time.Millisecond)
				send(51)
				if r := next(); r.region != 51 || !r.detached {
					t.Fatalf("handled %+v while region 50 blocks reattached, want region 51 detached", r)
				}
				unblock50()
				if r := next(); r.region != 50 || !r.detached {
					t.Fatalf("handled %+v, want region 50", r)
				}
				sawDetached += 2
			}
			if overlap.Load() {
				t.Error("two Handles ran at once, neither detached")
			}
			if got := tr.Stats().Detached; got != sawDetached {
				t.Errorf("Stats.Detached = %d, want %d", got, sawDetached)
			}
		})
	}
}
