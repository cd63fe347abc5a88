package daemon_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// serveUnix runs d on a unix transport in dir and returns its socket path.
func serveUnix(b *testing.B, d *daemon.Daemon) string {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "d.sock")
	tr, err := transport.Listen("unix:"+sock, transport.Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go d.Serve(ctx, tr)
	b.Cleanup(func() { cancel(); tr.Close() })
	return sock
}

// echoUnix runs a bare echo server on a unix SOCK_SEQPACKET socket: the
// floor for any daemon on the same socket type. It answers each datagram
// with replyLen bytes (the size of dlogd's reply).
func echoUnix(b *testing.B, replyLen int) string {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "echo.sock")
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				out := make([]byte, replyLen)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					copy(out, buf[:n])
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return sock
}

// roundTrips sends req and waits for one reply, n times.
func roundTrips(b *testing.B, c *transport.UnixClient, req []byte, n int) {
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		if err := c.Send(req); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Receive(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInSyncRoundTrip: one IN_SYNC request and its reply through the
// unix transport and the daemon, against a bare echo server on the same
// socket type with the same frame sizes (issue target: within 1.2x).
func BenchmarkInSyncRoundTrip(b *testing.B) {
	k := newKernel(b, newDaemon(b))
	req := ulog.AppendRequest(nil, k.request(ulog.TypeInSync, "bench", 1, regions(5)))
	replyLen := ulog.HeaderLen + 8
	run := func(b *testing.B, sock string) {
		c, err := transport.DialUnix(sock)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		roundTrips(b, c, req, b.N)
	}
	b.Run("baseline=echo", func(b *testing.B) { run(b, echoUnix(b, replyLen)) })
	b.Run("impl=dlogd", func(b *testing.B) {
		d := newDaemon(b)
		kk := newKernel(b, d)
		kk.ctr("bench", 1, "131072 clustered-core 1024 nosync")
		kk.ok(ulog.TypeResume, "bench", 1, nil)
		run(b, serveUnix(b, d))
	})
}

// BenchmarkRequestsPerSecond: closed-loop clients, each on its own
// connection and its own log, sending IN_SYNC, MARK_REGION and
// CLEAR_REGION in turn; req/s is the total.
func BenchmarkRequestsPerSecond(b *testing.B) {
	for _, clients := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			d := newDaemon(b)
			k := newKernel(b, d)
			sock := serveUnix(b, d)
			reqs := make([][][]byte, clients)
			conns := make([]*transport.UnixClient, clients)
			for i := range clients {
				uuid := fmt.Sprintf("rps-%d", i)
				k.ctr(uuid, 1, "131072 clustered-core 1024 nosync")
				k.ok(ulog.TypeResume, uuid, 1, nil)
				for _, t := range []ulog.RequestType{ulog.TypeInSync, ulog.TypeMarkRegion, ulog.TypeClearRegion} {
					reqs[i] = append(reqs[i], ulog.AppendRequest(nil, k.request(t, uuid, 1, regions(uint64(i)))))
				}
				c, err := transport.DialUnix(sock)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			per := b.N/clients + 1
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					buf := make([]byte, 4096)
					for n := 0; n < per; n++ {
						if err := conns[i].Send(reqs[i][n%3]); err != nil {
							b.Error(err)
							return
						}
						if _, err := conns[i].Receive(buf); err != nil {
							b.Error(err)
							return
						}
					}
				}(i)
			}
			wg.Wait()
			b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "req/s")
		})
	}
}
