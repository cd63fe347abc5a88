package vmharness

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Hub is the cluster tests' Ethernet segment: a UDP relay on 127.0.0.1 that
// each guest's NIC talks to (qemu's -netdev socket,udp=...), forwarding
// every frame from one node to all the others, like a hub. It needs no root
// and no host networking, its ports are picked per run (no collisions with
// other runs), and it can cut a node off (Isolate) and heal the segment.
type Hub struct {
	conn  *net.UDPConn
	nodes []*net.UDPAddr // node i's qemu socket (index i-1)
	// cut[i] set: frames from or to node i+1 are dropped.
	cut     []atomic.Bool
	frames  atomic.Int64
	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// NewHub listens on an ephemeral port of 127.0.0.1 and reserves one for each
// of n nodes.
func NewHub(n int) (*Hub, error) {
	if n < 1 {
		return nil, errors.New("vmharness: a hub needs at least one node")
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("vmharness: hub: %w", err)
	}
	h := &Hub{conn: conn, cut: make([]atomic.Bool, n), done: make(chan struct{})}
	for i := 0; i < n; i++ {
		// Reserve a port by binding it, then free it for qemu. Another
		// process could take it in between; qemu then fails to start and
		// says so, which is visible and rare.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("vmharness: hub: %w", err)
		}
		h.nodes = append(h.nodes, c.LocalAddr().(*net.UDPAddr))
		c.Close()
	}
	go h.relay()
	return h, nil
}

// NetArgs is node i's (1-based) qemu network: a virtio NIC with a MAC
// derived from i, its frames going to the hub. romfile= skips the iPXE
// option ROM (not installed with --no-install-recommends, and not needed).
func (h *Hub) NetArgs(i int) []string {
	return []string{
		"-netdev", fmt.Sprintf("socket,id=net0,udp=%s,localaddr=%s", h.conn.LocalAddr(), h.nodes[i-1]),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=net0,mac=52:54:00:d1:06:%02x,romfile=", i),
	}
}

// Isolate drops every frame from or to node i (1-based) until Heal.
func (h *Hub) Isolate(i int) { h.cut[i-1].Store(true) }

// Heal lets every node talk to every other again.
func (h *Hub) Heal() {
	for i := range h.cut {
		h.cut[i].Store(false)
	}
}

// Stats returns how many frames arrived and how many were dropped.
func (h *Hub) Stats() (frames, dropped int64) { return h.frames.Load(), h.dropped.Load() }

// Close stops the relay.
func (h *Hub) Close() error {
	var err error
	h.once.Do(func() {
		err = h.conn.Close()
		<-h.done
	})
	return err
}

func (h *Hub) relay() {
	defer close(h.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := h.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		h.frames.Add(1)
		src := -1
		for i, a := range h.nodes {
			if a.Port == from.Port && a.IP.Equal(from.IP) {
				src = i
				break
			}
		}
		if src < 0 {
			h.dropped.Add(1)
			continue
		}
		for i, a := range h.nodes {
			if i == src {
				continue
			}
			if h.cut[src].Load() || h.cut[i].Load() {
				h.dropped.Add(1)
				continue
			}
			// A node that is not up yet (or was killed) has no socket:
			// the write fails or vanishes, like a frame on a dead port.
			_, _ = h.conn.WriteToUDP(buf[:n], a)
		}
	}
}
