package transport

import (
	"strings"
	"testing"
)

// Lines of /proc/self/status as Linux 6.x prints them.
const statusRoot = `Name:	dlogd
Umask:	0022
State:	S (sleeping)
Uid:	0	0	0	0
CapInh:	0000000000000000
CapPrm:	000001ffffffffff
CapEff:	000001ffffffffff
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
`

func TestParseCapEff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   string
		caps     uint64
		sysAdmin bool
		err      string
	}{
		{name: "root", status: statusRoot, caps: 0x1ffffffffff, sysAdmin: true},
		// setpriv --bounding-set=-sys_admin as root: bit 21 clear.
		{name: "root-without-sys_admin", status: strings.Replace(statusRoot, "CapEff:\t000001ffffffffff", "CapEff:\t000001ffffdfffff", 1),
			caps: 0x1ffffdfffff, sysAdmin: false},
		// A container root with a reduced set (this VM: CAP_SYS_RESOURCE dropped).
		{name: "container", status: "CapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n", caps: 0x1fffeffffff, sysAdmin: true},
		{name: "only-sys_admin", status: "CapEff:\t0000000000200000\n", caps: 1 << 21, sysAdmin: true},
		{name: "unprivileged", status: "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n", caps: 0, sysAdmin: false},
		{name: "spaces", status: "CapEff:   0000000000200000  \n", caps: 1 << 21, sysAdmin: true},
		// CapPrm has the bit, CapEff does not: the effective set counts.
		{name: "permitted-only", status: "CapPrm:\t0000000000200000\nCapEff:\t0000000000000000\n", caps: 0, sysAdmin: false},
		{name: "missing", status: "Name:\tx\nCapPrm:\t0000000000200000\n", err: "no CapEff line"},
		{name: "garbage", status: "CapEff:\tzz\n", err: "CapEff"},
		{name: "overflow", status: "CapEff:\t1ffffffffffffffff\n", err: "CapEff"},
		{name: "empty", status: "", err: "no CapEff line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps, err := parseCapEff([]byte(tc.status))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseCapEff: %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if caps != tc.caps {
				t.Errorf("caps %#x, want %#x", caps, tc.caps)
			}
			if got := hasCap(caps, capSysAdmin); got != tc.sysAdmin {
				t.Errorf("CAP_SYS_ADMIN %v, want %v", got, tc.sysAdmin)
			}
		})
	}
	if hasCap(^uint64(0), 64) {
		t.Error("hasCap of bit 64")
	}
}
