package transport_test

import (
	"context"
	"log"

	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// A minimal server: answer every request with an error, from the reader
// goroutine. A real daemon queues requests that need the disk and replies
// from its workers, with the same Peer. Handle runs concurrently for
// different unix connections, so its scratch space is per call here (a
// daemon that must not allocate takes it from a sync.Pool).
func Example() {
	tr, err := transport.Listen("unix:/run/dlogd.sock", transport.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	err = tr.Serve(context.Background(), transport.HandlerFunc(func(d *transport.Datagram, from transport.Peer) {
		if d.Err != nil {
			return // a real daemon answers per the FrameError's Action
		}
		out := ulog.AppendReply(nil, &d.Frame.Req, 0, -int32(ulog.EINVAL), nil)
		if err := from.Send(out); err != nil {
			log.Printf("reply to %s: %v", from, err)
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
}
