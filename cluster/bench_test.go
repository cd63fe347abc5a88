package cluster

import (
	"testing"

	"github.com/dlog-dev/dlog/engine"
)

// BenchmarkInSync: IN_SYNC on a single-node engine log and on one member of
// a three-member cluster log (FakeNet), in one process: both answer from
// memory, the cluster log without a lock.
func BenchmarkInSync(b *testing.B) {
	c := ctr(b, "1048576 clustered-core 1024 nosync")
	b.Run("engine", func(b *testing.B) {
		l, err := engine.Open(c, engine.Options{Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		l.Resume()
		benchInSync(b, l)
	})
	b.Run("cluster3", func(b *testing.B) {
		net := NewFakeNet(3)
		ls := []*Log{openNode(b, net, 1, c), openNode(b, net, 2, c), openNode(b, net, 3, c)}
		resume(b, ls...)
		benchInSync(b, ls[0])
		for _, l := range ls {
			l.Close()
		}
	})
}

func benchInSync(b *testing.B, l engine.Log) {
	n := l.RegionCount()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := l.InSync(uint64(i) % n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarkFlushDisk: one new mark made durable (mark, flush: changed
// block written, device cache flushed), then cleared, on a single-node
// engine disk log and on one member of a three-member clustered-disk log
// (its own slot), on the same filesystem.
func BenchmarkMarkFlushDisk(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		c := ctr(b, "1048576 clustered-disk "+logDevice(b, 4<<20)+" 1024")
		l, err := engine.Open(c, engine.Options{Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		l.Resume()
		benchMarkFlush(b, l)
	})
	b.Run("cluster3", func(b *testing.B) {
		c := ctr(b, "1048576 clustered-disk "+logDevice(b, 4<<20)+" 1024")
		net := NewFakeNet(3)
		ls := []*Log{openNode(b, net, 1, c), openNode(b, net, 2, c), openNode(b, net, 3, c)}
		resume(b, ls...)
		benchMarkFlush(b, ls[0])
		for _, l := range ls {
			l.Close()
		}
	})
}

func benchMarkFlush(b *testing.B, l engine.Log) {
	n := l.RegionCount()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := uint64(i) % n
		l.MarkRegion(r)
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.ClearRegion(r)
		b.StartTimer()
	}
}
