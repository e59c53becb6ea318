// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/main_test.go (the test data of
// TestIPv6LinkLocalUnicastUDP); see LICENSE-GO.

//go:build unix

package gonettest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/testnet"
)

// asanEnabled and optimizationOff stand for internal/asan.Enabled and
// internal/testenv.OptimizationOff(): true under the asan and noopt build
// tags (asan_test.go, noopt_test.go).
var asanEnabled, optimizationOff bool

type ipv6LinkLocalUnicastTest struct {
	network, address string
	nameLookup       bool
}

// ipv6LinkLocalUnicastUDPTestData is the UDP part of Go's setupTestData,
// which Go's TestMain runs once; the port runs it where the test runs (see
// linkLocalLoopback).
func ipv6LinkLocalUnicastUDPTestData() []ipv6LinkLocalUnicastTest {
	var ipv6LinkLocalUnicastUDPTests []ipv6LinkLocalUnicastTest
	ifi := loopbackInterface()
	addr := ipv6LinkLocalUnicastAddr(ifi)
	if addr != "" {
		if runtime.GOOS != "dragonfly" {
			ipv6LinkLocalUnicastUDPTests = append(ipv6LinkLocalUnicastUDPTests, []ipv6LinkLocalUnicastTest{
				{"udp", "[" + addr + "%" + ifi.Name + "]:0", false},
			}...)
		}
		ipv6LinkLocalUnicastUDPTests = append(ipv6LinkLocalUnicastUDPTests, []ipv6LinkLocalUnicastTest{
			{"udp6", "[" + addr + "%" + ifi.Name + "]:0", false},
		}...)
		switch runtime.GOOS {
		case "darwin", "ios", "dragonfly", "freebsd", "openbsd", "netbsd":
			ipv6LinkLocalUnicastUDPTests = append(ipv6LinkLocalUnicastUDPTests, []ipv6LinkLocalUnicastTest{
				{"udp", "[localhost%" + ifi.Name + "]:0", true},
				{"udp6", "[localhost%" + ifi.Name + "]:0", true},
			}...)
		case "linux":
			ipv6LinkLocalUnicastUDPTests = append(ipv6LinkLocalUnicastUDPTests, []ipv6LinkLocalUnicastTest{
				{"udp", "[ip6-localhost%" + ifi.Name + "]:0", true},
				{"udp6", "[ip6-localhost%" + ifi.Name + "]:0", true},
			}...)
		}
	}
	return ipv6LinkLocalUnicastUDPTests
}

// linkLocalLoopback returns how to run the parts of a test that open
// sockets or look at interfaces, so that they meet a loopback interface
// with an IPv6 link-local address: where they are, if the host's loopback
// interface has one; otherwise in a network namespace of their own whose
// loopback interface is given fe80::1, for which the test must run as root
// on Linux (it skips otherwise). run calls t.Fatal if fn fails.
func linkLocalLoopback(t *testing.T) (run func(t *testing.T, fn func() error)) {
	t.Helper()
	if ipv6LinkLocalUnicastAddr(loopbackInterface()) != "" {
		return func(t *testing.T, fn func() error) {
			t.Helper()
			if err := fn(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skipf("the loopback interface has no IPv6 link-local address, and giving one to the loopback interface of a network namespace of the test's own needs root on Linux")
	}
	p := testnet.NewPair(t, testnet.LinkConfig{}) // skips where namespaces cannot be made
	if !p.A.Addr6.IsValid() {
		t.Skip("the network namespace has no IPv6")
	}
	p.A.Exec(t, "ip", "-6", "addr", "add", "fe80::1/64", "dev", "lo", "nodad")
	if err := p.A.Run(waitLinkLocal); err != nil {
		t.Fatal(err)
	}
	t.Logf("the loopback interface has no IPv6 link-local address: the test runs in network namespace %s, whose loopback interface has fe80::1", p.A.Name)
	return func(t *testing.T, fn func() error) {
		t.Helper()
		if err := p.A.Run(fn); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLinkLocal waits until fe80::1 on the loopback interface takes
// datagrams: the address is there when ip(8) returns, but the kernel adds
// its local route a moment later, and until then a datagram sent to it is
// lost (a test's first datagram was, now and then).
func waitLinkLocal() error {
	const timeout = 5 * time.Second
	laddr := &net.UDPAddr{IP: net.ParseIP("fe80::1"), Zone: "lo"}
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.ListenUDP("udp6", laddr)
		if err == nil {
			_, err = c.WriteTo([]byte("ready?"), c.LocalAddr())
			if err == nil {
				c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
				_, _, err = c.ReadFrom(make([]byte, 8))
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fe80::1 on the loopback interface takes no datagrams after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
