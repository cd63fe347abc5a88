package daemon_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/engine"
	"github.com/dlog-dev/dlog/header"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/internal/testutil/ktrace"
	"github.com/dlog-dev/dlog/ulog"
)

// model is an oracle for the replay: the semantics of docs/protocol.md §3 for
// one log, written as plainly as possible, independent of the engine.
type model struct {
	cfg        engine.Config
	clean      []bool
	sync       []bool
	recovering map[uint64]bool
	cursor     uint64
	halted     bool
	running    bool
	// fresh: a disk log whose device holds no log yet (zero-filled).
	fresh bool
}

func newModel(cfg engine.Config) *model {
	n := cfg.RegionCount()
	m := &model{cfg: cfg, clean: make([]bool, n), sync: make([]bool, n), recovering: map[uint64]bool{}, fresh: cfg.Disk()}
	for i := range m.clean {
		m.clean[i] = true
		m.sync[i] = cfg.Sync == header.SyncNone
	}
	return m
}

func (m *model) n() uint64 { return uint64(len(m.clean)) }

func (m *model) syncCount() (c uint64) {
	for _, v := range m.sync {
		if v {
			c++
		}
	}
	return c
}

// answer returns the error and payload a correct log gives to req.
func (m *model) answer(t ulog.RequestType, data []byte) (int32, []byte) {
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	pair := func(i int64, v uint64) []byte { return binary.NativeEndian.AppendUint64(u64(uint64(i)), v) }
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	region := func() (uint64, bool) {
		if len(data) != 8 {
			return 0, false
		}
		r := binary.NativeEndian.Uint64(data)
		return r, r < m.n()
	}
	list := func() ([]uint64, bool) {
		if len(data) == 0 || len(data)%8 != 0 || len(data) > 332 {
			return nil, false
		}
		var rs []uint64
		for i := 0; i < len(data); i += 8 {
			r := binary.NativeEndian.Uint64(data[i:])
			if r >= m.n() {
				return nil, false
			}
			rs = append(rs, r)
		}
		return rs, true
	}
	switch t {
	case ulog.TypeGetRegionSize:
		return 0, u64(uint64(m.cfg.RegionSize))
	case ulog.TypeInSync, ulog.TypeIsClean:
		r, ok := region()
		if !ok {
			return fakekernel.EINVAL, nil
		}
		if t == ulog.TypeInSync {
			return 0, u64(uint64(b2i(m.sync[r])))
		}
		return 0, u64(uint64(b2i(m.clean[r])))
	case ulog.TypeIsRemoteRecovering:
		if _, ok := region(); !ok {
			return fakekernel.EINVAL, nil
		}
		if m.halted {
			return 0, pair(0, m.n())
		}
		hint := m.cursor
		for r := range m.recovering {
			hint = min(hint, r)
		}
		return 0, pair(0, hint)
	case ulog.TypeMarkRegion, ulog.TypeClearRegion, ulog.TypeFlush:
		if t == ulog.TypeFlush && len(data) == 0 {
			return 0, nil
		}
		rs, ok := list()
		if !ok {
			return fakekernel.EINVAL, nil
		}
		for _, r := range rs {
			m.clean[r] = t == ulog.TypeClearRegion
		}
		return 0, nil
	case ulog.TypeGetResyncWork:
		if m.halted {
			return 0, pair(0, 0)
		}
		lowest, any := uint64(0), false
		for r := range m.recovering {
			if !any || r < lowest {
				lowest, any = r, true
			}
		}
		if any {
			return 0, pair(1, lowest)
		}
		for ; m.cursor < m.n(); m.cursor++ {
			if !m.sync[m.cursor] {
				r := m.cursor
				m.cursor++
				m.recovering[r] = true
				return 0, pair(1, r)
			}
		}
		return 0, pair(0, 0)
	case ulog.TypeSetRegionSync:
		if len(data) != 16 {
			return fakekernel.EINVAL, nil
		}
		r := binary.NativeEndian.Uint64(data)
		if r >= m.n() {
			return fakekernel.EINVAL, nil
		}
		delete(m.recovering, r)
		m.sync[r] = binary.NativeEndian.Uint64(data[8:]) != 0
		return 0, nil
	case ulog.TypeGetSyncCount:
		return 0, u64(m.syncCount())
	case ulog.TypePresuspend:
		m.halted = true
		return 0, nil
	case ulog.TypePostsuspend:
		m.halted = true
		m.running = false
		return 0, nil
	case ulog.TypeResume:
		if m.running {
			return 0, nil
		}
		if m.cfg.Disk() {
			// A fresh device has no log: every region out of sync (in
			// sync for nosync). Later, everything was flushed at
			// postsuspend: the disk holds the clean bits, which become the
			// sync bits.
			if m.fresh {
				for i := range m.clean {
					m.clean[i] = m.cfg.Sync == header.SyncNone
				}
				m.fresh = false
			}
			copy(m.sync, m.clean)
			m.recovering = map[uint64]bool{}
		}
		m.cursor, m.halted, m.running = 0, false, true
		return 0, nil
	case ulog.TypeStatusInfo:
		if m.cfg.Disk() {
			return 0, []byte(fmt.Sprintf("3 %s %s A\x00", m.cfg.Type, m.cfg.Device))
		}
		return 0, []byte("1 " + m.cfg.Type + "\x00")
	}
	return fakekernel.EINVAL, nil
}

// TestReplayKernelTrace replays every request of kernel-trace.txt, in
// order, through the daemon, and checks each answer against the model: the
// answers a correct log gives, not the ones the tracing daemon gave.
func TestReplayKernelTrace(t *testing.T) {
	entries := ktrace.Load(t)
	d := newDaemon(t)
	k := newKernel(t, d)
	dev := logFile(t, 4<<20)
	type key struct {
		uuid string
		luid uint64
	}
	models := map[key]*model{}
	var counts [ulog.MaxRequestType + 1]int
	replayed := 0
	for i := range entries {
		e := &entries[i]
		if e.Kind != ktrace.KindRequest {
			continue
		}
		req, err := e.Request()
		if err != nil {
			t.Fatalf("line %d: %v", e.Line, err)
		}
		data := req.Data
		if req.Type() == ulog.TypeCtr {
			// The traced mirror's log device was /dev/loop2 in the guest.
			data = []byte(strings.ReplaceAll(string(data), "/dev/loop2", dev))
		}
		r := k.request(req.Type(), e.UUID, e.LUID, data)
		r.RawType, r.Version = req.RawType, req.Version
		k.send(r)
		got := k.finish(r)
		replayed++
		counts[req.Type()]++
		kk := key{e.UUID, e.LUID}
		where := fmt.Sprintf("line %d (%s seq %d, %s)", e.Line, req.Type(), e.Seq, e.Section)
		switch req.Type() {
		case ulog.TypeCtr:
			if got.err != 0 {
				t.Fatalf("%s: CTR failed: %d", where, got.err)
			}
			s, _ := ulog.CtrString(data)
			cfg, err := engine.ParseCtr(s)
			if err != nil {
				t.Fatal(err)
			}
			if models[kk] == nil {
				models[kk] = newModel(cfg)
			}
			// The log device is a regular file: no device in the reply
			// (the kernel could not dm_get_device a path to a file).
			if got.err == 0 && len(got.data) > 0 {
				wantData := ""
				t.Fatalf("%s: CTR reply %q, want %q", where, got.data, wantData)
			}
			continue
		case ulog.TypeDtr:
			if got.err != 0 {
				t.Fatalf("%s: DTR failed: %d", where, got.err)
			}
			delete(models, kk)
			continue
		}
		m := models[kk]
		if m == nil {
			t.Fatalf("%s: request for a log the trace never constructed", where)
		}
		wantErr, wantData := m.answer(req.Type(), data)
		if got.err != wantErr || !bytes.Equal(got.data, wantData) {
			t.Fatalf("%s: got error %d data % x; a correct log answers error %d data % x", where, got.err, got.data, wantErr, wantData)
		}
	}
	if replayed < 400 {
		t.Fatalf("replayed %d requests; the trace keeps 441", replayed)
	}
	for typ, n := range counts {
		if n > 0 {
			t.Logf("%-22s %d", ulog.RequestType(typ), n)
		}
	}
	if d.InUse() != 0 {
		t.Fatalf("%d logs left after the trace removed every mirror", d.InUse())
	}
}
