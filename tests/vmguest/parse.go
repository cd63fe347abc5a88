package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// MirrorStatus is a parsed `dmsetup status` line of a mirror target:
//
//	<start> <len> mirror <#legs> <leg>... <in_sync>/<regions> 1 <health> <#log> <log args>...
type MirrorStatus struct {
	Start, Length uint64
	Legs          []string
	InSync        uint64
	Regions       uint64
	Health        string
	Log           []string // the log's INFO fields after their count
}

// Ratio is "<in_sync>/<regions>".
func (m MirrorStatus) Ratio() string { return fmt.Sprintf("%d/%d", m.InSync, m.Regions) }

// ParseMirrorStatus parses one status line (one target).
func ParseMirrorStatus(line string) (MirrorStatus, error) {
	var m MirrorStatus
	f := strings.Fields(line)
	bad := func(why string) (MirrorStatus, error) {
		return MirrorStatus{}, fmt.Errorf("mirror status %q: %s", line, why)
	}
	if len(f) < 4 || f[2] != "mirror" {
		return bad("not a mirror target")
	}
	var err error
	if m.Start, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return bad("bad start")
	}
	if m.Length, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return bad("bad length")
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 1 || n > 32 || len(f) < 4+n+3 {
		return bad("bad leg count")
	}
	m.Legs = f[4 : 4+n]
	i := 4 + n
	a, b, ok := strings.Cut(f[i], "/")
	if !ok {
		return bad("no <in_sync>/<regions>")
	}
	if m.InSync, err = strconv.ParseUint(a, 10, 64); err != nil {
		return bad("bad in-sync count")
	}
	if m.Regions, err = strconv.ParseUint(b, 10, 64); err != nil {
		return bad("bad region count")
	}
	if f[i+1] != "1" {
		return bad("health count is not 1")
	}
	m.Health = f[i+2]
	i += 3
	if i < len(f) {
		k, err := strconv.Atoi(f[i])
		if err != nil || k < 0 || i+1+k > len(f) {
			// userspace logs print the daemon's string verbatim; keep it whole
			m.Log = f[i:]
		} else {
			m.Log = f[i+1 : i+1+k]
		}
	}
	return m, nil
}

// NetlinkSocket is one row of /proc/net/netlink.
type NetlinkSocket struct {
	Protocol int
	PortID   uint32
	Groups   uint32 // the first 32 multicast groups, bit g-1 for group g
	Rmem     uint64 // bytes in the receive queue
	Drops    uint64 // messages dropped because the receive queue was full
	Inode    uint64 // the socket's inode, as in /proc/PID/fd links "socket:[N]"
}

// ParseProcNetNetlink parses /proc/net/netlink:
//
//	sk               Eth Pid        Groups   Rmem ...
//	ffff8880042b5000 11  312        00000040 0    ...
func ParseProcNetNetlink(b []byte) ([]NetlinkSocket, error) {
	var out []NetlinkSocket
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "sk" {
				continue
			}
		}
		if len(f) < 4 {
			continue
		}
		proto, err1 := strconv.Atoi(f[1])
		pid, err2 := strconv.ParseUint(f[2], 10, 32)
		groups, err3 := strconv.ParseUint(f[3], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("/proc/net/netlink: bad row %q", sc.Text())
		}
		ns := NetlinkSocket{Protocol: proto, PortID: uint32(pid), Groups: uint32(groups)}
		if len(f) >= 9 { // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
			ns.Rmem, _ = strconv.ParseUint(f[4], 10, 64)
			ns.Drops, _ = strconv.ParseUint(f[8], 10, 64)
		}
		if len(f) >= 10 {
			ns.Inode, _ = strconv.ParseUint(f[9], 10, 64)
		}
		out = append(out, ns)
	}
	return out, sc.Err()
}

// ParseProcNetConnector parses /proc/net/connector, the connector callbacks
// registered inside the kernel ("Name ID" rows, e.g. "cn_proc 1:1"), into
// names by "idx:val". dm-log-userspace registers one for 7:1 (CN_IDX_DM,
// CN_VAL_DM_USERSPACE_LOG) to receive the daemon's replies. Userspace
// listeners are not listed here: see ParseProcNetNetlink.
func ParseProcNetConnector(b []byte) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] != "Name" && strings.Contains(f[1], ":") {
			m[f[1]] = f[0]
		}
	}
	return m
}

// Connector constants: NETLINK_CONNECTOR and the device-mapper's group CN_IDX_DM.
const (
	netlinkConnector = 11
	cnIdxDM          = 7
)

// ConnectorListeners returns the port ids of connector sockets subscribed
// to group: the sockets the kernel's dm-log-userspace can reach.
func ConnectorListeners(socks []NetlinkSocket, group int) []uint32 {
	var ids []uint32
	for _, s := range socks {
		if s.Protocol == netlinkConnector && group >= 1 && group <= 32 && s.Groups&(1<<(group-1)) != 0 {
			ids = append(ids, s.PortID)
		}
	}
	return ids
}

// The kernel disk log image (docs/disk-format.md), decoded here independently of
// the header package so the golden checks do not trust the code they pin.
const (
	mirrorMagic   = 0x4D695272
	bitmapOffset  = 1024
	mirrorVersion = 2
)

// LogBufSize is the kernel's buf_size: the header sector pair plus the
// bitset (region_count rounded up to 64 bits), rounded up to the logical
// block size.
func LogBufSize(regions uint64, lbs int) int {
	bitset := (regions + 63) / 64 * 8
	n := uint64(bitmapOffset) + bitset
	l := uint64(lbs)
	return int((n + l - 1) / l * l)
}

// DescribeLogImage summarises an image the way the golden checks compare
// it: the header, whether bytes 16..1023 are zero, and the clean bits of
// the whole bitmap area [1024, len(img)) as runs,
// e.g. "magic=0x4d695272 version=2 nr_regions=128 pad=zero bits=[0,128)=1 [128,4096)=0".
func DescribeLogImage(img []byte) string {
	if len(img) < bitmapOffset {
		return fmt.Sprintf("short image: %d bytes", len(img))
	}
	magic := binary.LittleEndian.Uint32(img[0:4])
	version := binary.LittleEndian.Uint32(img[4:8])
	nr := binary.LittleEndian.Uint64(img[8:16])
	pad := "zero"
	for _, c := range img[16:bitmapOffset] {
		if c != 0 {
			pad = "nonzero"
			break
		}
	}
	return fmt.Sprintf("magic=%#x version=%d nr_regions=%d pad=%s bits=%s",
		magic, version, nr, pad, BitRuns(img[bitmapOffset:]))
}

// WantLogImage is the DescribeLogImage string of a kernel-written image with
// the given region count and bit runs.
func WantLogImage(nrRegions uint64, runs string) string {
	return fmt.Sprintf("magic=%#x version=%d nr_regions=%d pad=zero bits=%s", mirrorMagic, mirrorVersion, nrRegions, runs)
}

// BitRuns describes the bits of b (bit i is bit i%8 of byte i/8, as the
// kernel's test_bit_le numbers them) as half-open runs: "[0,5)=1 [5,6)=0".
func BitRuns(b []byte) string {
	n := len(b) * 8
	if n == 0 {
		return "(none)"
	}
	bit := func(i int) int { return int(b[i/8]>>(i%8)) & 1 }
	var parts []string
	start, cur := 0, bit(0)
	for i := 1; i <= n; i++ {
		if i == n || bit(i) != cur {
			parts = append(parts, fmt.Sprintf("[%d,%d)=%d", start, i, cur))
			if i < n {
				start, cur = i, bit(i)
			}
		}
	}
	return strings.Join(parts, " ")
}

// ParseModinfo splits a module's .modinfo section (NUL-separated key=value
// strings) into its values by key.
func ParseModinfo(sec []byte) map[string][]string {
	m := make(map[string][]string)
	for _, kv := range bytes.Split(sec, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok || len(k) == 0 {
			continue
		}
		m[string(k)] = append(m[string(k)], string(v))
	}
	return m
}

// ModuleName normalises a module or file name: "dm-mod.ko" and "dm_mod"
// are the same module to the kernel.
func ModuleName(s string) string {
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// LoadOrder returns want and everything it depends on, each module after
// its dependencies and listed once. deps returns a module's direct
// dependencies, or ok=false when the module is not available as a file
// (built in, or missing: the caller decides which).
func LoadOrder(want []string, deps func(name string) (d []string, ok bool, err error)) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[string]int)
	var order []string
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		key := ModuleName(name)
		switch state[key] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(path, " -> "), name)
		}
		state[key] = visiting
		d, ok, err := deps(name)
		if err != nil {
			return err
		}
		if ok {
			for _, dep := range d {
				if err := visit(dep, append(path, name)); err != nil {
					return err
				}
			}
			order = append(order, name)
		}
		state[key] = done
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// cmdlineParam is the value of the first key=value word of a kernel command
// line (/proc/cmdline) whose key is key; ok is false when there is none.
func cmdlineParam(cmdline, key string) (v string, ok bool) {
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// cmdlineInt is the first key=N word of cmdline with 1 <= N <= max, or def
// when there is none.
func cmdlineInt(cmdline, key string, max, def int) int {
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, key+"="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= max {
				return n
			}
		}
	}
	return def
}
