package vmharness

import (
	"net"
	"strings"
	"testing"
	"time"
)

// hubNode binds node i's reserved port, as qemu does, and talks to the hub.
func hubNode(t *testing.T, h *Hub, i int) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", h.nodes[i-1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recvOne(c *net.UDPConn, wait time.Duration) string {
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(wait))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestHubForwardsToOthersAndIsolates(t *testing.T) {
	h, err := NewHub(3)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n1, n2, n3 := hubNode(t, h, 1), hubNode(t, h, 2), hubNode(t, h, 3)
	hub := h.conn.LocalAddr().(*net.UDPAddr)
	send := func(c *net.UDPConn, s string) {
		if _, err := c.WriteToUDP([]byte(s), hub); err != nil {
			t.Fatal(err)
		}
	}

	send(n1, "a")
	if got2, got3 := recvOne(n2, time.Second), recvOne(n3, time.Second); got2 != "a" || got3 != "a" {
		t.Fatalf("frame from node 1: node 2 got %q, node 3 got %q; want both a", got2, got3)
	}
	if got := recvOne(n1, 100*time.Millisecond); got != "" {
		t.Fatalf("node 1 got its own frame back: %q", got)
	}

	h.Isolate(3)
	send(n1, "b")
	send(n3, "c")
	if got := recvOne(n2, time.Second); got != "b" {
		t.Fatalf("node 2 got %q from node 1 while node 3 is isolated; want b", got)
	}
	if got := recvOne(n3, 200*time.Millisecond); got != "" {
		t.Fatalf("isolated node 3 received %q", got)
	}
	if got := recvOne(n1, 200*time.Millisecond); got != "" {
		t.Fatalf("node 1 received %q from isolated node 3", got)
	}

	h.Heal()
	send(n3, "d")
	if got1, got2 := recvOne(n1, time.Second), recvOne(n2, time.Second); got1 != "d" || got2 != "d" {
		t.Fatalf("after Heal, node 3's frame reached node 1 as %q and node 2 as %q; want d", got1, got2)
	}
	if frames, dropped := h.Stats(); frames != 4 || dropped != 3 { // b to node 3, c to nodes 1 and 2
		t.Fatalf("stats: %d frames, %d dropped; want 4 and 3", frames, dropped)
	}
	args := strings.Join(h.NetArgs(2), " ")
	if !strings.Contains(args, "udp="+hub.String()) || !strings.Contains(args, "localaddr="+h.nodes[1].String()) || !strings.Contains(args, "mac=52:54:00:d1:06:02") {
		t.Fatalf("NetArgs(2) = %s", args)
	}
}
