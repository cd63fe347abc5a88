//go:build linux

package systemd

import (
	"fmt"
	"net"
)

// Notify sends state ("READY=1", "STOPPING=1", "STATUS=...", lines
// joined by "\n") to the service manager's socket; socket is the value of
// NOTIFY_SOCKET. An empty socket (not started by systemd, or not
// Type=notify) sends nothing and is not an error.
func Notify(socket, state string) error {
	if socket == "" {
		return nil
	}
	// Go maps a leading '@' to the abstract namespace itself.
	if socket[0] != '/' && socket[0] != '@' {
		return fmt.Errorf("notify socket %q: neither a path nor an abstract name", socket)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify socket %s: %w", socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify socket %s: %w", socket, err)
	}
	return nil
}
