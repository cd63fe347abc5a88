//go:build !linux || !cgo

package cpg

import (
	"fmt"
	"log/slog"

	"github.com/dlog-dev/dlog/cluster"
)

// Available reports whether this build can reach corosync.
const Available = false

// Transport is the stub of a build without cgo: it never reaches corosync.
type Transport struct{}

// New returns the stub transport.
func New(*slog.Logger) *Transport { return &Transport{} }

func (*Transport) Name() string { return "corosync" }

func (*Transport) Check() error {
	return fmt.Errorf("%w: this dlogd was built without corosync support (CGO_ENABLED=0); build it with make build-cluster", cluster.ErrUnreachable)
}

func (t *Transport) Join(string, cluster.Handler) (cluster.Group, error) { return nil, t.Check() }
