package ktrace_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/ktrace"
	"github.com/dlog-dev/dlog/ulog"
)

// Ensure that the trace yields the entries counted in the file with grep:
// 441 requests and 441 replies by type, 131 raw dumps of each, the 18
// markers in order, 21 notes and 3 elided lines.
func TestLoadCounts(t *testing.T) {
	entries := ktrace.Load(t)
	kinds := map[ktrace.Kind]int{}
	raws := map[ktrace.Kind]int{}
	reqs := map[ulog.RequestType]int{}
	rsps := map[ulog.RequestType]int{}
	for _, e := range entries {
		kinds[e.Kind]++
		if e.Raw != nil {
			raws[e.Kind]++
		}
		switch e.Kind {
		case ktrace.KindRequest:
			reqs[e.Type]++
		case ktrace.KindReply:
			rsps[e.Type]++
		}
	}
	for k, want := range map[ktrace.Kind]int{
		ktrace.KindRequest: 441, ktrace.KindReply: 441, ktrace.KindMarker: 18, ktrace.KindNote: 21, ktrace.KindElided: 3,
	} {
		if got := kinds[k]; got != want {
			t.Errorf("%d %s entries, want %d", got, k, want)
		}
	}
	if want, got := 131, raws[ktrace.KindRequest]; want != got {
		t.Errorf("%d requests with raw dumps, want %d", got, want)
	}
	if want, got := 131, raws[ktrace.KindReply]; want != got {
		t.Errorf("%d replies with raw dumps, want %d", got, want)
	}
	if n := len(raws); n != 2 {
		t.Errorf("raw dumps on %d kinds of entry, want 2", n)
	}
	want := map[ulog.RequestType]int{
		ulog.TypeCtr: 7, ulog.TypeDtr: 5, ulog.TypePresuspend: 6, ulog.TypePostsuspend: 6,
		ulog.TypeResume: 8, ulog.TypeGetRegionSize: 5, ulog.TypeInSync: 67, ulog.TypeFlush: 43,
		ulog.TypeMarkRegion: 5, ulog.TypeClearRegion: 62, ulog.TypeGetResyncWork: 67,
		ulog.TypeSetRegionSync: 61, ulog.TypeGetSyncCount: 73, ulog.TypeStatusInfo: 16,
		ulog.TypeIsRemoteRecovering: 10,
	}
	for typ := ulog.RequestType(0); typ <= 20; typ++ {
		if reqs[typ] != want[typ] || rsps[typ] != want[typ] {
			t.Errorf("%v: %d requests and %d replies, want %d", typ, reqs[typ], rsps[typ], want[typ])
		}
	}
}

func TestMarkersInOrder(t *testing.T) {
	var got []string
	for _, e := range ktrace.Load(t) {
		if e.Kind == ktrace.KindMarker {
			got = append(got, e.Text)
		}
	}
	want := []string{
		"(a) mirror with core log",
		"(b) mirror with disk log",
		"(c0) userspace log, no daemon running (expect ESRCH failure)",
		"(c) userspace log clustered-core 1024 (default sync => full resync)",
		"(c) remove",
		"(d) userspace log, integrated_flush + clustered-disk (daemon returns log dev name in CTR reply)",
		"(d) remove",
		"(e) userspace log nosync, suspend/resume",
		"(e) suspend",
		"(e) resume",
		"(e) remove",
		"(f) userspace log 128 MiB, write immediately while resync runs",
		"(f) remove",
		"(g) daemon crash + restart with a live userspace mirror",
		"(g) SIGKILL ulogd; then dmsetup status + 1 MiB O_DIRECT write in background",
		"(g) ulogd restarted (pid 717) at +5.18 s after the kill",
		"(g) remove",
		"end",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("markers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Ensure that entries are in file order, that every raw dump belongs to
// its entry (the dump's seq, type and payload are the summary line's),
// and that sections follow the markers.
func TestEntriesConsistent(t *testing.T) {
	entries := ktrace.Load(t)
	if ne := binary.NativeEndian; ne.Uint16([]byte{1, 0}) != 1 {
		t.Skip("skipping: the raw dumps are little-endian")
	}
	le := binary.LittleEndian
	section := ""
	for i, e := range entries {
		if i > 0 && (e.Line <= entries[i-1].Line || e.Time < entries[i-1].Time) {
			t.Errorf("line %d (t=%v) after line %d (t=%v)", e.Line, e.Time, entries[i-1].Line, entries[i-1].Time)
		}
		if e.Kind == ktrace.KindMarker {
			section = e.Text
		}
		if e.Section != section {
			t.Errorf("line %d: section %q, want %q", e.Line, e.Section, section)
		}
		if uint32(len(e.Data)) != e.DataSize {
			t.Errorf("line %d: %d bytes of data, dsize %d", e.Line, len(e.Data), e.DataSize)
		}
		if e.Raw == nil {
			continue
		}
		// nlmsg_len, dm_ulog_request.seq, request_type, data_size, data.
		if int(le.Uint32(e.Raw)) != len(e.Raw) || le.Uint32(e.Raw[184:]) != e.Seq ||
			ulog.RequestType(le.Uint32(e.Raw[188:])) != e.Type || le.Uint32(e.Raw[192:]) != e.DataSize ||
			!bytes.Equal(e.Raw[196:], e.Data) {
			t.Errorf("line %d: raw dump does not belong to %s %q", e.Line, e.Kind, e.Text)
		}
		if e.Kind == ktrace.KindRequest && (le.Uint32(e.Raw[24:]) != e.CnSeq || le.Uint16(e.Raw[32:]) != uint16(e.CnLen) ||
			le.Uint64(e.Raw[36:]) != e.LUID || !bytes.HasPrefix(e.Raw[44:], append([]byte(e.UUID), 0))) {
			t.Errorf("line %d: raw request header does not match %q", e.Line, e.Text)
		}
	}
}

// Ensure that each elided line accounts for its section: requests kept in
// the file plus those elided are the section totals, and the whole file
// accounts for the 52,755 requests of the run.
func TestElidedTotals(t *testing.T) {
	entries := ktrace.Load(t)
	kept := map[ulog.RequestType]int{}
	nkept, total := 0, 0
	for _, e := range entries {
		switch e.Kind {
		case ktrace.KindMarker:
			kept = map[ulog.RequestType]int{}
			nkept = 0
		case ktrace.KindRequest:
			kept[e.Type]++
			nkept++
			total++
		case ktrace.KindElided:
			sum := 0
			for typ, n := range e.Totals {
				sum += n
				if kept[typ] > n {
					t.Errorf("line %d: %d %v kept, section total %d", e.Line, kept[typ], typ, n)
				}
			}
			for typ := range kept {
				if _, ok := e.Totals[typ]; !ok {
					t.Errorf("line %d: %v kept but not in the section totals", e.Line, typ)
				}
			}
			if nkept+e.Elided != sum {
				t.Errorf("line %d: %d kept + %d elided != %d in the totals", e.Line, nkept, e.Elided, sum)
			}
			total += e.Elided
		}
	}
	if total != 52755 {
		t.Errorf("%d requests accounted for, want 52755", total)
	}
}

// Ensure that every request pairs with its reply, and that requests
// rebuild into datagrams (those with a raw dump byte for byte).
func TestExchangesAndDatagrams(t *testing.T) {
	entries, ex := ktrace.LoadExchanges(t)
	if len(ex) != 441 {
		t.Fatalf("%d exchanges, want 441", len(ex))
	}
	for _, x := range ex {
		if x.Rsp == nil || x.Rsp.Seq != x.Req.Seq || x.Rsp.Type != x.Req.Type || x.Rsp.Line < x.Req.Line {
			t.Errorf("line %d: reply %+v", x.Req.Line, x.Rsp)
			continue
		}
		b, err := x.Req.AppendDatagram(nil)
		if err != nil {
			t.Errorf("line %d: %v", x.Req.Line, err)
			continue
		}
		var f ulog.Frame
		if err := ulog.DecodeRequest(b, &f); err != nil {
			t.Errorf("line %d: rebuilt datagram: %v", x.Req.Line, err)
		}
		if x.Req.Raw != nil && binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && !bytes.Equal(b[:len(x.Req.Raw)], x.Req.Raw) {
			t.Errorf("line %d: rebuilt\n% x\nraw\n% x", x.Req.Line, b, x.Req.Raw)
		}
	}
	var note ktrace.Entry
	for _, e := range entries {
		if e.Kind == ktrace.KindNote {
			note = e
			break
		}
	}
	if _, err := note.Request(); !errors.Is(err, ktrace.ErrKind) {
		t.Errorf("Request of a note: %v", err)
	}
	if _, err := note.AppendDatagram(nil); !errors.Is(err, ktrace.ErrKind) {
		t.Errorf("AppendDatagram of a note: %v", err)
	}
}

const (
	reqLine = `    13.085 REQ seq=1 cn.seq=1 cn.ack=0 cn.len=168 type=8(IN_SYNC) ver=3 err=0 luid=0xff3dda563fde8400 uuid="a b\"c" dsize=8 data=2a00000000000000`
	rspLine = `    13.089 RSP seq=1 type=IN_SYNC error=0 dsize=8 data=0100000000000000`
)

// Ensure that a small trace in the documented format parses field by field.
func TestParseFields(t *testing.T) {
	in := strings.Join([]string{
		"# comment",
		"      3.54 ===== (a) first",
		reqLine,
		"    13.086     raw reply (4 bytes):",
		"      00000000  01 02 7c 04                                       ||.|.|",
		"",
		rspLine,
		"    13.100     raw reply (20 bytes):",
		"      00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|",
		"      00000010  10 11 12 13                                       |....|",
		"    42.175 ... 7 request/response pairs elided from this section; section totals: IN_SYNC=6 FLUSH=2",
		"    80.283   CTR                    2",
	}, "\n")
	_, err := ktrace.Parse(strings.NewReader(in))
	if !errors.Is(err, ktrace.ErrSyntax) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("raw reply after a REQ line: err = %v, want ErrSyntax at line 4", err)
	}
	in = strings.Replace(in, "raw reply (4 bytes)", "raw request (nlmsghdr 16 + cn_msg 20 + dm_ulog_request 160 + data 0 = 4 bytes)", 1)
	entries, err := ktrace.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("%d entries, want 5: %+v", len(entries), entries)
	}
	m, q, r, el, n := entries[0], entries[1], entries[2], entries[3], entries[4]
	if m.Kind != ktrace.KindMarker || m.Text != "(a) first" || m.Time != 3.54 || m.Line != 2 {
		t.Errorf("marker %+v", m)
	}
	if q.Kind != ktrace.KindRequest || q.Seq != 1 || q.CnSeq != 1 || q.CnAck != 0 || q.CnLen != 168 || q.Type != ulog.TypeInSync ||
		q.Version != 3 || q.Error != 0 || q.LUID != 0xff3dda563fde8400 || q.UUID != `a b"c` || q.DataSize != 8 ||
		!bytes.Equal(q.Data, []byte{0x2a, 0, 0, 0, 0, 0, 0, 0}) || !bytes.Equal(q.Raw, []byte{1, 2, 0x7c, 4}) || q.Section != "(a) first" {
		t.Errorf("request %+v", q)
	}
	if r.Kind != ktrace.KindReply || r.Seq != 1 || r.Type != ulog.TypeInSync || r.Error != 0 || len(r.Raw) != 20 || r.Raw[19] != 0x13 {
		t.Errorf("reply %+v", r)
	}
	if el.Kind != ktrace.KindElided || el.Elided != 7 || el.Totals[ulog.TypeInSync] != 6 || el.Totals[ulog.TypeFlush] != 2 || len(el.Totals) != 2 {
		t.Errorf("elided %+v", el)
	}
	if n.Kind != ktrace.KindNote || n.Text != "CTR                    2" {
		t.Errorf("note %+v", n)
	}
	req, err := q.Request()
	if err != nil || req.Seq != 1 || req.Type() != ulog.TypeInSync || string(req.UUIDBytes()) != `a b"c` {
		t.Errorf("Request() = %+v, %v", req, err)
	}
}

// Ensure that Parse rejects what it does not understand, naming the line.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		line int
	}{
		{name: "untimed text", in: "hello", line: 1},
		{name: "time without dot", in: "    13 REQ seq=1", line: 1},
		{name: "hex line outside a dump", in: rspLine + "\n      00000000  01 02", line: 2},
		{name: "dump without entry", in: "    1.0     raw request (4 bytes):", line: 1},
		{name: "raw request after RSP", in: rspLine + "\n    1.0     raw request (4 bytes):\n      00000000  01 02 03 04", line: 2},
		{name: "second dump", in: rspLine + "\n    1.0     raw reply (1 bytes):\n      00000000  01  |.|\n    1.0     raw reply (1 bytes):", line: 4},
		{name: "dump shorter than announced", in: rspLine + "\n    1.0     raw reply (5 bytes):\n      00000000  01 02 03 04  |....|\n", line: 2},
		{name: "dump longer than announced", in: rspLine + "\n    1.0     raw reply (3 bytes):\n      00000000  01 02 03 04  |....|", line: 3},
		{name: "dump offset gap", in: rspLine + "\n    1.0     raw reply (20 bytes):\n      00000000  01 02 03 04\n      00000010  01", line: 4},
		{name: "bad dump byte", in: rspLine + "\n    1.0     raw reply (2 bytes):\n      00000000  01 zz", line: 3},
		{name: "17 bytes on a dump line", in: rspLine + "\n    1.0     raw reply (17 bytes):\n      00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10", line: 3},
		{name: "dsize disagrees", in: strings.Replace(rspLine, "dsize=8", "dsize=7", 1), line: 1},
		{name: "odd hex data", in: strings.Replace(rspLine, "data=0100000000000000", "data=010", 1), line: 1},
		{name: "unknown reply type", in: strings.Replace(rspLine, "type=IN_SYNC", "type=IN_SINK", 1), line: 1},
		{name: "request type name mismatch", in: strings.Replace(reqLine, "type=8(IN_SYNC)", "type=7(IN_SYNC)", 1), line: 1},
		{name: "missing field", in: strings.Replace(reqLine, " ver=3", "", 1), line: 1},
		{name: "renamed field", in: strings.Replace(reqLine, " ver=3", " version=3", 1), line: 1},
		{name: "unterminated uuid", in: strings.Replace(reqLine, `uuid="a b\"c"`, `uuid="a`, 1), line: 1},
		{name: "seq out of range", in: strings.Replace(rspLine, "seq=1", "seq=4294967296", 1), line: 1},
		{name: "bad luid", in: strings.Replace(reqLine, "luid=0xff3dda563fde8400", "luid=zz", 1), line: 1},
		{name: "elided without totals", in: "    1.0 ... 5 request/response pairs elided from this section", line: 1},
		{name: "elided with unknown type", in: "    1.0 ... 5 request/response pairs elided from this section; section totals: FOO=5", line: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ktrace.Parse(strings.NewReader(tc.in))
			if !errors.Is(err, ktrace.ErrSyntax) {
				t.Fatalf("err = %v, want ErrSyntax", err)
			}
			if want := "line " + strconv.Itoa(tc.line) + ":"; !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name %q", err, want)
			}
		})
	}
}

// Ensure that Exchanges refuses a reply with no request.
func TestExchangesErrors(t *testing.T) {
	entries, err := ktrace.Parse(strings.NewReader(rspLine))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ktrace.Exchanges(entries); !errors.Is(err, ktrace.ErrSyntax) {
		t.Errorf("orphan reply: err = %v", err)
	}
	entries, err = ktrace.Parse(strings.NewReader(reqLine + "\n" + strings.Replace(rspLine, "type=IN_SYNC", "type=FLUSH", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ktrace.Exchanges(entries); !errors.Is(err, ktrace.ErrSyntax) {
		t.Errorf("reply of another type: err = %v", err)
	}
	// A summary line a kernel could not have produced cannot be rebuilt.
	entries, err = ktrace.Parse(strings.NewReader(strings.Replace(reqLine, "cn.seq=1", "cn.seq=2", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := entries[0].AppendDatagram(nil); !errors.Is(err, ktrace.ErrSyntax) {
		t.Errorf("cn.seq != seq: err = %v", err)
	}
}

// strictTB turns a skip into a failure, so that a test of Load can tell
// "skipped for want of data" from "ran".
type strictTB struct{ testing.TB }

func (s strictTB) Skip(args ...any) { s.TB.Helper(); s.TB.Fatal(append([]any{"skipped:"}, args...)...) }
func (s strictTB) Skipf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Fatalf("skipped: "+format, args...)
}
func (s strictTB) SkipNow() { s.TB.Helper(); s.TB.Fatal("skipped") }

// Ensure that the trace loads, without skipping, from a directory with no
// go.mod above it and nothing beside it: it is the repository's own
// testdata, compiled in.
func TestLoadAnywhere(t *testing.T) {
	t.Chdir(t.TempDir())
	if n := len(ktrace.Load(strictTB{t})); n != 924 {
		t.Errorf("%d entries, want 924", n)
	}
}

// Ensure that the trace in testdata is the capture, byte for byte (its
// SHA-256 as taken when it was moved into the repository).
func TestTextIntact(t *testing.T) {
	b, err := ktrace.Text()
	if err != nil {
		t.Fatal(err)
	}
	const want = "2e69ae3dab432554d7ed57f829aa4f494d3042f3cc205ef1a6291cf8ac435a08"
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
		t.Errorf("sha256 %x, %d bytes; want %s", sum, len(b), want)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[ktrace.Kind]string{
		ktrace.KindRequest: "request", ktrace.KindReply: "reply", ktrace.KindMarker: "marker",
		ktrace.KindNote: "note", ktrace.KindElided: "elided", 0: "Kind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", k, got, want)
		}
	}
}

// FuzzParse checks that no input makes Parse panic, and that what it
// accepts is self-consistent.
func FuzzParse(f *testing.F) {
	f.Add(reqLine + "\n" + rspLine)
	f.Add(reqLine + "\n    1.0     raw request (4 bytes):\n      00000000  01 02 7c 04  ||.|.|\n" + rspLine)
	f.Add("      3.54 ===== (a) first\n    42.175 ... 7 request/response pairs elided from this section; section totals: IN_SYNC=6 FLUSH=2")
	f.Add("# comment\n\n    80.283   CTR                    2")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := ktrace.Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, e := range entries {
			if uint32(len(e.Data)) != e.DataSize {
				t.Fatalf("line %d: %d bytes of data, dsize %d", e.Line, len(e.Data), e.DataSize)
			}
			if e.Raw != nil && e.Kind != ktrace.KindRequest && e.Kind != ktrace.KindReply {
				t.Fatalf("line %d: raw dump on a %s", e.Line, e.Kind)
			}
			if e.Kind == ktrace.KindRequest {
				_, _ = e.AppendDatagram(nil)
			}
		}
		_, _ = ktrace.Exchanges(entries)
	})
}
