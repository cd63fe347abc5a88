package ktrace

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dlog-dev/dlog/ulog"
)

// Kind is the kind of a trace entry.
type Kind uint8

const (
	// KindRequest is a "REQ" line: a request as the kernel sent it.
	KindRequest Kind = iota + 1
	// KindReply is an "RSP" line: the reply the tracing daemon sent.
	KindReply
	// KindMarker is a "=====" scenario marker.
	KindMarker
	// KindNote is any other timed line ("ctr string: ...", "ulogd ready
	// ...", the final per-type counts).
	KindNote
	// KindElided is a "... N request/response pairs elided" line.
	KindElided
)

// String returns "request", "reply", "marker", "note" or "elided".
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindReply:
		return "reply"
	case KindMarker:
		return "marker"
	case KindNote:
		return "note"
	case KindElided:
		return "elided"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Entry is one timed line of the trace, with the raw dump attached to it.
type Entry struct {
	// Line is the 1-based line number in the file.
	Line int
	// Time is the guest uptime in seconds.
	Time float64
	// Kind says which of the fields below are set.
	Kind Kind
	// Section is the text of the last marker at or before this entry
	// ("(c) userspace log clustered-core 1024 ..."), "" before the first.
	Section string

	// Seq is dm_ulog_request.seq (requests and replies).
	Seq uint32
	// Type is the request type (requests and replies).
	Type ulog.RequestType
	// Error is err= of a request, error= of a reply.
	Error int32
	// DataSize is dsize=; always len(Data).
	DataSize uint32
	// Data is the payload (data=), nil when empty.
	Data []byte
	// Raw is the datagram dump attached to the line, up to nlmsg_len; nil
	// when the trace kept no dump for it.
	Raw []byte

	// CnSeq, CnAck and CnLen are cn.seq, cn.ack and cn.len (requests).
	CnSeq, CnAck, CnLen uint32
	// Version is ver= (requests).
	Version uint32
	// LUID is luid= (requests).
	LUID uint64
	// UUID is the unquoted uuid= (requests).
	UUID string

	// Text is the line after the time: the marker text without "===== ",
	// the note, the elided line, or the whole REQ/RSP line.
	Text string
	// Elided is the number of request/reply pairs an elided line stands
	// for, and Totals its section totals per request type (requests kept
	// in the file included).
	Elided int
	Totals map[ulog.RequestType]int
}

// Request returns the request a REQ entry describes. Data aliases e.Data.
func (e *Entry) Request() (ulog.Request, error) {
	var r ulog.Request
	if e.Kind != KindRequest {
		return r, fmt.Errorf("ktrace: line %d: Request of a %s entry: %w", e.Line, e.Kind, ErrKind)
	}
	if err := r.SetUUID(e.UUID); err != nil {
		return r, fmt.Errorf("ktrace: line %d: %w", e.Line, err)
	}
	r.LUID = e.LUID
	r.Version = e.Version
	r.Error = e.Error
	r.Seq = e.Seq
	r.RawType = uint32(e.Type)
	r.DataSize = e.DataSize
	r.Data = e.Data
	return r, nil
}

// AppendDatagram appends to dst the datagram the kernel sent for a REQ
// entry, byte for byte as a receiver got it (ulog.AppendRequest: including
// the alignment padding, which the raw dumps leave out). It fails if the
// summary line has connector fields a kernel would not have sent
// (cn.seq != seq, cn.ack != 0, cn.len != 160 + dsize).
func (e *Entry) AppendDatagram(dst []byte) ([]byte, error) {
	r, err := e.Request()
	if err != nil {
		return dst, err
	}
	if e.CnSeq != e.Seq || e.CnAck != 0 || e.CnLen != ulog.RequestHeaderLen+e.DataSize {
		return dst, fmt.Errorf("ktrace: line %d: cn.seq=%d cn.ack=%d cn.len=%d cannot come from a kernel for seq=%d dsize=%d: %w",
			e.Line, e.CnSeq, e.CnAck, e.CnLen, e.Seq, e.DataSize, ErrSyntax)
	}
	return ulog.AppendRequest(dst, &r), nil
}

// Exchange is a request and the reply that answered it.
type Exchange struct {
	Req *Entry
	// Rsp is nil when the trace has no reply for Req.
	Rsp *Entry
}

// Exchanges pairs every request in entries with the reply of the same seq,
// in request order. A reply without a pending request of that seq and
// type is an error.
func Exchanges(entries []Entry) ([]Exchange, error) {
	var out []Exchange
	pending := make(map[uint32]int) // seq -> index in out
	for i := range entries {
		e := &entries[i]
		switch e.Kind {
		case KindRequest:
			pending[e.Seq] = len(out)
			out = append(out, Exchange{Req: e})
		case KindReply:
			j, ok := pending[e.Seq]
			if !ok {
				return nil, fmt.Errorf("ktrace: line %d: reply seq=%d without a pending request: %w", e.Line, e.Seq, ErrSyntax)
			}
			if out[j].Req.Type != e.Type {
				return nil, fmt.Errorf("ktrace: line %d: reply type %s to a %s request (line %d): %w",
					e.Line, e.Type, out[j].Req.Type, out[j].Req.Line, ErrSyntax)
			}
			out[j].Rsp = e
			delete(pending, e.Seq)
		}
	}
	return out, nil
}

// Parse reads a kernel trace and returns its timed lines as entries in
// file order. Comment lines ("#") and blank lines are skipped; hex dumps
// are attached to their entry's Raw.
func Parse(r io.Reader) ([]Entry, error) {
	p := parser{last: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ktrace: line %d: %w", p.line+1, err)
	}
	if err := p.endDump(); err != nil {
		return nil, err
	}
	return p.entries, nil
}

type parser struct {
	line    int
	entries []Entry
	section string
	last    int // index of the last request, reply, marker or elided entry; -1 none
	// The dump being read: the entry it belongs to and its announced size.
	dumpTo, dumpLen, dumpHdr int
	inDump                   bool
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("ktrace: line %d: "+format+": %w", append([]any{p.line}, append(args, ErrSyntax)...)...)
}

func (p *parser) parseLine(line string) error {
	trimmed := strings.TrimLeft(line, " \t")
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return p.endDump()
	}
	tok, rest, _ := strings.Cut(trimmed, " ")
	if isHexOffset(tok) {
		return p.dumpLine(tok, rest)
	}
	if err := p.endDump(); err != nil {
		return err
	}
	t, err := strconv.ParseFloat(tok, 64)
	if err != nil || !strings.Contains(tok, ".") {
		return p.errorf("neither a timed line nor a hex dump: %q", line)
	}
	rest = strings.TrimLeft(rest, " ")
	e := Entry{Line: p.line, Time: t, Text: rest}
	switch {
	case strings.HasPrefix(rest, "====="):
		e.Kind = KindMarker
		e.Text = strings.TrimSpace(strings.TrimPrefix(rest, "====="))
		p.section = e.Text
	case strings.HasPrefix(rest, "REQ "):
		e.Kind = KindRequest
		if err := p.parseSummary(&e, rest[len("REQ "):]); err != nil {
			return err
		}
	case strings.HasPrefix(rest, "RSP "):
		e.Kind = KindReply
		if err := p.parseSummary(&e, rest[len("RSP "):]); err != nil {
			return err
		}
	case strings.HasPrefix(rest, "raw request ("), strings.HasPrefix(rest, "raw reply ("):
		return p.startDump(rest)
	case strings.HasPrefix(rest, "... ") && strings.Contains(rest, " elided "):
		e.Kind = KindElided
		if err := p.parseElided(&e, rest); err != nil {
			return err
		}
	default:
		e.Kind = KindNote
	}
	e.Section = p.section
	if e.Kind != KindNote {
		p.last = len(p.entries)
	}
	p.entries = append(p.entries, e)
	return nil
}

// parseSummary parses the key=value fields of a REQ or RSP line.
func (p *parser) parseSummary(e *Entry, s string) error {
	fields, err := splitFields(s)
	if err != nil {
		return p.errorf("%v", err)
	}
	var want []string
	if e.Kind == KindRequest {
		want = []string{"seq", "cn.seq", "cn.ack", "cn.len", "type", "ver", "err", "luid", "uuid", "dsize", "data"}
	} else {
		want = []string{"seq", "type", "error", "dsize", "data"}
	}
	if len(fields) != len(want) {
		return p.errorf("%d fields, want %s", len(fields), strings.Join(want, " "))
	}
	for i, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		if !ok || key != want[i] {
			return p.errorf("field %d is %q, want %s=", i+1, f, want[i])
		}
		if err := p.setField(e, key, val); err != nil {
			return err
		}
	}
	if uint64(e.DataSize) != uint64(len(e.Data)) {
		return p.errorf("dsize=%d but %d bytes of data", e.DataSize, len(e.Data))
	}
	return nil
}

func (p *parser) setField(e *Entry, key, val string) error {
	u32 := func(dst *uint32) error {
		v, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return p.errorf("%s=%q: %v", key, val, err)
		}
		*dst = uint32(v)
		return nil
	}
	switch key {
	case "seq":
		return u32(&e.Seq)
	case "cn.seq":
		return u32(&e.CnSeq)
	case "cn.ack":
		return u32(&e.CnAck)
	case "cn.len":
		return u32(&e.CnLen)
	case "ver":
		return u32(&e.Version)
	case "dsize":
		return u32(&e.DataSize)
	case "err", "error":
		v, err := strconv.ParseInt(val, 10, 32)
		if err != nil {
			return p.errorf("%s=%q: %v", key, val, err)
		}
		e.Error = int32(v)
	case "luid":
		v, err := strconv.ParseUint(val, 0, 64)
		if err != nil {
			return p.errorf("luid=%q: %v", val, err)
		}
		e.LUID = v
	case "uuid":
		v, err := strconv.Unquote(val)
		if err != nil {
			return p.errorf("uuid=%s: %v", val, err)
		}
		e.UUID = v
	case "data":
		if val == "" {
			return nil
		}
		v, err := hex.DecodeString(val)
		if err != nil {
			return p.errorf("data=%q: %v", val, err)
		}
		e.Data = v
	case "type":
		return p.setType(e, val)
	}
	return nil
}

// setType parses "8(IN_SYNC)" (REQ) or "IN_SYNC" (RSP).
func (p *parser) setType(e *Entry, val string) error {
	if e.Kind == KindReply {
		t, ok := ulog.ParseRequestType(val)
		if !ok {
			return p.errorf("type=%q: unknown request type name", val)
		}
		e.Type = t
		return nil
	}
	num, name, ok := strings.Cut(val, "(")
	if !ok || !strings.HasSuffix(name, ")") {
		return p.errorf("type=%q, want N(NAME)", val)
	}
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return p.errorf("type=%q: %v", val, err)
	}
	e.Type = ulog.RequestType(v)
	if got := strings.TrimSuffix(name, ")"); got != e.Type.String() {
		return p.errorf("type=%q: %d is %s", val, v, e.Type)
	}
	return nil
}

// parseElided parses "... N request/response pairs elided from this
// section; section totals: CTR=1 RESUME=1 ...".
func (p *parser) parseElided(e *Entry, s string) error {
	n, rest, _ := strings.Cut(strings.TrimPrefix(s, "... "), " ")
	v, err := strconv.Atoi(n)
	if err != nil || v < 0 {
		return p.errorf("elided count %q", n)
	}
	e.Elided = v
	_, totals, ok := strings.Cut(rest, "section totals:")
	if !ok {
		return p.errorf("elided line without section totals")
	}
	e.Totals = make(map[ulog.RequestType]int)
	for f := range strings.FieldsSeq(totals) {
		name, cnt, ok := strings.Cut(f, "=")
		t, known := ulog.ParseRequestType(name)
		c, err := strconv.Atoi(cnt)
		if !ok || !known || err != nil || c < 0 {
			return p.errorf("section total %q", f)
		}
		e.Totals[t] = c
	}
	return nil
}

// startDump begins a "raw request (... = N bytes):" or "raw reply (N
// bytes):" block and checks it follows an entry of the matching kind.
func (p *parser) startDump(s string) error {
	i := strings.LastIndex(s, " bytes):")
	if i < 0 || !strings.HasSuffix(s, " bytes):") {
		return p.errorf("raw dump header %q", s)
	}
	j := strings.LastIndexAny(s[:i], " (")
	n, err := strconv.Atoi(s[j+1 : i])
	if err != nil || n <= 0 {
		return p.errorf("raw dump size in %q", s)
	}
	want := KindRequest
	if strings.HasPrefix(s, "raw reply") {
		want = KindReply
	}
	if len(p.entries) == 0 || p.last < 0 || p.entries[p.last].Kind != want {
		return p.errorf("%s dump not after a %s line", want, want)
	}
	if p.entries[p.last].Raw != nil {
		return p.errorf("second raw dump for line %d", p.entries[p.last].Line)
	}
	p.inDump, p.dumpTo, p.dumpLen, p.dumpHdr = true, p.last, n, p.line
	p.entries[p.last].Raw = make([]byte, 0, n)
	return nil
}

// dumpLine appends one "hexdump -C" line to the open dump.
func (p *parser) dumpLine(off, rest string) error {
	if !p.inDump {
		return p.errorf("hex dump line outside a raw dump")
	}
	e := &p.entries[p.dumpTo]
	o, _ := strconv.ParseUint(off, 16, 32)
	if o != uint64(len(e.Raw)) {
		return p.errorf("dump offset %s, want %08x", off, len(e.Raw))
	}
	n := 0
	for f := range strings.FieldsSeq(rest) {
		if strings.HasPrefix(f, "|") {
			break
		}
		b, err := hex.DecodeString(f)
		if err != nil || len(b) != 1 {
			return p.errorf("dump byte %q", f)
		}
		e.Raw = append(e.Raw, b[0])
		n++
	}
	if n == 0 || n > 16 {
		return p.errorf("%d bytes on a dump line", n)
	}
	if len(e.Raw) > p.dumpLen {
		return p.errorf("dump longer than the %d bytes announced on line %d", p.dumpLen, p.dumpHdr)
	}
	return nil
}

func (p *parser) endDump() error {
	if !p.inDump {
		return nil
	}
	p.inDump = false
	if got := len(p.entries[p.dumpTo].Raw); got != p.dumpLen {
		return fmt.Errorf("ktrace: line %d: dump of %d bytes, header announced %d: %w", p.dumpHdr, got, p.dumpLen, ErrSyntax)
	}
	return nil
}

func isHexOffset(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// splitFields splits on spaces outside double quotes (uuid="a b").
func splitFields(s string) ([]string, error) {
	var out []string
	start, inQuote := -1, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ' ' && !inQuote:
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out, nil
}
