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
