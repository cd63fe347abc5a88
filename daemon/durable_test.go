package daemon_test

import (
	"testing"

	"github.com/dlog-dev/dlog/ulog"
)

// A MARK_REGION of a disk log is on the device when its reply arrives: a
// daemon killed before the FLUSH that follows must not take it along (the
// kernel would retry the FLUSH on the next daemon and write).
func TestDurableMark(t *testing.T) {
	k, p := diskLog(t, "dm", "16384", "2 nosync")
	for _, r := range []uint64{5, 700, 4000, 8191} {
		k.ok(ulog.TypeMarkRegion, "dm", 1, regions(r))
		img := readDirect(t, p, 2048)
		if img[1024+r/8]&(1<<(r%8)) != 0 {
			t.Fatalf("region %d not durable when MARK returned", r)
		}
	}
}
