//go:build !linux || !cgo || !corosync

package cpg

import (
	"errors"
	"strings"
	"testing"

	"github.com/dlog-dev/dlog/cluster"
)

// TestStub: a build without corosync support says so at CTR time.
func TestStub(t *testing.T) {
	tr := New(nil)
	err := tr.Check()
	if !errors.Is(err, cluster.ErrUnreachable) || !strings.Contains(err.Error(), "without corosync support") {
		t.Fatalf("Check: %v", err)
	}
	if _, err := tr.Join("g", nil); err == nil {
		t.Fatal("Join succeeded without corosync support")
	}
}
