package ulog_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/ktrace"
	"github.com/dlog-dev/dlog/ulog"
)

//go:generate go test -run ^TestFuzzCorpus$ -update-corpus

var updateCorpus = flag.Bool("update-corpus", false,
	"rewrite the seed-* files under testdata/fuzz from kernel-trace.txt and the malformed tables")

// maxSeed keeps the committed corpus small: larger cases stay in the
// table tests only.
const maxSeed = 2048

// corpus collects seeds per fuzz target, dropping duplicate contents.
type corpus map[string]map[string][]byte

func (c corpus) add(target, name string, b []byte) {
	if len(b) > maxSeed {
		return
	}
	if c[target] == nil {
		c[target] = make(map[string][]byte)
	}
	for _, have := range c[target] {
		if bytes.Equal(have, b) {
			return
		}
	}
	name = "seed-" + slug(name)
	if _, dup := c[target][name]; dup {
		panic("duplicate seed name " + name)
	}
	c[target][name] = bytes.Clone(b)
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// seedCorpus builds the seeds of every fuzz target: each raw datagram of
// the kernel trace (requests also with the padding recvmsg returns), each
// payload of the trace, the malformed tables, and edge sizes.
func seedCorpus(t testing.TB) corpus {
	entries := ktrace.Load(t)
	c := corpus{}
	for i := range entries {
		e := &entries[i]
		name := fmt.Sprintf("trace-L%d-%v", e.Line, e.Type)
		switch e.Kind {
		case ktrace.KindRequest:
			if e.Raw != nil {
				c.add("FuzzDecodeRequest", name, e.Raw)
				if len(e.Raw)%4 != 0 {
					c.add("FuzzDecodeRequest", name+"-padded", append(bytes.Clone(e.Raw), make([]byte, 4-len(e.Raw)%4)...))
				}
			}
			if len(e.Data) > 0 {
				c.add("FuzzPayloads", name+"-request", e.Data)
			}
		case ktrace.KindReply:
			if e.Raw != nil {
				c.add("FuzzDecodeReply", name, e.Raw)
			}
			if len(e.Data) > 0 {
				c.add("FuzzPayloads", name+"-reply", e.Data)
			}
		}
	}
	for _, tc := range malformed() {
		c.add("FuzzDecodeRequest", "malformed-"+tc.name, tc.b)
		var f ulog.Frame
		if fe, ok := ulog.DecodeRequest(tc.b, &f).(*ulog.FrameError); ok && fe.Action != ulog.ActionDrop {
			c.add("FuzzDecodeReply", "reaction-to-"+tc.name, fe.AppendReply(nil, &f, 1))
		}
	}
	for typ := ulog.TypeCtr; typ <= ulog.MaxRequestType; typ++ {
		c.add("FuzzDecodeRequest", "type-"+typ.String(), request(typ, uint32(typ), u64(uint64(typ))))
	}
	c.add("FuzzDecodeRequest", "ctr-332-bytes", request(ulog.TypeCtr, 1, bytes.Repeat([]byte{'7'}, 332)))
	c.add("FuzzDecodeRequest", "upper-type-bits", with(inSyncFrame(), offType, uint32(0x1008)))
	for _, v := range []uint32{1, 2, 4, 0xffffffff} {
		c.add("FuzzDecodeRequest", "version-"+strconv.FormatUint(uint64(v), 10), with(inSyncFrame(), offVersion, v))
	}
	for _, tc := range malformedReplies() {
		c.add("FuzzDecodeReply", "malformed-"+tc.name, tc.b)
	}
	c.add("FuzzDecodeReply", "ack-eagain", ackFrame())
	c.add("FuzzDecodeReply", "ack-0", ulog.AppendAck(nil, 1, 1, 0))
	c.add("FuzzDecodeReply", "in-sync", inSyncReplyFrame())
	for _, n := range []int{0, 1, 4, 7, 9, 12, 15, 17, 24, 256, 328, 332, 333, 336} {
		c.add("FuzzPayloads", "zeros-"+strconv.Itoa(n), make([]byte, n))
	}
	c.add("FuzzPayloads", "region-max", u64(1<<64-1))
	c.add("FuzzPayloads", "ctr-with-nul", []byte("131072 clustered-core 1024 nosync\x00"))
	c.add("FuzzPayloads", "ctr-embedded-nul", []byte("131072\x00clustered-core 1024"))
	c.add("FuzzPayloads", "ctr-no-spaces", []byte("131072"))
	c.add("FuzzPayloads", "ctr-332", bytes.Repeat([]byte{'7'}, 332))
	return c
}

// marshalSeed writes b in the "go test fuzz v1" corpus file format.
func marshalSeed(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

// Ensure that the committed seed corpus is what seedCorpus generates, so
// that it cannot drift from the trace and the tables. Regenerate with
//
//	go test ./ulog -run '^TestFuzzCorpus$' -update-corpus
//
// Files not named seed-* (crashers the fuzzer found) are left alone.
func TestFuzzCorpus(t *testing.T) {
	requireLittleEndian(t)
	c := seedCorpus(t)
	targets := make([]string, 0, len(c))
	for target := range c {
		targets = append(targets, target)
	}
	sort.Strings(targets)
	for _, target := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		have, err := filepath.Glob(filepath.Join(dir, "seed-*"))
		if err != nil {
			t.Fatal(err)
		}
		if *updateCorpus {
			for _, p := range have {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range c[target] {
				if err := os.WriteFile(filepath.Join(dir, name), marshalSeed(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: wrote %d seeds", target, len(c[target]))
			continue
		}
		for _, p := range have {
			if _, ok := c[target][filepath.Base(p)]; !ok {
				t.Errorf("%s: stale seed file (rerun with -update-corpus)", p)
			}
		}
		for name, b := range c[target] {
			p := filepath.Join(dir, name)
			got, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: missing seed (rerun with -update-corpus): %v", p, err)
				continue
			}
			if !bytes.Equal(got, marshalSeed(b)) {
				t.Errorf("%s: differs from the generated seed (rerun with -update-corpus)", p)
			}
		}
	}
}
