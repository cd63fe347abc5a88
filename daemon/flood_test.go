package daemon_test

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/ktrace"
	"github.com/dlog-dev/dlog/ulog"
)

// countingPeer checks every reply and tallies how requests were answered.
type countingPeer struct {
	t       *testing.T
	mu      sync.Mutex
	answers map[string]int
}

func (p *countingPeer) Send(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep, err := ulog.DecodeReply(b)
	if err != nil {
		p.t.Fatalf("a reply the kernel would drop: %v", err)
	}
	if err := rep.Validate(); err != nil {
		p.t.Fatalf("reply breaks the rules: %v", err)
	}
	switch {
	case rep.AckOnly:
		p.answers["ack "+strconv.Itoa(int(rep.CnAck))]++
	case rep.Req.Error != 0:
		p.answers["error "+strconv.Itoa(int(rep.Req.Error))]++
	default:
		t := rep.Req.Type()
		if n, fixed := ulog.ReplyCapacity(t); fixed && t != ulog.TypeCtr && int(rep.Req.DataSize) != n {
			p.t.Fatalf("%s success with %d bytes", t, rep.Req.DataSize)
		}
		p.answers["ok"]++
	}
	return nil
}

func (p *countingPeer) String() string { return "flood" }

// TestMalformedFlood sends a million random and mutated datagrams, seeded
// from every request of kernel-trace.txt (DLOG_FLOOD overrides the count;
// 200,000 under the race detector), to a daemon that serves the trace's
// logs and one more that nothing may touch. No datagram may panic the
// daemon or get a reply a kernel would drop; afterwards the untouched log
// must hold exactly its state and the daemon must still answer correctly.
func TestMalformedFlood(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 200_000
	}
	if testing.Short() {
		n = 20_000
	}
	if s := os.Getenv("DLOG_FLOOD"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	entries := ktrace.Load(t)
	d := newDaemon(t)
	k := newKernel(t, d)
	// The log nothing may touch: marked, partly in sync.
	coreLog(t, k, "protected-log", 42, "")
	k.ok(ulog.TypeMarkRegion, "protected-log", 42, regions(7, 100))
	k.ok(ulog.TypeSetRegionSync, "protected-log", 42, ulog.AppendRegionSync(nil, 0, 1))
	k.ok(ulog.TypeClearRegion, "protected-log", 42, regions(0))

	var seeds [][]byte
	made := map[string]bool{}
	type logKey struct {
		uuid string
		luid uint64
	}
	var logs []logKey
	// revive reconstructs the trace's logs: mutated request types turn
	// some requests into DTRs.
	revive := func() {
		for _, l := range logs {
			k.ctr(l.uuid, l.luid, "131072 clustered-core 1024")
			k.call(ulog.TypeResume, l.uuid, l.luid, nil)
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.Kind != ktrace.KindRequest {
			continue
		}
		b, err := e.AppendDatagram(nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == ulog.TypeCtr || e.Type == ulog.TypeDtr {
			// Give mutated requests real logs to hit, once per trace log.
			key := e.UUID + "/" + strconv.FormatUint(e.LUID, 16)
			if !made[key] {
				made[key] = true
				logs = append(logs, logKey{e.UUID, e.LUID})
			}
			continue // mutated CTRs would construct thousands of logs
		}
		seeds = append(seeds, b)
	}
	p := &countingPeer{t: t, answers: map[string]int{}}
	rng := rand.New(rand.NewPCG(2026, 11))
	le := binary.NativeEndian
	buf := make([]byte, 0, 1024)
	revive()
	for i := 0; i < n; i++ {
		if i%2000 == 1999 {
			revive()
		}
		b := append(buf[:0], seeds[rng.IntN(len(seeds))]...)
		switch rng.IntN(8) {
		case 0: // flip random bytes
			for j := rng.IntN(4) + 1; j > 0; j-- {
				b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			}
		case 1: // truncate
			b = b[:rng.IntN(len(b)+1)]
		case 2: // lie about a length: nlmsg_len, cn_msg.len or data_size
			switch rng.IntN(3) {
			case 0:
				le.PutUint32(b[0:], rng.Uint32N(1024))
			case 1:
				le.PutUint16(b[32:], uint16(rng.Uint32N(1024)))
			default:
				le.PutUint32(b[192:], rng.Uint32()>>rng.IntN(32))
			}
		case 3: // another request type, upper bits too
			le.PutUint32(b[188:], rng.Uint32()>>rng.IntN(32))
		case 4: // a region anywhere, including 2^64-1
			if len(b) >= 204 {
				le.PutUint64(b[196:], rng.Uint64()>>rng.IntN(64))
			}
		case 5: // random payload of a random size
			pl := make([]byte, rng.IntN(400))
			for j := range pl {
				pl[j] = byte(rng.Uint32())
			}
			b = append(b[:196], pl...)
			le.PutUint32(b[0:], uint32(len(b)))
			le.PutUint16(b[32:], uint16(len(b)-36))
			le.PutUint32(b[192:], uint32(len(pl)))
		case 6: // pure garbage
			b = b[:rng.IntN(600)]
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		case 7: // a uuid without NUL, or version 0
			if len(b) >= 196 {
				if rng.IntN(2) == 0 {
					for j := 44; j < 173; j++ {
						b[j] = 'z'
					}
				} else {
					le.PutUint32(b[176:], 0)
				}
			}
		}
		handle(d, b[:len(b):len(b)], p)
	}
	// The protected log is exactly as it was.
	if k.isClean("protected-log", 42, 7) || k.isClean("protected-log", 42, 100) || !k.isClean("protected-log", 42, 0) {
		t.Fatal("the protected log's clean bits changed")
	}
	if c := k.u64(ulog.TypeGetSyncCount, "protected-log", 42); c != 1 {
		t.Fatalf("the protected log's sync count is %d, want 1", c)
	}
	for r := uint64(0); r < 128; r++ {
		if k.inSync("protected-log", 42, r) != (r == 0) {
			t.Fatalf("the protected log's region %d changed", r)
		}
	}
	// Let the workers answer what was queued before counting.
	if err := d.Close(t.Context()); err != nil {
		t.Fatalf("closing the daemon after the flood: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []string
	for a := range p.answers {
		keys = append(keys, a)
	}
	sort.Strings(keys)
	total := 0
	for _, a := range keys {
		total += p.answers[a]
	}
	t.Logf("%d datagrams sent; %d answered, %d dropped without reply", n, total, n-total)
	for _, a := range keys {
		t.Logf("  %-12s %d", a, p.answers[a])
	}
}
