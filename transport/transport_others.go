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

func listenNetlink(Options) (Transport, error) { return nil, unsupported("netlink") }

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

// FakeKernel is the netlink fake kernel for tests; Linux only.
type FakeKernel struct{}

// DialFakeKernel fails with ErrUnsupported off Linux.
func DialFakeKernel() (*FakeKernel, error) { return nil, unsupported("netlink fake kernel") }

// PortID returns 0.
func (k *FakeKernel) PortID() uint32 { return 0 }

// Multicast fails with ErrUnsupported.
func (k *FakeKernel) Multicast([]byte) error { return unsupported("netlink fake kernel") }

// Unicast fails with ErrUnsupported.
func (k *FakeKernel) Unicast(uint32, []byte) error { return unsupported("netlink fake kernel") }

// Receive fails with ErrUnsupported.
func (k *FakeKernel) Receive([]byte) (int, uint32, error) {
	return 0, 0, unsupported("netlink fake kernel")
}

// SetReadDeadline fails with ErrUnsupported.
func (k *FakeKernel) SetReadDeadline(time.Time) error { return unsupported("netlink fake kernel") }

// Close fails with ErrUnsupported.
func (k *FakeKernel) Close() error { return unsupported("netlink fake kernel") }
