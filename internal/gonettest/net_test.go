// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/net_test.go; see LICENSE-GO.
//
// TestPacketConnClose (its "udp" case) and TestCloseUnblocksReadUDP are
// Go's UDP tests. TestConnClose, TestZeroByteRead and
// TestReadTimeoutUnblocksRead, which Go runs on stream connections, run
// here on a connected UDP socket and its peer, with the same checks.

//go:build unix

package gonettest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestConnClose is Go's on a connected UDP socket (Go's networks are tcp,
// unix and unixpacket).
func TestConnClose(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m *mode) {
		ln, c := newConnPair(t, m)
		defer ln.Close()
		defer c.Close()

		if err := c.Close(); err != nil {
			if perr := parseCloseError(err, false); perr != nil {
				t.Error(perr)
			}
			t.Fatal(err)
		}
		var b [1]byte
		n, err := c.Read(b[:])
		if n != 0 || err == nil {
			t.Fatalf("got (%d, %v); want (0, error)", n, err)
		}
	})
}

func TestPacketConnClose(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m *mode) {
		for _, network := range []string{"udp"} {
			t.Run(network, func(t *testing.T) {
				if !testableNetwork(network) {
					t.Skipf("network %s is not testable on the current platform", network)
				}
				t.Parallel()

				c := newLocalPacketListener(t, m, network)
				defer c.Close()

				if err := c.Close(); err != nil {
					if perr := parseCloseError(err, false); perr != nil {
						t.Error(perr)
					}
					t.Fatal(err)
				}
				var b [1]byte
				n, _, err := c.ReadFrom(b[:])
				if n != 0 || err == nil {
					t.Fatalf("got (%d, %v); want (0, error)", n, err)
				}
			})
		}
	})
}

// TestZeroByteRead is Go's on a connected UDP socket (the client, c) and
// its peer (sc, the listener, where Go has the accepted connection): a
// read into an empty buffer returns at once with (0, nil) on either.
func TestZeroByteRead(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m *mode) {
		sc, c := newConnPair(t, m)
		defer c.Close()
		defer sc.Close()

		n, err := c.Read(nil)
		if n != 0 || err != nil {
			t.Errorf("udp: zero byte client read = %v, %v; want 0, nil", n, err)
		}

		n, err = sc.Read(nil)
		if n != 0 || err != nil {
			t.Errorf("udp: zero byte server read = %v, %v; want 0, nil", n, err)
		}
	})
}

// Tests that a blocked Read is interrupted by a concurrent SetReadDeadline
// modifying that Conn's read deadline to the past.
// See golang.org/cl/30164 which documented this. The net/http package
// depends on this.
//
// The port reads on a connected UDP socket (cs) whose peer never writes,
// as Go's client never writes on its TCP connection.
func TestReadTimeoutUnblocksRead(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		ln, cs := newConnPair(t, m)
		defer ln.Close()
		defer cs.Close()

		errc := make(chan error, 1)
		go func() {
			defer close(errc)
			go func() {
				// TODO: find a better way to wait
				// until we're blocked in the cs.Read
				// call below. Sleep is lame.
				time.Sleep(100 * time.Millisecond)

				// Interrupt the upcoming Read, unblocking it:
				cs.SetReadDeadline(time.Unix(123, 0)) // time in the past
			}()
			var buf [1]byte
			n, err := cs.Read(buf[:1])
			if n != 0 || err == nil {
				errc <- fmt.Errorf("Read = %v, %v; want 0, non-nil", n, err)
			}
		}()
		select {
		case err := <-errc:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			buf := make([]byte, 2<<20)
			buf = buf[:runtime.Stack(buf, true)]
			println("Stacks at timeout:\n", string(buf))
			t.Error(errors.New("timeout waiting for Read to finish"))
		}
	})
}

// Issue 72770: verify that a blocked UDP read is woken up by a Close.
func TestCloseUnblocksReadUDP(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m *mode) {
		var (
			mu   sync.Mutex
			done bool
		)
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			done = true
		}()
		pc, err := m.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(250*time.Millisecond, func() {
			mu.Lock()
			defer mu.Unlock()
			if done {
				return
			}
			t.Logf("closing conn...")
			pc.Close()
		})
		timer := time.AfterFunc(time.Second*10, func() {
			panic("timeout waiting for Close")
		})
		defer timer.Stop()

		n, src, err := pc.ReadFromUDPAddrPort([]byte{})

		// Check for n > 0. Checking err == nil alone isn't enough;
		// on macOS, it returns (n=0, src=0.0.0.0:0, err=nil).
		if n > 0 {
			t.Fatalf("unexpected Read success from ReadFromUDPAddrPort; read %d bytes from %v, err=%v", n, src, err)
		}
		t.Logf("got expected UDP read error")
	})
}
