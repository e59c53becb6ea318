// Copyright 2011 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/dial_test.go (the PacketDial halves of
// TestDialerControl and TestDialContext, for "udp", "udp4", "udp6"); see
// LICENSE-GO. batchconn has no Dial: the mode wraps the socket the Dialer
// makes, after its Control or ControlContext has run on it.

//go:build unix

package gonettest

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
)

func TestDialerControl(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	case "js", "wasip1":
		t.Skipf("skipping: fake net does not support Dialer.Control")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		t.Run("PacketDial", func(t *testing.T) {
			for _, network := range []string{"udp", "udp4", "udp6"} {
				if !testableNetwork(network) {
					continue
				}
				c1 := newLocalPacketListener(t, m, network)
				defer c1.Close()
				d := net.Dialer{Control: controlOnConnSetup}
				c2, err := m.DialWith(&d, network, c1.LocalAddr().String())
				if err != nil {
					t.Error(err)
					continue
				}
				c2.Close()
			}
		})
	})
}

// idKey is the context key of Go's test, "id", typed as a key should be.
const idKey = contextKey("id")

type contextKey string

func TestDialContext(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	case "js", "wasip1":
		t.Skipf("skipping: fake net does not support Dialer.ControlContext")
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		t.Run("PacketDial", func(t *testing.T) {
			var err error
			for i, network := range []string{"udp", "udp4", "udp6"} {
				if !testableNetwork(network) {
					continue
				}
				c1 := newLocalPacketListener(t, m, network)
				defer c1.Close()
				var id int
				d := net.Dialer{ControlContext: func(ctx context.Context, network string, address string, c syscall.RawConn) error {
					id = ctx.Value(idKey).(int)
					return controlOnConnSetup(network, address, c)
				}}
				var c2 udpConn
				switch network {
				case "udp", "udp4", "udp6":
					var raddr netip.AddrPort
					raddr, err = netip.ParseAddrPort(c1.LocalAddr().String())
					if err != nil {
						t.Error(err)
						continue
					}
					// Go's test declares raddr and err here with :=, so
					// that the dial's error goes unseen below (and a
					// failed dial panics at c2.Close); the port reports it.
					c2, err = m.DialerUDP(context.WithValue(context.Background(), idKey, i+1), &d, network, (*net.UDPAddr)(nil).AddrPort(), raddr)
				}
				if err != nil {
					t.Error(err)
					continue
				}
				if id != i+1 {
					t.Errorf("%s: got id %d, want %d", network, id, i+1)
				}
				c2.Close()
			}
		})
	})
}
