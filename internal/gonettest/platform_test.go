// Copyright 2015 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/platform_test.go, with the helpers the
// ported tests take from src/net/interface_test.go, rawconn_unix_test.go,
// error_unix_test.go, conn_test.go and ipsock.go; see LICENSE-GO.

//go:build unix

package gonettest

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// someTimeout is from src/net/conn_test.go.
const someTimeout = 1 * time.Hour

// noDeadline is the zero time, as in src/net/net.go.
var noDeadline = time.Time{}

// The net package's probes of the IP stack (supportsIPv4, supportsIPv6,
// supportsIPv4map) are unexported; these ask the same questions of the
// exported API. supportsIPv4map reads the net package's own answer: a
// wildcard "udp" socket is an AF_INET6 one (dual-stack) exactly when the
// net package found IPv4-mapped addresses usable.
var (
	supportsIPv4 = sync.OnceValue(func() bool { return canListen("udp4", "127.0.0.1:0") })
	supportsIPv6 = sync.OnceValue(func() bool { return canListen("udp6", "[::1]:0") })

	supportsIPv4map = sync.OnceValue(func() bool {
		c, err := net.ListenUDP("udp", nil)
		if err != nil {
			return false
		}
		defer c.Close()
		family, err := socketFamily(c)
		return err == nil && family == syscall.AF_INET6
	})
)

func canListen(network, address string) bool {
	c, err := net.ListenPacket(network, address)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// socketFamily returns the address family of c's socket (syscall.AF_INET or
// syscall.AF_INET6), which Go's tests read from the UDPConn's netFD.
func socketFamily(c interface {
	SyscallConn() (syscall.RawConn, error)
}) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sa syscall.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = syscall.Getsockname(int(fd)) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	switch sa.(type) {
	case *syscall.SockaddrInet4:
		return syscall.AF_INET, nil
	case *syscall.SockaddrInet6:
		return syscall.AF_INET6, nil
	}
	return 0, syscall.EAFNOSUPPORT
}

// isWildcard is (*net.UDPAddr).isWildcard.
func isWildcard(a *net.UDPAddr) bool {
	if a == nil || a.IP == nil {
		return true
	}
	return a.IP.IsUnspecified()
}

// testableNetwork reports whether network is testable on the current
// platform configuration. (The ports use only the UDP networks.)
func testableNetwork(network string) bool {
	nw, _, _ := strings.Cut(network, ":")
	switch nw {
	case "tcp4", "udp4", "ip4":
		if !supportsIPv4() {
			return false
		}
	case "tcp6", "udp6", "ip6":
		if !supportsIPv6() {
			return false
		}
	}
	return true
}

// testableListenArgs reports whether arguments are testable on the
// current platform configuration.
//
// Go's version also rules out wildcard addresses in -short mode
// (testenv.HasExternalNetwork), for builders whose firewalls object to a
// port open to the outside; the ports keep them, since the tests send
// nothing off the host, and the wildcard cases are where a Conn's reply
// sources come in (CI's non-root run is a -short one).
func testableListenArgs(network, address, client string) bool {
	if !testableNetwork(network) {
		return false
	}

	var err error
	var addr *net.UDPAddr
	switch nw, _, _ := strings.Cut(network, ":"); nw {
	case "udp", "udp4", "udp6":
		addr, err = net.ResolveUDPAddr("udp", address)
	default:
		return true
	}
	if err != nil {
		return false
	}
	ip := addr.IP
	wildcard := isWildcard(addr)

	// Test functionality of IPv4 communication using AF_INET and
	// IPv6 communication using AF_INET6 sockets.
	if !supportsIPv4() && ip.To4() != nil {
		return false
	}
	if !supportsIPv6() && ip.To16() != nil && ip.To4() == nil {
		return false
	}
	cip := net.ParseIP(client)
	if cip != nil {
		if !supportsIPv4() && cip.To4() != nil {
			return false
		}
		if !supportsIPv6() && cip.To16() != nil && cip.To4() == nil {
			return false
		}
	}

	// Test functionality of IPv4 communication using AF_INET6
	// sockets.
	if !supportsIPv4map() && supportsIPv4() && (network == "tcp" || network == "udp" || network == "ip") && wildcard {
		// At this point, we prefer IPv4 when ip is nil.
		// See favoriteAddrFamily for further information.
		if ip.To16() != nil && ip.To4() == nil && cip.To4() != nil { // a pair of IPv6 server and IPv4 client
			return false
		}
		if (ip.To4() != nil || ip == nil) && cip.To16() != nil && cip.To4() == nil { // a pair of IPv4 server and IPv6 client
			return false
		}
	}

	return true
}

func condFatalf(t *testing.T, network string, format string, args ...any) {
	t.Helper()
	// A few APIs like File and Read/WriteMsg{UDP,IP} are not
	// fully implemented yet on Plan 9 and Windows.
	switch runtime.GOOS {
	case "windows", "js", "wasip1":
		if network == "file+net" {
			t.Logf(format, args...)
			return
		}
	case "plan9":
		t.Logf(format, args...)
		return
	}
	t.Fatalf(format, args...)
}

// loopbackInterface is from src/net/interface_test.go.
func loopbackInterface() *net.Interface {
	ift, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifi := range ift {
		if ifi.Flags&net.FlagLoopback != 0 && ifi.Flags&net.FlagUp != 0 {
			return &ifi
		}
	}
	return nil
}

// ipv6LinkLocalUnicastAddr returns an IPv6 link-local unicast address
// on the given network interface for tests. It returns "" if no
// suitable address is found.
func ipv6LinkLocalUnicastAddr(ifi *net.Interface) string {
	if ifi == nil {
		return ""
	}
	ifat, err := ifi.Addrs()
	if err != nil {
		return ""
	}
	for _, ifa := range ifat {
		if ifa, ok := ifa.(*net.IPNet); ok {
			if ifa.IP.To4() == nil && ifa.IP.IsLinkLocalUnicast() {
				return ifa.IP.String()
			}
		}
	}
	return ""
}

// controlOnConnSetup is from src/net/rawconn_unix_test.go.
func controlOnConnSetup(network string, address string, c syscall.RawConn) error {
	var operr error
	var fn func(uintptr)
	switch network {
	case "tcp", "udp", "ip":
		return errors.New("ambiguous network: " + network)
	case "unix", "unixpacket", "unixgram":
		fn = func(s uintptr) {
			_, operr = syscall.GetsockoptInt(int(s), syscall.SOL_SOCKET, syscall.SO_ERROR)
		}
	default:
		switch network[len(network)-1] {
		case '4':
			fn = func(s uintptr) {
				operr = syscall.SetsockoptInt(int(s), syscall.IPPROTO_IP, syscall.IP_TTL, 1)
			}
		case '6':
			fn = func(s uintptr) {
				operr = syscall.SetsockoptInt(int(s), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, 1)
			}
		default:
			return errors.New("unknown network: " + network)
		}
	}
	if err := c.Control(fn); err != nil {
		return err
	}
	return operr
}

// isPlatformError and isENOBUFS are from src/net/error_unix_test.go.
func isPlatformError(err error) bool {
	_, ok := err.(syscall.Errno)
	return ok
}

func isENOBUFS(err error) bool {
	return errors.Is(err, syscall.ENOBUFS)
}
