package testnet

import (
	"net"
	"net/netip"
	"testing"
)

// readBufferSize is the SO_RCVBUF asked for on every socket the package
// opens. The kernel doubles it, to 128 MiB, which holds some 50,000
// 1200-byte datagrams, so a [Receiver] that falls behind a batched sender
// (as it does under -race) drops none. The kernel only uses the memory when
// datagrams actually wait in the buffer.
const readBufferSize = 64 << 20

// ListenUDP opens a UDP socket on loopback with a large receive buffer and
// closes it in t.Cleanup. network selects the address:
//
//   - "udp4": 127.0.0.1:0
//   - "udp6": [::1]:0; the test is skipped when there is no IPv6 loopback
//   - "udp":  [::]:0, dual-stack (IPV6_V6ONLY off), so it also receives
//     from IPv4 senders; the test is skipped when IPv6 is unavailable
//
// Any other network fails the test.
func ListenUDP(t testing.TB, network string) *net.UDPConn {
	t.Helper()
	var laddr netip.AddrPort
	switch network {
	case "udp4":
		laddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	case "udp6":
		laddr = netip.AddrPortFrom(netip.IPv6Loopback(), 0)
	case "udp":
		// The net package makes a wildcard "udp" socket dual-stack
		// (AF_INET6 with IPV6_V6ONLY=0) whenever the kernel supports it.
		laddr = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	default:
		t.Fatalf("testnet.ListenUDP: unsupported network %q (want udp4, udp6 or udp)", network)
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		if network != "udp4" {
			t.Skipf("testnet: no IPv6 loopback: %v", err)
		}
		t.Fatalf("testnet.ListenUDP: %v", err)
	}
	if network == "udp" && !localAddrPort(c).Addr().Is6() {
		c.Close()
		t.Skipf("testnet: no dual-stack socket: %q listener bound to %v", network, c.LocalAddr())
	}
	manage(t, c)
	return c
}

// manage registers c to be closed in t.Cleanup and gives it a large receive
// buffer.
func manage(t testing.TB, c *net.UDPConn) {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	if err := setReadBuffer(c, readBufferSize); err != nil {
		t.Fatalf("testnet: setting the receive buffer of %v: %v", c.LocalAddr(), err)
	}
}

// localAddrPort returns the address c is bound to.
func localAddrPort(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}
