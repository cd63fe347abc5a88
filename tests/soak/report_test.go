//go:build linux

package main

import (
	"strings"
	"testing"
)

// Ensure that flat judges growth only from enough samples per half: a short
// run's few samples of restarted processes are noise, a long run's are not.
func TestFlatNeedsSamples(t *testing.T) {
	p := [2]procSample{{rssKiB: 30 << 10, threads: 8, fds: 30}, {rssKiB: 30 << 10, threads: 8, fds: 39}}
	if bad := flat(p, [2]int{4, 7}, [2]int{}, [2]int{}, 100); len(bad) != 0 {
		t.Errorf("judged from 4+7 samples: %q", bad)
	}
	bad := flat(p, [2]int{minFlatSamples, minFlatSamples}, [2]int{}, [2]int{}, 100)
	if len(bad) != 1 || !strings.Contains(bad[0], "open-file peak grew from 30 to 39") {
		t.Errorf("growth from %d samples per half not reported: %q", minFlatSamples, bad)
	}
	if bad := flat(p, [2]int{4, 7}, [2]int{5, 5}, [2]int{}, 1); len(bad) != 1 || !strings.Contains(bad[0], "5 goroutines") {
		t.Errorf("the goroutine bound must hold whatever the samples: %q", bad)
	}
}

// The tap keeps, per luid, the last "log state restored" line of dlogd (as
// dlogd printed it in the run that found 66 marks lost: a disk log restored
// suspended with nothing dirty), and a lost mark's report names its phase.
func TestTapKeepsLastRestore(t *testing.T) {
	tap, err := newLogTap(t.TempDir() + "/dlogd.log")
	if err != nil {
		t.Fatal(err)
	}
	defer tap.f.Close()
	lines := []string{
		`time=2026-12-07T22:40:30.705Z level=INFO msg="log state restored" uuid=LVM-ebe9 luid=0xffff88810a009d80 log=clustered-disk regions=19524 phase=running in_sync=240 dirty=19289 cursor=234`,
		`time=2026-12-07T22:40:30.760Z level=INFO msg="log state restored" uuid=LVM-f459 luid=0xffff88810a009f40 log=clustered-core regions=17038 phase=running in_sync=0 dirty=11 cursor=0`,
		`time=2026-12-07T22:40:31.815Z level=INFO msg="log state restored" uuid=LVM-ebe9 luid=0xffff88810a009d80 log=clustered-disk regions=19524 phase=suspended in_sync=260 dirty=0 cursor=243`,
		`time=2026-12-07T22:40:31.816Z level=INFO msg="log restored from its state file" uuid=LVM-ebe9 luid=0xffff88810a009d80 phase=running ctr="624768 clustered-disk 7:0 32"`,
	}
	// In pieces, as a pipe delivers them.
	all := strings.Join(lines, "\n") + "\n"
	for len(all) > 0 {
		n := min(len(all), 97)
		tap.Write([]byte(all[:n]))
		all = all[n:]
	}
	got := logFields(tap.lastRestored(0xffff88810a009d80), "time", "phase", "dirty", "in_sync", "cursor")
	if want := "time=2026-12-07T22:40:31.815Z phase=suspended dirty=0 in_sync=260 cursor=243"; got != want {
		t.Errorf("last restore of 0xffff88810a009d80: %q, want %q", got, want)
	}
	if got := tap.lastRestored(0xffff88810a009f40); !strings.Contains(got, "dirty=11") {
		t.Errorf("last restore of 0xffff88810a009f40: %q", got)
	}
	if got := tap.lastRestored(0x1c0); got != "" {
		t.Errorf("a luid never restored: %q", got)
	}
}
