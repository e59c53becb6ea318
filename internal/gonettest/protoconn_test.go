// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/protoconn_test.go (TestUDPConnSpecificMethods;
// the file's other tests are of TCP, IP and Unix conns); see LICENSE-GO.

//go:build unix

package gonettest

import (
	"net"
	"testing"
	"time"
)

// TestUDPConnSpecificMethods calls every method a *UDPConn has beyond
// net.Conn's and net.PacketConn's, on the conn of the mode: a Conn has them
// all, File included (a copy of the socket's descriptor, as the UDPConn's).
func TestUDPConnSpecificMethods(t *testing.T) {
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
		c.LocalAddr()
		c.RemoteAddr()
		c.SetDeadline(time.Now().Add(someTimeout))
		c.SetReadDeadline(time.Now().Add(someTimeout))
		c.SetWriteDeadline(time.Now().Add(someTimeout))
		c.SetReadBuffer(2048)
		c.SetWriteBuffer(2048)

		wb := []byte("UDPCONN TEST")
		rb := make([]byte, 128)
		if _, err := c.WriteToUDP(wb, c.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromUDP(rb); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.WriteMsgUDP(wb, nil, c.LocalAddr().(*net.UDPAddr)); err != nil {
			condFatalf(t, c.LocalAddr().Network(), "%v", err)
		}
		if _, _, _, _, err := c.ReadMsgUDP(rb, nil); err != nil {
			condFatalf(t, c.LocalAddr().Network(), "%v", err)
		}

		if f, err := c.File(); err != nil {
			condFatalf(t, "file+net", "%v", err)
		} else {
			f.Close()
		}

		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panicked: %v", p)
			}
		}()

		c.WriteToUDP(wb, nil)
		c.WriteMsgUDP(wb, nil, nil)
	})
}
