//go:build !linux || !cgo || !corosync

package cpg

import (
	"fmt"
	"log/slog"

	"github.com/dlog-dev/dlog/cluster"
)

// Available reports whether this build can reach corosync.
const Available = false

// Messenger is the stub of a build without corosync support (no cgo, or
// no corosync build tag): it never reaches corosync.
type Messenger struct{}

// New returns the stub transport.
func New(*slog.Logger) *Messenger { return &Messenger{} }

func (*Messenger) Name() string { return "corosync" }

func (*Messenger) Check() error {
	return fmt.Errorf("%w: this dlogd was built without corosync support; build it with make build-cluster (cgo and -tags corosync, needs libcpg-dev and libquorum-dev: make cluster-deps)", cluster.ErrUnreachable)
}

func (t *Messenger) Join(string, cluster.GroupHandler) (cluster.Group, error) { return nil, t.Check() }
