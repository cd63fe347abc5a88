//go:build !linux || !cgo || !corosync

package cpg

import (
	"fmt"
	"log/slog"

	"github.com/dlog-dev/dlog/cluster"
)

// Available reports whether this build can reach corosync.
const Available = false

// Transport is the stub of a build without corosync support (no cgo, or
// no corosync build tag): it never reaches corosync.
type Transport struct{}

// New returns the stub transport.
func New(*slog.Logger) *Transport { return &Transport{} }

func (*Transport) Name() string { return "corosync" }

func (*Transport) Check() error {
	return fmt.Errorf("%w: this dlogd was built without corosync support; build it with make build-cluster (cgo and -tags corosync, needs libcpg-dev and libquorum-dev: make cluster-deps)", cluster.ErrUnreachable)
}

func (t *Transport) Join(string, cluster.Handler) (cluster.Group, error) { return nil, t.Check() }
