package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/internal/testutil/vmharness"
)

func TestParseMirrorStatus(t *testing.T) {
	for _, tc := range []struct {
		line  string
		want  MirrorStatus
		ratio string
	}{
		// docs/vm.md §3 and docs/protocol.md §5.2, as the 6.1 kernel prints them.
		{"0 131072 mirror 2 7:0 7:1 128/128 1 AA 1 core",
			MirrorStatus{0, 131072, []string{"7:0", "7:1"}, 128, 128, "AA", []string{"core"}}, "128/128"},
		{"0 131072 mirror 2 7:0 253:0 125/128 1 AA 3 disk 7:2 A",
			MirrorStatus{0, 131072, []string{"7:0", "253:0"}, 125, 128, "AA", []string{"disk", "7:2", "A"}}, "125/128"},
		{"0 2097152 mirror 3 253:3 253:4 253:5 0/2048 1 ADS 3 clustered-disk 253:2 D",
			MirrorStatus{0, 2097152, []string{"253:3", "253:4", "253:5"}, 0, 2048, "ADS", []string{"clustered-disk", "253:2", "D"}}, "0/2048"},
		{"0 2097152 mirror 2 253:3 253:4 0/2048 1 AA userspace 1 COM_FAILURE",
			MirrorStatus{0, 2097152, []string{"253:3", "253:4"}, 0, 2048, "AA", []string{"userspace", "1", "COM_FAILURE"}}, "0/2048"},
	} {
		got, err := ParseMirrorStatus(tc.line)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) || got.Ratio() != tc.ratio {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
	for _, bad := range []string{
		"",
		"0 131072 linear 7:0 0",
		"0 131072 mirror",
		"0 131072 mirror 2 7:0 7:1",
		"0 131072 mirror 2 7:0 7:1 128-128 1 AA 1 core",
		"0 131072 mirror 2 7:0 7:1 x/128 1 AA 1 core",
		"0 131072 mirror 2 7:0 7:1 128/128 2 AA 1 core",
		"x 131072 mirror 2 7:0 7:1 128/128 1 AA 1 core",
		"0 131072 mirror 99 7:0 7:1 128/128 1 AA 1 core",
	} {
		if _, err := ParseMirrorStatus(bad); err == nil {
			t.Errorf("ParseMirrorStatus(%q) accepted it", bad)
		}
	}
}

func TestParseProcNetNetlink(t *testing.T) {
	const sample = `sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
0000000000000000 0   1          00000550 0        0        0     2        0        15
0000000000000000 11  312        00000040 0        0        0     2        0        2201
0000000000000000 11  0          00000000 0        0        0     2        0        8
0000000000000000 11  400        00000007 2304     0        0     2        17       2300
0000000000000000 15  312        00000040 0        0        0     2        0        2202
`
	socks, err := ParseProcNetNetlink([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 5 || socks[1] != (NetlinkSocket{Protocol: 11, PortID: 312, Groups: 0x40, Inode: 2201}) {
		t.Fatalf("%+v", socks)
	}
	if socks[3].Rmem != 2304 || socks[3].Drops != 17 || socks[3].Inode != 2300 {
		t.Errorf("Rmem/Drops: %+v", socks[3])
	}
	// Group 7 is bit 6 (0x40). A socket bound with nl_groups=0x7 is in
	// groups 1-3, not 7 (docs/vm.md §6 pitfall 3); protocol 15 is not the connector.
	if got := ConnectorListeners(socks, cnIdxDM); !reflect.DeepEqual(got, []uint32{312}) {
		t.Errorf("listeners %v, want [312]", got)
	}
	if got := ConnectorListeners(socks, 0); got != nil {
		t.Errorf("group 0: %v", got)
	}
	if _, err := ParseProcNetNetlink([]byte("sk Eth Pid Groups\nzz yy xx ww\n")); err == nil {
		t.Error("a bad row was accepted")
	}
	// The host's own table parses too (no listener expected there).
	if b, err := os.ReadFile("/proc/net/netlink"); err == nil {
		if _, err := ParseProcNetNetlink(b); err != nil {
			t.Errorf("this host's /proc/net/netlink: %v", err)
		}
	}
}

func TestParseProcNetConnector(t *testing.T) {
	got := ParseProcNetConnector([]byte("Name            ID\ncn_proc         1:1\ndmlogusr        7:1\n\n"))
	if !reflect.DeepEqual(got, map[string]string{"1:1": "cn_proc", "7:1": "dmlogusr"}) {
		t.Errorf("got %v", got)
	}
}

func TestLogBufSize(t *testing.T) {
	for _, tc := range []struct {
		regions uint64
		lbs     int
		want    int
	}{
		// docs/disk-format.md §2 worked examples
		{2048, 512, 1536},
		{4194304, 512, 525312},
		{16, 512, 1536},
		// the golden images
		{128, 512, 1536},
		{100, 512, 1536},
		{128, 4096, 4096},
		{65536, 512, 9216},
		{100000, 512, 13824},
		// edges
		{0, 512, 1024},
		{1, 512, 1536},
		{3968, 512, 1536}, // 1024 + 496 = 1520
		{4096, 512, 1536}, // 1024 + 512: exactly three sectors
		{4097, 512, 2048}, // 4160 bits: 1024 + 520 = 1544
	} {
		if got := LogBufSize(tc.regions, tc.lbs); got != tc.want {
			t.Errorf("LogBufSize(%d, %d) = %d, want %d", tc.regions, tc.lbs, got, tc.want)
		}
	}
}

func TestBitRuns(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{nil, "(none)"},
		{[]byte{0xff}, "[0,8)=1"},
		{[]byte{0x00, 0x00}, "[0,16)=0"},
		{[]byte{0xdf, 0xff, 0x0f}, "[0,5)=1 [5,6)=0 [6,20)=1 [20,24)=0"},
		{[]byte{0x01, 0x80}, "[0,1)=1 [1,15)=0 [15,16)=1"},
	} {
		if got := BitRuns(tc.b); got != tc.want {
			t.Errorf("BitRuns(%x) = %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestDescribeLogImage(t *testing.T) {
	img := make([]byte, 1536)
	copy(img, []byte{0x72, 0x52, 0x69, 0x4d, 2, 0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0})
	for i := 0; i < 16; i++ {
		img[1024+i] = 0xff
	}
	want := WantLogImage(128, "[0,128)=1 [128,4096)=0")
	if got := DescribeLogImage(img); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	img[500] = 1
	if got := DescribeLogImage(img); !strings.Contains(got, "pad=nonzero") {
		t.Errorf("nonzero padding not reported: %s", got)
	}
	if got := DescribeLogImage(img[:100]); got != "short image: 100 bytes" {
		t.Errorf("short image: %s", got)
	}
}

// TestCommittedGoldens checks the images in engine/testdata/kernel against
// their sidecars with this package's independent decoder.
func TestCommittedGoldens(t *testing.T) {
	sidecars, _ := filepath.Glob(filepath.Join("..", "..", "engine", "testdata", "kernel", "*.json"))
	if len(sidecars) == 0 {
		t.Fatal("no golden images in engine/testdata/kernel (make vmgolden captures them)")
	}
	for _, sc := range sidecars {
		b, err := os.ReadFile(sc)
		if err != nil {
			t.Fatal(err)
		}
		var g vmharness.Golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		img, err := os.ReadFile(strings.TrimSuffix(sc, ".json") + ".img")
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		sum := sha256.Sum256(img)
		m, err := ParseMirrorStatus(g.Status)
		switch {
		case err != nil:
			t.Errorf("%s: status: %v", g.Name, err)
		case g.Name+".json" != filepath.Base(sc):
			t.Errorf("%s: sidecar name %q", sc, g.Name)
		case hex.EncodeToString(sum[:]) != g.SHA256:
			t.Errorf("%s: sha256 of the image does not match the sidecar", g.Name)
		case len(img) != g.BufSize || g.BufSize != LogBufSize(g.RegionCount, g.LogicalBlockSize):
			t.Errorf("%s: %d bytes, sidecar buf_size %d, computed %d", g.Name, len(img), g.BufSize, LogBufSize(g.RegionCount, g.LogicalBlockSize))
		case g.RegionCount != (g.TargetSectors+g.RegionSize-1)/g.RegionSize || m.Regions != g.RegionCount || m.InSync != g.SyncCount:
			t.Errorf("%s: region count %d, target %d / %d, status %s, sync_count %d", g.Name, g.RegionCount, g.TargetSectors, g.RegionSize, m.Ratio(), g.SyncCount)
		case !strings.HasPrefix(DescribeLogImage(img), WantLogImage(g.RegionCount, "")):
			t.Errorf("%s: header %s, want nr_regions=%d and zero padding", g.Name, DescribeLogImage(img), g.RegionCount)
		}
	}
}

func TestParseModinfo(t *testing.T) {
	sec := []byte("license=GPL\x00description=device-mapper mirror target\x00depends=dm-region-hash,dm-mod,dm-log\x00\x00alias=x\x00alias=y\x00bogus\x00=novalue\x00")
	m := ParseModinfo(sec)
	if got := m["depends"]; !reflect.DeepEqual(got, []string{"dm-region-hash,dm-mod,dm-log"}) {
		t.Errorf("depends %q", got)
	}
	if got := m["alias"]; !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("alias %q", got)
	}
	if _, ok := m[""]; ok {
		t.Error("an empty key was kept")
	}
	if ModuleName("dm-mod.ko") != "dm_mod" || ModuleName("virtio_pci") != "virtio_pci" {
		t.Error("ModuleName")
	}
}

func TestLoadOrder(t *testing.T) {
	// The 6.1 dependency graph of docs/vm.md §1, plus a built-in module.
	graph := map[string][]string{
		"dm-mod": nil, "dm-log": {"dm-mod"}, "dm-region-hash": {"dm-log"},
		"dm-mirror": {"dm-region-hash", "dm-mod", "dm-log"}, "dm-log-userspace": {"dm-log", "dm-mod"},
		"virtio_blk": {"virtio", "virtio_ring"}, "virtio": nil, "virtio_ring": nil,
		"loop": {"builtin_thing"},
	}
	deps := func(name string) ([]string, bool, error) {
		if name == "builtin_thing" {
			return nil, false, nil
		}
		d, ok := graph[name]
		if !ok {
			return nil, false, errors.New("no module " + name)
		}
		return d, true, nil
	}
	got, err := LoadOrder([]string{"virtio_blk", "dm-mirror", "dm-log-userspace", "dm_mod", "loop"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "virtio_blk", "dm-mod", "dm-log", "dm-region-hash", "dm-mirror", "dm-log-userspace", "loop"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order\n got %v\nwant %v", got, want)
	}
	if _, err := LoadOrder([]string{"nope"}, deps); err == nil {
		t.Error("a missing module was accepted")
	}
	cyclic := func(name string) ([]string, bool, error) {
		return map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}[name], true, nil
	}
	if _, err := LoadOrder([]string{"a"}, cyclic); err == nil || !strings.Contains(err.Error(), "cycle: a -> b -> c -> a") {
		t.Errorf("cycle: %v", err)
	}
}

// Ensure that the bench options are read from the command line as the
// guest's bench scenario reads them: the first word with the key, and for
// numbers the first one in range.
func TestCmdlineParams(t *testing.T) {
	line := "console=ttyS0 dlog.benchops=write_4K dlog.benchrounds=0 dlog.benchrounds=21 dlog.benchrounds=5 dlog.benchrounds=7 dlog.benchops=read_4K dlog.x"
	if v, ok := cmdlineParam(line, "dlog.benchops"); !ok || v != "write_4K" {
		t.Errorf("dlog.benchops = %q, %v; want write_4K, true", v, ok)
	}
	if v, ok := cmdlineParam(line, "dlog.benchconfigs"); ok {
		t.Errorf("dlog.benchconfigs = %q, true; want none", v)
	}
	if v, ok := cmdlineParam(line, "dlog.x"); ok {
		t.Errorf("dlog.x (no '=') = %q, true; want none", v)
	}
	if n := cmdlineInt(line, "dlog.benchrounds", 20, 3); n != 5 {
		t.Errorf("dlog.benchrounds = %d, want 5 (0 and 21 out of 1..20)", n)
	}
	if n := cmdlineInt(line, "dlog.benchprofile", 60, 0); n != 0 {
		t.Errorf("dlog.benchprofile = %d, want the default 0", n)
	}
	if n := cmdlineInt("dlog.benchprofile=x dlog.benchprofile=60", "dlog.benchprofile", 60, 0); n != 60 {
		t.Errorf("dlog.benchprofile = %d, want 60", n)
	}
}
