// Copyright 2011 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/listen_test.go (its UDP tests); see
// LICENSE-GO. Where Go reads a socket's address family from the UDPConn's
// netFD, the port asks the socket (getsockname); where Go skips a test, or
// a wildcard case, in -short mode (testenv.MustHaveExternalNetwork,
// testableListenArgs), the port runs it, since nothing leaves the host.

//go:build unix

package gonettest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// connPort is (*UDPConn).port.
func connPort(c udpConn) string {
	_, port, err := net.SplitHostPort(c.LocalAddr().String())
	if err != nil {
		return ""
	}
	return port
}

var udpListenerTests = []struct {
	network string
	address string
}{
	{"udp", ""},
	{"udp", "0.0.0.0"},
	{"udp", "::ffff:0.0.0.0"},
	{"udp", "::"},

	{"udp", "127.0.0.1"},
	{"udp", "::ffff:127.0.0.1"},
	{"udp", "::1"},

	{"udp4", ""},
	{"udp4", "0.0.0.0"},
	{"udp4", "::ffff:0.0.0.0"},

	{"udp4", "127.0.0.1"},
	{"udp4", "::ffff:127.0.0.1"},

	{"udp6", ""},
	{"udp6", "::"},

	{"udp6", "::1"},
}

// TestUDPListener tests both single and double listen to a test
// listener with same address family, same listening address and
// same port.
func TestUDPListener(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		for _, tt := range udpListenerTests {
			if !testableListenArgs(tt.network, net.JoinHostPort(tt.address, "0"), "") {
				t.Logf("skipping %s test", tt.network+" "+tt.address)
				continue
			}

			c1, err := m.ListenPacket(tt.network, net.JoinHostPort(tt.address, "0"))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkFirstListener(tt.network, c1); err != nil {
				c1.Close()
				t.Fatal(err)
			}
			c2, err := m.ListenPacket(tt.network, net.JoinHostPort(tt.address, connPort(c1)))
			if err == nil {
				c2.Close()
			}
			if err := checkSecondListener(tt.network, tt.address, err); err != nil {
				c1.Close()
				t.Fatal(err)
			}
			c1.Close()
		}
	})
}

var dualStackUDPListenerTests = []struct {
	network1, address1 string // first listener
	network2, address2 string // second listener
	xerr               error  // expected error value, nil or other
}{
	{"udp", "", "udp", "", syscall.EADDRINUSE},
	{"udp", "", "udp", "0.0.0.0", syscall.EADDRINUSE},
	{"udp", "0.0.0.0", "udp", "", syscall.EADDRINUSE},

	{"udp", "", "udp", "::", syscall.EADDRINUSE},
	{"udp", "::", "udp", "", syscall.EADDRINUSE},
	{"udp", "0.0.0.0", "udp", "::", syscall.EADDRINUSE},
	{"udp", "::", "udp", "0.0.0.0", syscall.EADDRINUSE},
	{"udp", "::ffff:0.0.0.0", "udp", "::", syscall.EADDRINUSE},
	{"udp", "::", "udp", "::ffff:0.0.0.0", syscall.EADDRINUSE},

	{"udp4", "", "udp6", "", nil},
	{"udp6", "", "udp4", "", nil},
	{"udp4", "0.0.0.0", "udp6", "::", nil},
	{"udp6", "::", "udp4", "0.0.0.0", nil},

	{"udp", "127.0.0.1", "udp", "::1", nil},
	{"udp", "::1", "udp", "127.0.0.1", nil},
	{"udp4", "127.0.0.1", "udp6", "::1", nil},
	{"udp6", "::1", "udp4", "127.0.0.1", nil},
}

// TestDualStackUDPListener tests both single and double listen
// to a test listener with various address families, different
// listening address and same port.
//
// On DragonFly BSD, we expect the kernel version of node under test
// to be greater than or equal to 4.4.
func TestDualStackUDPListener(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}
	if !supportsIPv4() || !supportsIPv6() {
		t.Skip("both IPv4 and IPv6 are required")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		for _, tt := range dualStackUDPListenerTests {
			if !testableListenArgs(tt.network1, net.JoinHostPort(tt.address1, "0"), "") {
				t.Logf("skipping %s test", tt.network1+" "+tt.address1)
				continue
			}

			if !supportsIPv4map() && differentWildcardAddr(tt.address1, tt.address2) {
				tt.xerr = nil
			}
			var firstErr, secondErr error
			for i := 0; i < 5; i++ {
				cs, err := newDualStackPacketListener(m)
				if err != nil {
					t.Fatal(err)
				}
				port := connPort(cs[0])
				for _, c := range cs {
					c.Close()
				}
				var c1 udpConn
				c1, firstErr = m.ListenPacket(tt.network1, net.JoinHostPort(tt.address1, port))
				if firstErr != nil {
					continue
				}
				if err := checkFirstListener(tt.network1, c1); err != nil {
					c1.Close()
					t.Fatal(err)
				}
				c2, err := m.ListenPacket(tt.network2, net.JoinHostPort(tt.address2, connPort(c1)))
				if err == nil {
					c2.Close()
				}
				if secondErr = checkDualStackSecondListener(tt.network2, tt.address2, err, tt.xerr); secondErr != nil {
					c1.Close()
					continue
				}
				c1.Close()
				break
			}
			if firstErr != nil {
				t.Error(firstErr)
			}
			if secondErr != nil {
				t.Error(secondErr)
			}
		}
	})
}

func differentWildcardAddr(i, j string) bool {
	if (i == "" || i == "0.0.0.0" || i == "::ffff:0.0.0.0") && (j == "" || j == "0.0.0.0" || j == "::ffff:0.0.0.0") {
		return false
	}
	if i == "[::]" && j == "[::]" {
		return false
	}
	return true
}

func checkFirstListener(network string, c udpConn) error {
	family, err := socketFamily(c)
	if err != nil {
		return err
	}
	switch network {
	case "udp":
		if err := checkDualStackAddrFamily(network, c.LocalAddr(), family); err != nil {
			return err
		}
	case "udp4":
		if family != syscall.AF_INET {
			return fmt.Errorf("%v got %v; want %v", c.LocalAddr(), family, syscall.AF_INET)
		}
	case "udp6":
		if family != syscall.AF_INET6 {
			return fmt.Errorf("%v got %v; want %v", c.LocalAddr(), family, syscall.AF_INET6)
		}
	default:
		return net.UnknownNetworkError(network)
	}
	return nil
}

func checkSecondListener(network, address string, err error) error {
	switch network {
	case "udp", "udp4", "udp6":
		if err == nil {
			return fmt.Errorf("%s should fail", network+" "+address)
		}
	default:
		return net.UnknownNetworkError(network)
	}
	return nil
}

func checkDualStackSecondListener(network, address string, err, xerr error) error {
	switch network {
	case "udp", "udp4", "udp6":
		if xerr == nil && err != nil || xerr != nil && err == nil {
			return fmt.Errorf("%s got %v; want %v", network+" "+address, err, xerr)
		}
	default:
		return net.UnknownNetworkError(network)
	}
	return nil
}

// checkDualStackAddrFamily is Go's for a UDP socket: fd.net, fd.laddr and
// fd.family are network, laddr and family.
func checkDualStackAddrFamily(network string, laddr net.Addr, family int) error {
	switch a := laddr.(type) {
	case *net.UDPAddr:
		// If a node under test supports both IPv6 capability
		// and IPv6 IPv4-mapping capability, we can assume
		// that the node listens on a wildcard address with an
		// AF_INET6 socket.
		if supportsIPv4map() && isWildcard(a) {
			if family != syscall.AF_INET6 {
				return fmt.Errorf("ListenPacket(%s, %v) returns %v; want %v", network, laddr, family, syscall.AF_INET6)
			}
		} else {
			if family != udpAddrFamily(a) {
				return fmt.Errorf("ListenPacket(%s, %v) returns %v; want %v", network, laddr, family, udpAddrFamily(a))
			}
		}
	default:
		return fmt.Errorf("unexpected protocol address type: %T", a)
	}
	return nil
}

// udpAddrFamily is (*UDPAddr).family.
func udpAddrFamily(a *net.UDPAddr) int {
	if a == nil || len(a.IP) <= net.IPv4len {
		return syscall.AF_INET
	}
	if a.IP.To4() != nil {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

// TestWildWildcardListener is Go's UDP half: ListenPacket("udp", "") and
// ListenUDP("udp", nil) must not panic.
func TestWildWildcardListener(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panicked: %v", p)
			}
		}()

		if ln, err := m.ListenPacket("udp", ""); err == nil {
			ln.Close()
		}
		if ln, err := m.ListenUDP("udp", nil); err == nil {
			ln.Close()
		}
	})
}

var ipv4MulticastListenerTests = []struct {
	net   string
	gaddr *net.UDPAddr // see RFC 4727
}{
	{"udp", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 254), Port: 12345}},

	{"udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 254), Port: 12345}},
}

// TestIPv4MulticastListener tests both single and double listen to a
// test listener with same address family, same group address and same
// port.
//
// A multicast listener is bound to the wildcard address, so a Conn on it
// has reply sources.
func TestIPv4MulticastListener(t *testing.T) {
	switch runtime.GOOS {
	case "android", "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}
	if !supportsIPv4() {
		t.Skip("IPv4 is not supported")
	}

	closer := func(cs []udpConn) {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		for _, ifi := range []*net.Interface{loopbackInterface(), nil} {
			// Note that multicast interface assignment by system
			// is not recommended because it usually relies on
			// routing stuff for finding out an appropriate
			// nexthop containing both network and link layer
			// adjacencies.
			if ifi == nil || !testIPv4 {
				continue
			}
			for _, tt := range ipv4MulticastListenerTests {
				var err error
				cs := make([]udpConn, 2)
				if cs[0], err = m.ListenMulticastUDP(tt.net, ifi, tt.gaddr); err != nil {
					t.Fatal(err)
				}
				if err := checkMulticastListener(cs[0], tt.gaddr.IP); err != nil {
					closer(cs)
					t.Fatal(err)
				}
				if cs[1], err = m.ListenMulticastUDP(tt.net, ifi, tt.gaddr); err != nil {
					closer(cs)
					t.Fatal(err)
				}
				if err := checkMulticastListener(cs[1], tt.gaddr.IP); err != nil {
					closer(cs)
					t.Fatal(err)
				}
				closer(cs)
			}
		}
	})
}

var ipv6MulticastListenerTests = []struct {
	net   string
	gaddr *net.UDPAddr // see RFC 4727
}{
	{"udp", &net.UDPAddr{IP: net.ParseIP("ff01::114"), Port: 12345}},
	{"udp", &net.UDPAddr{IP: net.ParseIP("ff02::114"), Port: 12345}},
	{"udp", &net.UDPAddr{IP: net.ParseIP("ff04::114"), Port: 12345}},
	{"udp", &net.UDPAddr{IP: net.ParseIP("ff05::114"), Port: 12345}},
	{"udp", &net.UDPAddr{IP: net.ParseIP("ff08::114"), Port: 12345}},
	{"udp", &net.UDPAddr{IP: net.ParseIP("ff0e::114"), Port: 12345}},

	{"udp6", &net.UDPAddr{IP: net.ParseIP("ff01::114"), Port: 12345}},
	{"udp6", &net.UDPAddr{IP: net.ParseIP("ff02::114"), Port: 12345}},
	{"udp6", &net.UDPAddr{IP: net.ParseIP("ff04::114"), Port: 12345}},
	{"udp6", &net.UDPAddr{IP: net.ParseIP("ff05::114"), Port: 12345}},
	{"udp6", &net.UDPAddr{IP: net.ParseIP("ff08::114"), Port: 12345}},
	{"udp6", &net.UDPAddr{IP: net.ParseIP("ff0e::114"), Port: 12345}},
}

// TestIPv6MulticastListener tests both single and double listen to a
// test listener with same address family, same group address and same
// port.
func TestIPv6MulticastListener(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}
	if !supportsIPv6() {
		t.Skip("IPv6 is not supported")
	}
	if os.Getuid() != 0 { // on Windows, which the ports leave out, Go's test runs for any user
		t.Skip("must be root")
	}

	closer := func(cs []udpConn) {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		for _, ifi := range []*net.Interface{loopbackInterface(), nil} {
			// Note that multicast interface assignment by system
			// is not recommended because it usually relies on
			// routing stuff for finding out an appropriate
			// nexthop containing both network and link layer
			// adjacencies.
			if ifi == nil && !testIPv6 {
				continue
			}
			for _, tt := range ipv6MulticastListenerTests {
				var err error
				cs := make([]udpConn, 2)
				if cs[0], err = m.ListenMulticastUDP(tt.net, ifi, tt.gaddr); err != nil {
					t.Fatal(err)
				}
				if err := checkMulticastListener(cs[0], tt.gaddr.IP); err != nil {
					closer(cs)
					t.Fatal(err)
				}
				if cs[1], err = m.ListenMulticastUDP(tt.net, ifi, tt.gaddr); err != nil {
					closer(cs)
					t.Fatal(err)
				}
				if err := checkMulticastListener(cs[1], tt.gaddr.IP); err != nil {
					closer(cs)
					t.Fatal(err)
				}
				closer(cs)
			}
		}
	})
}

// testIPv4 and testIPv6 are the defaults of Go's -ipv4 and -ipv6 test
// flags: assume external IPv4 connectivity, not IPv6.
const testIPv4, testIPv6 = true, false

func checkMulticastListener(c udpConn, ip net.IP) error {
	if ok, err := multicastRIBContains(ip); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s not found in multicast rib", ip.String())
	}
	la := c.LocalAddr()
	if la, ok := la.(*net.UDPAddr); !ok || la.Port == 0 {
		return fmt.Errorf("got %v; want a proper address with non-zero port number", la)
	}
	return nil
}

func multicastRIBContains(ip net.IP) (bool, error) {
	switch runtime.GOOS {
	case "aix", "dragonfly", "netbsd", "openbsd", "plan9", "solaris", "illumos":
		return true, nil // not implemented yet
	case "linux":
		if runtime.GOARCH == "arm" || runtime.GOARCH == "alpha" {
			return true, nil // not implemented yet
		}
	}
	ift, err := net.Interfaces()
	if err != nil {
		return false, err
	}
	for _, ifi := range ift {
		ifmat, err := ifi.MulticastAddrs()
		if err != nil {
			return false, err
		}
		for _, ifma := range ifmat {
			if ifma.(*net.IPAddr).IP.Equal(ip) {
				return true, nil
			}
		}
	}
	return false, nil
}

// TestListenConfigControl is Go's PacketListen half (its "udp", "udp4",
// "udp6" networks): a ListenConfig's Control runs on the socket, which
// the mode then wraps.
func TestListenConfigControl(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		t.Run("PacketListen", func(t *testing.T) {
			for _, network := range []string{"udp", "udp4", "udp6"} {
				if !testableNetwork(network) {
					continue
				}
				c := newLocalPacketListener(t, m, network, &net.ListenConfig{Control: controlOnConnSetup})
				c.Close()
			}
		})
	})
}
