//go:build linux

// Command bareresponder is the floor for any userspace dirty log, written
// for make vmbench: it answers the kernel's dm-log-userspace requests on
// the netlink connector from memory, on one thread, with no disk I/O, no
// durability and nothing but clustered-core semantics (resync hand-out,
// in_sync, mark/clear, sync count, status). Whatever a real daemon such as
// dlogd spends beyond this is its own cost; what this one spends is the
// kernel round trip.
//
//	bareresponder [--pidfile PATH] [--netpoll]
//
// By default it blocks in recvfrom(2) on one thread: nothing between the
// kernel's datagram and the answer. --netpoll receives the way a Go
// server on the runtime's poller does (a non-blocking socket and
// syscall.RawConn.Read: recvmsg until EAGAIN, park, epoll, wake), to
// measure what that costs per request.
//
// Like dlogd, it runs with two Ps where the runtime would choose one (one
// CPU online), unless GOMAXPROCS is set: with one P, every system call
// longer than a sysmon tick (each reply is) loses its P to another thread,
// which costs a thread wake-up per request (docs/performance.md). A floor
// that paid it would flatter any daemon that does not. GOMAXPROCS=1 gives
// the old floor.
//
// SIGUSR1 writes per-log request counts to standard error in the same
// form as dlogd's state dump; SIGTERM exits.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Request types (include/uapi/linux/dm-log-userspace.h).
const (
	tCtr = iota + 1
	tDtr
	tPresuspend
	tPostsuspend
	tResume
	tGetRegionSize
	tIsClean
	tInSync
	tFlush
	tMarkRegion
	tClearRegion
	tGetResyncWork
	tSetRegionSync
	tGetSyncCount
	tStatusInfo
	tStatusTable
	tIsRemoteRecovering
	nTypes
)

var typeNames = [nTypes]string{"", "CTR", "DTR", "PRESUSPEND", "POSTSUSPEND", "RESUME", "GET_REGION_SIZE", "IS_CLEAN", "IN_SYNC",
	"FLUSH", "MARK_REGION", "CLEAR_REGION", "GET_RESYNC_WORK", "SET_REGION_SYNC", "GET_SYNC_COUNT", "STATUS_INFO", "STATUS_TABLE", "IS_REMOTE_RECOVERING"}

const (
	nlHdr      = 16
	cnHdr      = 20
	ulHdr      = 160
	cnIdxDM    = 7
	cnValDM    = 1
	nlmsgDone  = 3
	einval     = 22
	reqPayload = nlHdr + cnHdr + ulHdr
)

// ulog is one clustered-core log, all in memory.
type ulog struct {
	uuid       string
	ctr        string
	regionSize uint64
	n          uint64
	clean      []bool
	sync       []bool
	syncCount  uint64
	cursor     uint64
	recovering int64 // -1: none
	requests   [nTypes]uint64
}

type responder struct {
	mu   sync.Mutex
	logs map[uint64]*ulog // by luid
	fd   int
	pid  uint32
	out  []byte
}

func main() {
	pidfile := flag.String("pidfile", "", "write the pid here once listening")
	netpoll := flag.Bool("netpoll", false, "receive through the Go runtime's poller instead of a blocking recvfrom")
	flag.Parse()
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_CONNECTOR)
	if err != nil {
		log.Error("socket", "err", err)
		os.Exit(1)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		log.Error("bind", "err", err)
		os.Exit(1)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, cnIdxDM); err != nil {
		log.Error("join group 7", "err", err)
		os.Exit(1)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	if *pidfile != "" {
		_ = os.WriteFile(*pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	r := &responder{logs: map[uint64]*ulog{}, fd: fd, pid: uint32(os.Getpid()), out: make([]byte, 0, 1024)}
	log.Info("bareresponder serving", "pid", os.Getpid())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			r.dump(log)
			if sig != syscall.SIGUSR1 {
				os.Exit(0)
			}
		}
	}()

	buf := make([]byte, 64<<10)
	recv := func() (int, error) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		return n, err
	}
	if *netpoll {
		if err := unix.SetNonblock(fd, true); err != nil {
			log.Error("nonblock", "err", err)
			os.Exit(1)
		}
		f := os.NewFile(uintptr(fd), "netlink")
		rc, err := f.SyscallConn()
		if err != nil {
			log.Error("syscall conn", "err", err)
			os.Exit(1)
		}
		recv = func() (int, error) {
			var n int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
				return rerr != unix.EAGAIN
			})
			if err != nil {
				return 0, err
			}
			return n, rerr
		}
		log.Info("receiving through the Go poller")
	}
	for {
		n, err := recv()
		if err != nil {
			if err == unix.EINTR || err == unix.ENOBUFS {
				continue
			}
			log.Error("recvfrom", "err", err)
			os.Exit(1)
		}
		r.handle(buf[:n])
	}
}

func (r *responder) handle(b []byte) {
	if len(b) < reqPayload {
		return
	}
	cn := b[nlHdr:]
	if binary.LittleEndian.Uint32(cn[0:]) != cnIdxDM || binary.LittleEndian.Uint32(cn[4:]) != cnValDM {
		return
	}
	req := b[nlHdr+cnHdr:]
	dsize := int(binary.LittleEndian.Uint32(req[156:]))
	if ulHdr+dsize > len(req) {
		return
	}
	data := req[ulHdr : ulHdr+dsize]
	luid := binary.LittleEndian.Uint64(req[0:])
	typ := binary.LittleEndian.Uint32(req[152:]) & 0xff

	r.mu.Lock()
	payload, errno := r.serve(luid, req, typ, data)
	r.mu.Unlock()

	out := r.out[:0]
	total := nlHdr + cnHdr + ulHdr + len(payload)
	out = binary.LittleEndian.AppendUint32(out, uint32(total))
	out = binary.LittleEndian.AppendUint16(out, nlmsgDone)
	out = binary.LittleEndian.AppendUint16(out, 0)
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint32(out, r.pid)
	out = append(out, cn[:12]...) // idx, val, seq
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(ulHdr+len(payload)))
	out = binary.LittleEndian.AppendUint16(out, 0)
	out = append(out, req[:ulHdr]...)
	h := out[nlHdr+cnHdr:]
	binary.LittleEndian.PutUint32(h[144:], uint32(errno))
	binary.LittleEndian.PutUint32(h[156:], uint32(len(payload)))
	out = append(out, payload...)
	r.out = out
	_ = unix.Sendto(r.fd, out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func u64(b []byte) uint64     { return binary.LittleEndian.Uint64(b) }
func put(v uint64) []byte     { return binary.LittleEndian.AppendUint64(nil, v) }
func pair(a, b uint64) []byte { return binary.LittleEndian.AppendUint64(put(a), b) }
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// serve answers one request; it returns the reply payload and a negative
// errno.
func (r *responder) serve(luid uint64, req []byte, typ uint32, data []byte) ([]byte, int32) {
	l := r.logs[luid]
	if typ == tCtr {
		if l != nil {
			return nil, 0 // the kernel's reconnect: keep the state
		}
		uuid := string(req[8 : 8+129])
		if i := strings.IndexByte(uuid, 0); i >= 0 {
			uuid = uuid[:i]
		}
		nl, err := newLog(uuid, strings.TrimRight(string(data), "\x00"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bareresponder: CTR %q: %v\n", data, err)
			return nil, -einval
		}
		nl.requests[tCtr]++
		r.logs[luid] = nl
		return nil, 0
	}
	if l == nil {
		return nil, -int32(unix.ESRCH) // unknown log: the kernel reconnects
	}
	if typ < nTypes {
		l.requests[typ]++
	}
	region := func() (uint64, bool) {
		if len(data) < 8 {
			return 0, false
		}
		v := u64(data)
		return v, v < l.n
	}
	switch typ {
	case tDtr:
		delete(r.logs, luid)
	case tPresuspend, tPostsuspend:
	case tResume:
		l.cursor, l.recovering = 0, -1
	case tGetRegionSize:
		return put(l.regionSize), 0
	case tIsClean, tInSync:
		v, ok := region()
		if !ok {
			return nil, -einval
		}
		if typ == tIsClean {
			return put(b2u(l.clean[v])), 0
		}
		return put(b2u(l.sync[v])), 0
	case tIsRemoteRecovering:
		return pair(0, l.n), 0
	case tFlush, tMarkRegion, tClearRegion:
		for i := 0; i+8 <= len(data); i += 8 {
			v := u64(data[i:])
			if v < l.n {
				l.clean[v] = typ == tClearRegion
			}
		}
	case tGetResyncWork:
		if l.recovering >= 0 {
			return pair(1, uint64(l.recovering)), 0
		}
		for ; l.cursor < l.n; l.cursor++ {
			if !l.sync[l.cursor] {
				l.recovering = int64(l.cursor)
				l.cursor++
				return pair(1, uint64(l.recovering)), 0
			}
		}
		return pair(0, 0), 0
	case tSetRegionSync:
		if len(data) < 16 {
			return nil, -einval
		}
		v, in := u64(data), u64(data[8:]) != 0
		if v >= l.n {
			return nil, -einval
		}
		if int64(v) == l.recovering {
			l.recovering = -1
		}
		if in && !l.sync[v] {
			l.syncCount++
		} else if !in && l.sync[v] {
			l.syncCount--
		}
		l.sync[v] = in
	case tGetSyncCount:
		return put(l.syncCount), 0
	case tStatusInfo:
		return []byte("1 clustered-core\x00"), 0
	case tStatusTable:
		return []byte("clustered-core " + strconv.FormatUint(l.regionSize, 10) + " \x00"), 0
	default:
		return nil, -einval
	}
	return nil, 0
}

// newLog parses "<target sectors> clustered-core <region size> [sync|nosync]".
func newLog(uuid, ctr string) (*ulog, error) {
	f := strings.Fields(ctr)
	if len(f) < 3 || (f[1] != "clustered-core" && f[1] != "core") {
		return nil, fmt.Errorf("want '<sectors> clustered-core <region_size> [sync|nosync]'")
	}
	sectors, err1 := strconv.ParseUint(f[0], 10, 64)
	rs, err2 := strconv.ParseUint(f[2], 10, 32)
	if err1 != nil || err2 != nil || rs == 0 {
		return nil, fmt.Errorf("bad numbers")
	}
	n := (sectors + rs - 1) / rs
	l := &ulog{uuid: uuid, ctr: ctr, regionSize: rs, n: n, clean: make([]bool, n), sync: make([]bool, n), recovering: -1}
	for i := range l.clean {
		l.clean[i] = true
	}
	if len(f) > 3 && f[3] == "nosync" {
		for i := range l.sync {
			l.sync[i] = true
		}
		l.syncCount = n
	}
	return l, nil
}

// dump writes the state in dlogd's SIGUSR1 format, so one parser reads both.
func (r *responder) dump(log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	luids := slices.Sorted(maps.Keys(r.logs))
	log.Info("state dump", "logs", len(luids))
	for _, k := range luids {
		l := r.logs[k]
		var req []string
		for t, c := range l.requests {
			if c > 0 {
				req = append(req, fmt.Sprintf("%s=%d", typeNames[t], c))
			}
		}
		dirty := uint64(0)
		for _, c := range l.clean {
			if !c {
				dirty++
			}
		}
		log.Info("log", "uuid", l.uuid, "luid", fmt.Sprintf("%#x", k), "ctr", l.ctr, "phase", "running", "regions", l.n,
			"in_sync", l.syncCount, "dirty", dirty, "status", "1 clustered-core", "requests", strings.Join(req, " "))
	}
}
