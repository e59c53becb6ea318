// Copyright 2013 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/mockserver_test.go (its packet-conn half);
// see LICENSE-GO. The listeners are made by the test's mode.

//go:build unix

package gonettest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

func newLocalPacketListener(t testing.TB, m *mode, network string, lcOpt ...*net.ListenConfig) udpConn {
	var lc *net.ListenConfig
	switch len(lcOpt) {
	case 0:
		lc = new(net.ListenConfig)
	case 1:
		lc = lcOpt[0]
	default:
		t.Helper()
		t.Fatal("too many ListenConfigs passed to newLocalListener: want 0 or 1")
	}

	listenPacket := func(net, addr string) udpConn {
		c, err := m.ListenConfigPacket(lc, net, addr)
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
		return c
	}

	t.Helper()
	switch network {
	case "udp":
		if supportsIPv4() {
			return listenPacket("udp4", "127.0.0.1:0")
		}
		if supportsIPv6() {
			return listenPacket("udp6", "[::1]:0")
		}
	case "udp4":
		if supportsIPv4() {
			return listenPacket("udp4", "127.0.0.1:0")
		}
	case "udp6":
		if supportsIPv6() {
			return listenPacket("udp6", "[::1]:0")
		}
	}

	t.Fatalf("%s is not supported", network)
	return nil
}

func newDualStackPacketListener(m *mode) (cs []udpConn, err error) {
	var args = []struct {
		network string
		net.UDPAddr
	}{
		{"udp4", net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}},
		{"udp6", net.UDPAddr{IP: net.IPv6loopback}},
	}
	for i := 0; i < 64; i++ {
		var port int
		var cs []udpConn
		for _, arg := range args {
			arg.UDPAddr.Port = port
			c, err := m.ListenUDP(arg.network, &arg.UDPAddr)
			if err != nil {
				continue
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			cs = append(cs, c)
		}
		if len(cs) != len(args) {
			for _, c := range cs {
				c.Close()
			}
			continue
		}
		return cs, nil
	}
	return nil, errors.New("no dualstack port available")
}

type localPacketServer struct {
	pcmu       sync.RWMutex
	PacketConn udpConn
	done       chan bool // signal that indicates server stopped
}

func (ls *localPacketServer) buildup(handler func(*localPacketServer, udpConn)) error {
	go func() {
		handler(ls, ls.PacketConn)
		close(ls.done)
	}()
	return nil
}

func (ls *localPacketServer) teardown() error {
	ls.pcmu.Lock()
	if ls.PacketConn != nil {
		ls.PacketConn.Close()
		<-ls.done
		ls.PacketConn = nil
	}
	ls.pcmu.Unlock()
	return nil
}

func newLocalPacketServer(t testing.TB, m *mode, network string) *localPacketServer {
	t.Helper()
	c := newLocalPacketListener(t, m, network)
	return &localPacketServer{PacketConn: c, done: make(chan bool)}
}

type packetListener struct {
	PacketConn udpConn
}

func (pl *packetListener) newLocalServer() *localPacketServer {
	return &localPacketServer{PacketConn: pl.PacketConn, done: make(chan bool)}
}

func packetTransponder(c udpConn, ch chan<- error) {
	defer close(ch)

	c.SetDeadline(time.Now().Add(someTimeout))
	c.SetReadDeadline(time.Now().Add(someTimeout))
	c.SetWriteDeadline(time.Now().Add(someTimeout))

	b := make([]byte, 256)
	n, peer, err := c.ReadFrom(b)
	if err != nil {
		if perr := parseReadError(err); perr != nil {
			ch <- perr
		}
		ch <- err
		return
	}
	if peer == nil { // for connected-mode sockets
		switch c.LocalAddr().Network() {
		case "udp":
			peer, err = net.ResolveUDPAddr("udp", string(b[:n]))
		}
		if err != nil {
			ch <- err
			return
		}
	}
	if _, err := c.WriteTo(b[:n], peer); err != nil {
		if perr := parseWriteError(err); perr != nil {
			ch <- perr
		}
		ch <- err
		return
	}
}
