// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/udpsock_test.go; see LICENSE-GO.

//go:build unix

package gonettest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/batchconn/batchconn/batchconn"
)

func TestWriteToUDP(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	if !testableNetwork("udp") {
		t.Skipf("skipping: udp not supported")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		c, err := m.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()

		testWriteToConn(t, m, c.LocalAddr().String())
		testWriteToPacketConn(t, m, c.LocalAddr().String())
	})
}

func testWriteToConn(t *testing.T, m *mode, raddr string) {
	c, err := m.Dial("udp", raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ra, err := net.ResolveUDPAddr("udp", raddr)
	if err != nil {
		t.Fatal(err)
	}
	rap := ra.AddrPort()

	assertErrWriteToConnected := func(t *testing.T, err error) {
		t.Helper()
		if e, ok := err.(*net.OpError); !ok || e.Err != net.ErrWriteToConnected {
			t.Errorf("got %v; want ErrWriteToConnected", err)
		}
	}

	b := []byte("CONNECTED-MODE SOCKET")
	_, err = c.WriteToUDPAddrPort(b, rap)
	assertErrWriteToConnected(t, err)
	_, err = c.WriteToUDP(b, ra)
	assertErrWriteToConnected(t, err)
	_, err = c.WriteTo(b, ra)
	assertErrWriteToConnected(t, err)
	_, err = c.Write(b)
	if err != nil {
		t.Errorf("c.Write(b) = %v; want nil", err)
	}
	_, _, err = c.WriteMsgUDP(b, nil, ra)
	assertErrWriteToConnected(t, err)
	_, _, err = c.WriteMsgUDP(b, nil, nil)
	if err != nil {
		t.Errorf("c.WriteMsgUDP(b, nil, nil) = %v; want nil", err)
	}
	_, _, err = c.WriteMsgUDPAddrPort(b, nil, rap)
	assertErrWriteToConnected(t, err)
	_, _, err = c.WriteMsgUDPAddrPort(b, nil, netip.AddrPort{})
	if err != nil {
		t.Errorf("c.WriteMsgUDPAddrPort(b, nil, netip.AddrPort{}) = %v; want nil", err)
	}
}

func testWriteToPacketConn(t *testing.T, m *mode, raddr string) {
	c, err := m.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ra, err := net.ResolveUDPAddr("udp", raddr)
	if err != nil {
		t.Fatal(err)
	}

	b := []byte("UNCONNECTED-MODE SOCKET")
	_, err = c.WriteToUDP(b, ra)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WriteTo(b, ra)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Write(b)
	if err == nil {
		t.Fatal("should fail")
	}
	_, _, err = c.WriteMsgUDP(b, nil, nil)
	if err == nil {
		t.Fatal("should fail")
	}
	if err != nil && err.(*net.OpError).Err != errMissingAddress() {
		t.Fatalf("should fail as errMissingAddress: %v", err)
	}
	_, _, err = c.WriteMsgUDP(b, nil, ra)
	if err != nil {
		t.Fatal(err)
	}
}

var udpConnLocalNameTests = []struct {
	net   string
	laddr *net.UDPAddr
}{
	{"udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}},
	{"udp4", &net.UDPAddr{}},
	{"udp4", nil},
}

// TestUDPConnLocalName binds a wildcard address in two of its cases. Go's
// test skips in -short mode (testenv.MustHaveExternalNetwork); the port
// does not, since it sends nothing anywhere.
func TestUDPConnLocalName(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		for _, tt := range udpConnLocalNameTests {
			t.Run(fmt.Sprint(tt.laddr), func(t *testing.T) {
				if !testableNetwork(tt.net) {
					t.Skipf("skipping: %s not available", tt.net)
				}

				c, err := m.ListenUDP(tt.net, tt.laddr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				la := c.LocalAddr()
				if a, ok := la.(*net.UDPAddr); !ok || a.Port == 0 {
					t.Fatalf("got %v; expected a proper address with non-zero port number", la)
				}
			})
		}
	})
}

func TestUDPConnLocalAndRemoteNames(t *testing.T) {
	if !testableNetwork("udp") {
		t.Skipf("skipping: udp not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		for _, laddr := range []string{"", "127.0.0.1:0"} {
			c1, err := m.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer c1.Close()

			var la *net.UDPAddr
			if laddr != "" {
				var err error
				if la, err = net.ResolveUDPAddr("udp", laddr); err != nil {
					t.Fatal(err)
				}
			}
			c2, err := m.DialUDP("udp", la, c1.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()

			var connAddrs = [4]struct {
				got net.Addr
				ok  bool
			}{
				{c1.LocalAddr(), true},
				{c1.RemoteAddr(), false},
				{c2.LocalAddr(), true},
				{c2.RemoteAddr(), true},
			}
			for _, ca := range connAddrs {
				if a, ok := ca.got.(*net.UDPAddr); ok != ca.ok || ok && a.Port == 0 {
					t.Fatalf("got %v; expected a proper address with non-zero port number", ca.got)
				}
			}
		}
	})
}

// TestIPv6LinkLocalUnicastUDP needs an IPv6 link-local address on the
// loopback interface, which Linux does not give it: there Go's test
// passes without testing anything. Where the host's loopback interface
// has none, the port runs the test in a network namespace of its own
// whose loopback interface has fe80::1 (root only), and skips otherwise.
// Go's test skips in -short mode (testenv.MustHaveExternalNetwork); the
// port does not, since nothing leaves the host.
func TestIPv6LinkLocalUnicastUDP(t *testing.T) {
	if !supportsIPv6() {
		t.Skip("IPv6 is not supported")
	}

	run := linkLocalLoopback(t)
	forEachMode(t, func(t *testing.T, m *mode) {
		var ipv6LinkLocalUnicastUDPTests []ipv6LinkLocalUnicastTest
		run(t, func() error {
			ipv6LinkLocalUnicastUDPTests = ipv6LinkLocalUnicastUDPTestData()
			return nil
		})
		if len(ipv6LinkLocalUnicastUDPTests) == 0 {
			t.Fatal("no IPv6 link-local address on the loopback interface")
		}

		for i, tt := range ipv6LinkLocalUnicastUDPTests {
			var c1 udpConn
			var err error
			run(t, func() error {
				c1, err = m.ListenPacket(tt.network, tt.address)
				return nil
			})
			if err != nil {
				// It might return "LookupHost returned no
				// suitable address" error on some platforms.
				t.Log(err)
				continue
			}
			ls := (&packetListener{PacketConn: c1}).newLocalServer()
			defer ls.teardown()
			ch := make(chan error, 1)
			handler := func(ls *localPacketServer, c udpConn) { packetTransponder(c, ch) }
			if err := ls.buildup(handler); err != nil {
				t.Fatal(err)
			}
			if la, ok := c1.LocalAddr().(*net.UDPAddr); !ok || !tt.nameLookup && la.Zone == "" {
				t.Fatalf("got %v; expected a proper address with zone identifier", la)
			}

			var c2 udpConn
			run(t, func() error {
				c2, err = m.Dial(tt.network, ls.PacketConn.LocalAddr().String())
				return err
			})
			defer c2.Close()
			if la, ok := c2.LocalAddr().(*net.UDPAddr); !ok || !tt.nameLookup && la.Zone == "" {
				t.Fatalf("got %v; expected a proper address with zone identifier", la)
			}
			if ra, ok := c2.RemoteAddr().(*net.UDPAddr); !ok || !tt.nameLookup && ra.Zone == "" {
				t.Fatalf("got %v; expected a proper address with zone identifier", ra)
			}

			if _, err := c2.Write([]byte("UDP OVER IPV6 LINKLOCAL TEST")); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 32)
			if _, err := c2.Read(b); err != nil {
				t.Fatal(err)
			}

			for err := range ch {
				t.Errorf("#%d: %v", i, err)
			}
		}
	})
}

func TestUDPZeroBytePayload(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}
	if !testableNetwork("udp") {
		t.Skipf("skipping: udp not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		c := newLocalPacketListener(t, m, "udp")
		defer c.Close()

		for _, genericRead := range []bool{false, true} {
			n, err := c.WriteTo(nil, c.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("got %d; want 0", n)
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			var b [1]byte
			var name string
			if genericRead {
				_, err = c.Read(b[:])
				name = "Read"
			} else {
				_, _, err = c.ReadFrom(b[:])
				name = "ReadFrom"
			}
			if err != nil {
				t.Errorf("%s of zero byte packet failed: %v", name, err)
			}
		}
	})
}

func TestUDPZeroByteBuffer(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}
	if !testableNetwork("udp") {
		t.Skipf("skipping: udp not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		c := newLocalPacketListener(t, m, "udp")
		defer c.Close()

		b := []byte("UDP ZERO BYTE BUFFER TEST")
		for _, genericRead := range []bool{false, true} {
			n, err := c.WriteTo(b, c.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Errorf("got %d; want %d", n, len(b))
			}
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if genericRead {
				_, err = c.Read(nil)
			} else {
				_, _, err = c.ReadFrom(nil)
			}
			switch err {
			case nil: // ReadFrom succeeds
			default: // Read may timeout, it depends on the platform
				if nerr, ok := err.(net.Error); !ok || !nerr.Timeout() { // Go's test lets Windows' WSAEMSGSIZE pass
					t.Fatal(err)
				}
			}
		}
	})
}

func TestUDPReadSizeError(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}
	if !testableNetwork("udp") {
		t.Skipf("skipping: udp not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		c1 := newLocalPacketListener(t, m, "udp")
		defer c1.Close()

		c2, err := m.Dial("udp", c1.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()

		b1 := []byte("READ SIZE ERROR TEST")
		for _, genericRead := range []bool{false, true} {
			n, err := c2.Write(b1)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b1) {
				t.Errorf("got %d; want %d", n, len(b1))
			}
			b2 := make([]byte, len(b1)-1)
			if genericRead {
				n, err = c1.Read(b2)
			} else {
				n, _, err = c1.ReadFrom(b2)
			}
			if err != nil { // Go's test lets Windows' WSAEMSGSIZE pass
				t.Fatal(err)
			}
			if n != len(b1)-1 {
				t.Fatalf("got %d; want %d", n, len(b1)-1)
			}
		}
	})
}

// TestUDPReadTimeout verifies that ReadFromUDP with timeout returns an error
// without data or an address.
func TestUDPReadTimeout(t *testing.T) {
	if !testableNetwork("udp4") {
		t.Skipf("skipping: udp4 not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		la, err := net.ResolveUDPAddr("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.ListenUDP("udp4", la)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()

		c.SetDeadline(time.Now())
		b := make([]byte, 1)
		n, addr, err := c.ReadFromUDP(b)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("ReadFromUDP got err %v want os.ErrDeadlineExceeded", err)
		}
		if n != 0 {
			t.Errorf("ReadFromUDP got n %d want 0", n)
		}
		if addr != nil {
			t.Errorf("ReadFromUDP got addr %+#v want nil", addr)
		}
	})
}

// TestAllocs counts the allocations of calls made on the concrete type, as
// Go's test makes them on a *UDPConn: only then can ReadFromUDP be inlined
// and its *UDPAddr stay on the caller's stack. So the three loops are
// written out for each type, the same text with c of another type.
func TestAllocs(t *testing.T) {
	switch runtime.GOOS {
	case "plan9", "js", "wasip1":
		// These implementations have not been optimized.
		t.Skipf("skipping on %v", runtime.GOOS)
	}
	if !testableNetwork("udp4") {
		t.Skipf("skipping: udp4 not available")
	}
	if asanEnabled {
		t.Skip("test allocates more with -asan; see #70079")
	}

	// Optimizations are required to remove the allocs.
	if optimizationOff { // testenv.SkipIfOptimizationOff
		t.Skip("skipping test with optimization disabled")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		conn, err := m.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		addr := conn.LocalAddr()
		addrPort := addr.(*net.UDPAddr).AddrPort()
		buf := make([]byte, 8)

		var msgAddrPort, addrPortRW, writeToReadFromUDP func()
		switch c := conn.(type) {
		case *net.UDPConn:
			msgAddrPort = func() {
				_, _, err := c.WriteMsgUDPAddrPort(buf, nil, addrPort)
				if err != nil {
					t.Fatal(err)
				}
				_, _, _, _, err = c.ReadMsgUDPAddrPort(buf, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			addrPortRW = func() {
				_, err := c.WriteToUDPAddrPort(buf, addrPort)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
			}
			writeToReadFromUDP = func() {
				_, err := c.WriteTo(buf, addr)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.ReadFromUDP(buf)
				if err != nil {
					t.Fatal(err)
				}
			}
		case *batchconn.Conn:
			msgAddrPort = func() {
				_, _, err := c.WriteMsgUDPAddrPort(buf, nil, addrPort)
				if err != nil {
					t.Fatal(err)
				}
				_, _, _, _, err = c.ReadMsgUDPAddrPort(buf, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			addrPortRW = func() {
				_, err := c.WriteToUDPAddrPort(buf, addrPort)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
			}
			writeToReadFromUDP = func() {
				_, err := c.WriteTo(buf, addr)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.ReadFromUDP(buf)
				if err != nil {
					t.Fatal(err)
				}
			}
		default:
			t.Fatalf("a conn of type %T", conn)
		}

		allocs := testing.AllocsPerRun(1000, msgAddrPort)
		if got := int(allocs); got != 0 {
			t.Errorf("WriteMsgUDPAddrPort/ReadMsgUDPAddrPort allocated %d objects", got)
		}

		allocs = testing.AllocsPerRun(1000, addrPortRW)
		if got := int(allocs); got != 0 {
			t.Errorf("WriteToUDPAddrPort/ReadFromUDPAddrPort allocated %d objects", got)
		}

		allocs = testing.AllocsPerRun(1000, writeToReadFromUDP)
		if got := int(allocs); got != 1 {
			t.Errorf("WriteTo/ReadFromUDP allocated %d objects", got)
		}
	})
}

func TestUDPIPVersionReadMsg(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("skipping on %v", runtime.GOOS)
	}
	if !testableNetwork("udp4") {
		t.Skipf("skipping: udp4 not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		conn, err := m.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		daddr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		buf := make([]byte, 8)
		_, err = conn.WriteToUDPAddrPort(buf, daddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, saddr, err := conn.ReadMsgUDPAddrPort(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !saddr.Addr().Is4() {
			t.Error("returned AddrPort is not IPv4")
		}
		_, err = conn.WriteToUDPAddrPort(buf, daddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, soldaddr, err := conn.ReadMsgUDP(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(soldaddr.IP) != 4 {
			t.Error("returned UDPAddr is not IPv4")
		}
	})
}

// TestIPv6WriteMsgUDPAddrPortTargetAddrIPVersion verifies that
// WriteMsgUDPAddrPort accepts IPv4, IPv4-mapped IPv6, and IPv6 target addresses
// on a UDPConn listening on "::".
func TestIPv6WriteMsgUDPAddrPortTargetAddrIPVersion(t *testing.T) {
	if !testableNetwork("udp4") {
		t.Skipf("skipping: udp4 not available")
	}
	if !testableNetwork("udp6") {
		t.Skipf("skipping: udp6 not available")
	}

	switch runtime.GOOS {
	case "dragonfly", "openbsd":
		// DragonflyBSD's IPv6 sockets are always IPv6-only, according to the man page:
		// https://www.dragonflybsd.org/cgi/web-man?command=ip6 (search for IPV6_V6ONLY).
		// OpenBSD's IPv6 sockets are always IPv6-only, according to the man page:
		// https://man.openbsd.org/ip6#IPV6_V6ONLY
		t.Skipf("skipping on %v", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		conn, err := m.ListenUDP("udp", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		daddr4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 12345)
		daddr4in6 := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), 12345)
		daddr6 := netip.AddrPortFrom(netip.MustParseAddr("::1"), 12345)
		buf := make([]byte, 8)

		_, _, err = conn.WriteMsgUDPAddrPort(buf, nil, daddr4)
		if err != nil {
			t.Fatal(err)
		}

		_, _, err = conn.WriteMsgUDPAddrPort(buf, nil, daddr4in6)
		if err != nil {
			t.Fatal(err)
		}

		_, _, err = conn.WriteMsgUDPAddrPort(buf, nil, daddr6)
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestIPv4WriteMsgUDPAddrPortTargetAddrIPVersion verifies that
// WriteMsgUDPAddrPort accepts IPv4 and IPv4-mapped IPv6 destination addresses,
// and rejects IPv6 destination addresses on a "udp4" connection.
func TestIPv4WriteMsgUDPAddrPortTargetAddrIPVersion(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	if !testableNetwork("udp4") {
		t.Skipf("skipping: udp4 not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		conn, err := m.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		daddr4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 12345)
		daddr4in6 := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), 12345)
		daddr6 := netip.AddrPortFrom(netip.MustParseAddr("::1"), 12345)
		buf := make([]byte, 8)

		if _, _, err = conn.WriteMsgUDPAddrPort(buf, nil, daddr4); err != nil {
			t.Errorf("conn.WriteMsgUDPAddrPort(buf, nil, daddr4) failed: %v", err)
		}

		if _, _, err = conn.WriteMsgUDPAddrPort(buf, nil, daddr4in6); err != nil {
			t.Errorf("conn.WriteMsgUDPAddrPort(buf, nil, daddr4in6) failed: %v", err)
		}

		if _, _, err = conn.WriteMsgUDPAddrPort(buf, nil, daddr6); err == nil {
			t.Errorf("conn.WriteMsgUDPAddrPort(buf, nil, daddr6) should have failed, but got no error")
		}
	})
}

// TestReadWriteMsgUDPAddrPortEmptyCmsg verifies that ReadMsgUDPAddrPort and
// WriteMsgUDPAddrPort won't fail when the cmsg buffer (the oob parameter) is
// non-nil but empty.
//
// This is a regression test for https://golang.org/issue/77875.
func TestReadWriteMsgUDPAddrPortEmptyCmsg(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	if !testableNetwork("udp4") {
		t.Skipf("skipping: udp4 not available")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		conn, err := m.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		buf := make([]byte, 8)
		cmsgBuf := make([]byte, 8)[:0]
		daddr := conn.LocalAddr().(*net.UDPAddr).AddrPort()

		_, cmsgn, err := conn.WriteMsgUDPAddrPort(buf, cmsgBuf, daddr)
		if err != nil {
			t.Fatalf("WriteMsgUDPAddrPort failed: %v", err)
		}
		if cmsgn != 0 {
			t.Errorf("WriteMsgUDPAddrPort wrote %d cmsg bytes; want 0", cmsgn)
		}

		_, cmsgn, _, _, err = conn.ReadMsgUDPAddrPort(buf, cmsgBuf)
		if err != nil {
			t.Fatalf("ReadMsgUDPAddrPort failed: %v", err)
		}
		if cmsgn != 0 {
			t.Errorf("ReadMsgUDPAddrPort read %d cmsg bytes; want 0", cmsgn)
		}
	})
}
