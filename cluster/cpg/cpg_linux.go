//go:build linux && cgo && corosync

package cpg

/*
#cgo LDFLAGS: -lcpg -lquorum
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>

extern void goDeliver(cpg_handle_t, uint32_t, uint32_t, void *, size_t);
extern void goConfchg(cpg_handle_t, struct cpg_address *, size_t, struct cpg_address *, size_t, struct cpg_address *, size_t);
extern void goTotem(cpg_handle_t, uint32_t *, size_t);

static void totem_cb(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t *list) {
	goTotem(h, (uint32_t *)list, n);
}

static void deliver_cb(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len) {
	goDeliver(h, nodeid, pid, msg, len);
}

static void confchg_cb(cpg_handle_t h, const struct cpg_name *g,
	const struct cpg_address *m, size_t nm, const struct cpg_address *l, size_t nl,
	const struct cpg_address *j, size_t nj) {
	goConfchg(h, (struct cpg_address *)m, nm, (struct cpg_address *)l, nl, (struct cpg_address *)j, nj);
}

static cs_error_t dlog_cpg_init(cpg_handle_t *h) {
	cpg_model_v1_data_t md;
	memset(&md, 0, sizeof md);
	md.model = CPG_MODEL_V1;
	md.cpg_deliver_fn = deliver_cb;
	md.cpg_confchg_fn = confchg_cb;
	md.cpg_totem_confchg_fn = totem_cb;
	md.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
	return cpg_model_initialize(h, CPG_MODEL_V1, (cpg_model_data_t *)&md, NULL);
}

static cs_error_t dlog_cpg_join(cpg_handle_t h, const char *name, size_t len, int leave) {
	struct cpg_name n;
	memset(&n, 0, sizeof n);
	n.length = len;
	memcpy(n.value, name, len);
	return leave ? cpg_leave(h, &n) : cpg_join(h, &n);
}

static cs_error_t dlog_cpg_mcast(cpg_handle_t h, void *buf, size_t len) {
	struct iovec iov;
	iov.iov_base = buf;
	iov.iov_len = len;
	return cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
}

static cs_error_t dlog_quorum_init(quorum_handle_t *h) {
	quorum_callbacks_t cb;
	uint32_t type;
	memset(&cb, 0, sizeof cb);
	return quorum_initialize(h, &cb, &type);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dlog-dev/dlog/cluster"
)

// Available reports whether this build can reach corosync.
const Available = true

var errNames = map[C.cs_error_t]string{
	1: "CS_OK", 2: "CS_ERR_LIBRARY", 3: "CS_ERR_VERSION", 4: "CS_ERR_INIT", 5: "CS_ERR_TIMEOUT",
	6: "CS_ERR_TRY_AGAIN", 7: "CS_ERR_INVALID_PARAM", 8: "CS_ERR_NO_MEMORY", 9: "CS_ERR_BAD_HANDLE",
	10: "CS_ERR_BUSY", 11: "CS_ERR_ACCESS", 12: "CS_ERR_NOT_EXIST", 13: "CS_ERR_NAME_TOO_LONG",
	14: "CS_ERR_EXIST", 15: "CS_ERR_NO_SPACE", 16: "CS_ERR_INTERRUPT", 17: "CS_ERR_NAME_NOT_FOUND",
	18: "CS_ERR_NO_RESOURCES", 19: "CS_ERR_NOT_SUPPORTED", 20: "CS_ERR_BAD_OPERATION",
	21: "CS_ERR_FAILED_OPERATION", 22: "CS_ERR_MESSAGE_ERROR", 23: "CS_ERR_QUEUE_FULL",
	24: "CS_ERR_QUEUE_NOT_AVAILABLE", 25: "CS_ERR_BAD_FLAGS", 26: "CS_ERR_TOO_BIG", 27: "CS_ERR_NO_SECTIONS",
	28: "CS_ERR_CONTEXT_NOT_FOUND", 30: "CS_ERR_TOO_MANY_GROUPS", 100: "CS_ERR_SECURITY",
}

type csError struct {
	op   string
	code C.cs_error_t
}

func (e *csError) Error() string {
	name := errNames[e.code]
	if name == "" {
		name = fmt.Sprintf("cs_error %d", int(e.code))
	}
	return e.op + ": " + name
}

func cs(op string, code C.cs_error_t) error {
	if code == C.CS_OK {
		return nil
	}
	return &csError{op, code}
}

// Messenger is corosync, reached through libcpg on this node.
type Messenger struct {
	log *slog.Logger
	qmu sync.Mutex
	q   C.quorum_handle_t
	qok bool
}

// New returns the corosync transport.
func New(log *slog.Logger) *Messenger {
	if log == nil {
		log = slog.Default()
	}
	return &Messenger{log: log}
}

func (t *Messenger) Name() string { return "corosync" }

// Check connects to corosync's CPG service and disconnects.
func (t *Messenger) Check() error {
	var h C.cpg_handle_t
	if err := cs("cpg_initialize", C.dlog_cpg_init(&h)); err != nil {
		return fmt.Errorf("%w: corosync is not reachable on this node (%v): is corosync running, and is this process allowed to connect to it?", cluster.ErrUnreachable, err)
	}
	C.cpg_finalize(h)
	return nil
}

// Quorate asks votequorum whether this node's partition is quorate; an
// error (no quorum service) counts as not quorate.
func (t *Messenger) quorate() bool {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	if !t.qok {
		if err := cs("quorum_initialize", C.dlog_quorum_init(&t.q)); err != nil {
			t.log.Warn("no quorum service: treating the partition as not quorate", "err", err)
			return false
		}
		t.qok = true
	}
	var q C.int
	if err := cs("quorum_getquorate", C.quorum_getquorate(t.q, &q)); err != nil {
		C.quorum_finalize(t.q)
		t.qok = false
		return false
	}
	return q != 0
}

var (
	regMu    sync.Mutex
	registry = map[C.cpg_handle_t]*group{}
)

type group struct {
	t      *Messenger
	h      C.cpg_handle_t
	name   string
	self   cluster.MemberID
	hd     cluster.GroupHandler
	mu     sync.Mutex // serialises cpg calls that are not dispatch
	stop   chan struct{}
	done   chan struct{}
	left   chan struct{}
	closed bool

	nmu   sync.Mutex
	nodes map[uint32]bool // corosync's node membership (totem), nil until reported
}

// Join joins the named group and starts its dispatch goroutine.
func (t *Messenger) Join(name string, hd cluster.GroupHandler) (cluster.Group, error) {
	if len(name) == 0 || len(name) >= C.CPG_MAX_NAME_LENGTH {
		return nil, fmt.Errorf("cpg: group name of %d bytes (1 to %d)", len(name), C.CPG_MAX_NAME_LENGTH-1)
	}
	g := &group{t: t, name: name, hd: hd, stop: make(chan struct{}), done: make(chan struct{}), left: make(chan struct{}, 1)}
	if err := cs("cpg_initialize", C.dlog_cpg_init(&g.h)); err != nil {
		return nil, fmt.Errorf("%w: %v", cluster.ErrUnreachable, err)
	}
	var nodeid C.uint
	if err := cs("cpg_local_get", C.cpg_local_get(g.h, &nodeid)); err != nil {
		C.cpg_finalize(g.h)
		return nil, fmt.Errorf("%w: %v", cluster.ErrUnreachable, err)
	}
	g.self = cluster.MakeMemberID(uint32(nodeid), uint32(os.Getpid()))
	var fd C.int
	if err := cs("cpg_fd_get", C.cpg_fd_get(g.h, &fd)); err != nil {
		C.cpg_finalize(g.h)
		return nil, fmt.Errorf("%w: %v", cluster.ErrUnreachable, err)
	}
	regMu.Lock()
	registry[g.h] = g
	regMu.Unlock()
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var err error
	for i := 0; i < 100; i++ {
		err = cs("cpg_join", C.dlog_cpg_join(g.h, cname, C.size_t(len(name)), 0))
		var ce *csError
		if !errors.As(err, &ce) || ce.code != C.CS_ERR_TRY_AGAIN {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		g.finalize()
		return nil, fmt.Errorf("cpg: join %s: %w", name, err)
	}
	go g.dispatch(int(fd))
	return g, nil
}

func (g *group) finalize() {
	regMu.Lock()
	delete(registry, g.h)
	regMu.Unlock()
	C.cpg_finalize(g.h)
}

// dispatch polls the group's descriptor and runs its callbacks.
func (g *group) dispatch(fd int) {
	defer close(g.done)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		select {
		case <-g.stop:
			return
		default:
		}
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			g.lost(fmt.Errorf("poll: %w", err))
			return
		}
		if n <= 0 {
			continue
		}
		if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && pfd[0].Revents&unix.POLLIN == 0 {
			g.lost(errors.New("corosync closed the connection"))
			return
		}
		if err := cs("cpg_dispatch", C.cpg_dispatch(g.h, C.CS_DISPATCH_ALL)); err != nil {
			var ce *csError
			if errors.As(err, &ce) && ce.code == C.CS_ERR_TRY_AGAIN {
				continue
			}
			g.lost(err)
			return
		}
	}
}

// lost reports the loss of corosync as this member leaving the group.
func (g *group) lost(err error) {
	g.t.log.Error("lost the connection to corosync", "group", g.name, "err", err)
	g.hd.ConfigChange(nil, []cluster.MemberID{g.self}, nil)
}

func lookup(h C.cpg_handle_t) *group {
	regMu.Lock()
	defer regMu.Unlock()
	return registry[h]
}

//export goDeliver
func goDeliver(h C.cpg_handle_t, nodeid, pid C.uint32_t, msg unsafe.Pointer, n C.size_t) {
	g := lookup(h)
	if g == nil {
		return
	}
	g.hd.Deliver(cluster.MakeMemberID(uint32(nodeid), uint32(pid)), C.GoBytes(msg, C.int(n)))
}

func addrs(p *C.struct_cpg_address, n C.size_t) []cluster.MemberID {
	if n == 0 || p == nil {
		return nil
	}
	s := unsafe.Slice(p, int(n))
	out := make([]cluster.MemberID, len(s))
	for i, a := range s {
		out[i] = cluster.MakeMemberID(uint32(a.nodeid), uint32(a.pid))
	}
	return out
}

//export goConfchg
func goConfchg(h C.cpg_handle_t, m *C.struct_cpg_address, nm C.size_t, l *C.struct_cpg_address, nl C.size_t, j *C.struct_cpg_address, nj C.size_t) {
	g := lookup(h)
	if g == nil {
		return
	}
	left := addrs(l, nl)
	g.hd.ConfigChange(addrs(m, nm), left, addrs(j, nj))
	for _, id := range left {
		if id == g.self {
			select {
			case g.left <- struct{}{}:
			default:
			}
		}
	}
}

//export goTotem
func goTotem(h C.cpg_handle_t, list *C.uint32_t, n C.size_t) {
	g := lookup(h)
	if g == nil {
		return
	}
	nodes := map[uint32]bool{}
	if n > 0 && list != nil {
		for _, id := range unsafe.Slice(list, int(n)) {
			nodes[uint32(id)] = true
		}
	}
	g.nmu.Lock()
	g.nodes = nodes
	g.nmu.Unlock()
}

// NodeMember reports whether node is in corosync's node membership
// (cluster.NodeView); before corosync reported one, every node counts as
// a member.
func (g *group) NodeMember(node uint32) bool {
	g.nmu.Lock()
	defer g.nmu.Unlock()
	return g.nodes == nil || g.nodes[node]
}

func (g *group) Self() cluster.MemberID { return g.self }
func (g *group) Quorate() bool          { return g.t.quorate() }

// Multicast sends msg in agreed order, retrying while corosync's queue is
// full (CS_ERR_TRY_AGAIN) for up to 10 seconds.
func (g *group) Multicast(msg []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return cluster.ErrLeft
	}
	p := C.CBytes(msg)
	defer C.free(p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cs("cpg_mcast_joined", C.dlog_cpg_mcast(g.h, p, C.size_t(len(msg))))
		var ce *csError
		if err == nil {
			return nil
		}
		if !errors.As(err, &ce) || ce.code != C.CS_ERR_TRY_AGAIN || time.Now().After(deadline) {
			return fmt.Errorf("%w: %v", cluster.ErrLeft, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// Leave leaves the group, waits (up to 5 s) for corosync to confirm it,
// stops dispatching and disconnects.
func (g *group) Leave() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	cname := C.CString(g.name)
	err := cs("cpg_leave", C.dlog_cpg_join(g.h, cname, C.size_t(len(g.name)), 1))
	C.free(unsafe.Pointer(cname))
	g.mu.Unlock()
	if err == nil {
		select {
		case <-g.left:
		case <-g.done:
		case <-time.After(5 * time.Second):
		}
	}
	close(g.stop)
	<-g.done
	g.finalize()
	return err
}
