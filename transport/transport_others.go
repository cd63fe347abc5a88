//go:build !linux

package transport

import (
	"fmt"
	"runtime"
	"time"
)

func unsupported(what string) error {
	return fmt.Errorf("transport: %s on %s/%s: %w", what, runtime.GOOS, runtime.GOARCH, ErrUnsupported)
}

func listenNetlink(Options, uint32) (Transport, error) { return nil, unsupported("netlink") }

func listenUnix(path string, _ Options) (Transport, error) {
	return nil, unsupported("unix:" + path)
}

// UnixClient is the client of the unix transport; Linux only.
type UnixClient struct{}

// DialUnix fails with ErrUnsupported off Linux.
func DialUnix(path string) (*UnixClient, error) { return nil, unsupported("unix:" + path) }

// Send fails with ErrUnsupported.
func (c *UnixClient) Send([]byte) error { return unsupported("unix client") }

// Receive fails with ErrUnsupported.
func (c *UnixClient) Receive([]byte) (int, error) { return 0, unsupported("unix client") }

// SetDeadline fails with ErrUnsupported.
func (c *UnixClient) SetDeadline(time.Time) error { return unsupported("unix client") }

// SetReadDeadline fails with ErrUnsupported.
func (c *UnixClient) SetReadDeadline(time.Time) error { return unsupported("unix client") }

// SetWriteDeadline fails with ErrUnsupported.
func (c *UnixClient) SetWriteDeadline(time.Time) error { return unsupported("unix client") }

// Close fails with ErrUnsupported.
func (c *UnixClient) Close() error { return unsupported("unix client") }
