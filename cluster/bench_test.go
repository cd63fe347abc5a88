package cluster

import (
	"testing"

	"github.com/dlog-dev/dlog/engine"
)

// BenchmarkInSync: IN_SYNC on a single-node engine log and on one member of
// a three-member cluster log (FakeNet), in one process: both answer from
// memory, the cluster log without a lock.
func BenchmarkInSync(b *testing.B) {
	benchEngineAndCluster(b, func(b *testing.B) engine.Config {
		return ctr(b, "1048576 clustered-core 1024 nosync")
	}, benchInSync)
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
	benchEngineAndCluster(b, func(b *testing.B) engine.Config {
		return ctr(b, "1048576 clustered-disk "+logDevice(b, 4<<20)+" 1024")
	}, benchMarkFlush)
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

// benchEngineAndCluster runs bench as two sub-benchmarks: "engine", on a
// single-node engine log, and "cluster3", on member 1 of a three-member
// cluster log (FakeNet, all resumed). Each opens its log(s) on a fresh
// config from newCtr.
func benchEngineAndCluster(b *testing.B, newCtr func(*testing.B) engine.Config, bench func(*testing.B, engine.Log)) {
	b.Run("engine", func(b *testing.B) {
		l, err := engine.Open(newCtr(b), engine.Options{Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		l.Resume()
		bench(b, l)
	})
	b.Run("cluster3", func(b *testing.B) {
		c := newCtr(b)
		net := NewFakeNet(3)
		ls := []*Log{openNode(b, net, 1, c), openNode(b, net, 2, c), openNode(b, net, 3, c)}
		resume(b, ls...)
		bench(b, ls[0])
		for _, l := range ls {
			l.Close()
		}
	})
}
