//go:build linux

package batchconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
)

// TestContractR3NonBlockingBesideABlockedRead: a non-blocking read never
// waits, not even behind a single-datagram read that waits for a datagram.
// With GRO off those are the *net.UDPConn's own methods, which take no part
// in the Conn's read gate but hold the net package's read lock on the
// socket while they wait in the poller; a ReadMessages that went through
// RawConn.Read queued on that lock until a datagram came. With GRO on they
// wait, parked, on the read gate.
func TestContractR3NonBlockingBesideABlockedRead(t *testing.T) {
	readers := []struct {
		name string
		read func(c *batchconn.Conn) error
	}{
		{"ReadFrom", func(c *batchconn.Conn) error { _, _, err := c.ReadFrom(make([]byte, 10)); return err }},
		{"ReadFromUDP", func(c *batchconn.Conn) error { _, _, err := c.ReadFromUDP(make([]byte, 10)); return err }},
		{"ReadFromUDPAddrPort", func(c *batchconn.Conn) error { _, _, err := c.ReadFromUDPAddrPort(make([]byte, 10)); return err }},
		{"ReadMsgUDP", func(c *batchconn.Conn) error {
			_, _, _, _, err := c.ReadMsgUDP(make([]byte, 10), make([]byte, 64))
			return err
		}},
		{"ReadMsgUDPAddrPort", func(c *batchconn.Conn) error {
			_, _, _, _, err := c.ReadMsgUDPAddrPort(make([]byte, 10), make([]byte, 64))
			return err
		}},
		{"Read", func(c *batchconn.Conn) error { _, err := c.Read(make([]byte, 10)); return err }},
		{"ReadMessages", func(c *batchconn.Conn) error {
			_, err := c.ReadMessages(context.Background(), recvMsgs(1, 10, 0), 0)
			return err
		}},
	}
	for _, gro := range []bool{false, true} {
		for _, rd := range readers {
			t.Run(groName(gro)+", behind "+rd.name, func(t *testing.T) {
				c := reader(t, "udp4", gro)
				blocked := make(chan error, 1)
				go func() { blocked <- rd.read(c) }()
				for !inIOWait("batchconn.(*Conn)." + rd.name) {
					select {
					case err := <-blocked:
						t.Fatalf("the blocking read returned (%v) with nothing sent", err)
					case <-time.After(time.Millisecond):
					}
				}
				nonBlocking := make(chan error, 1)
				go func() {
					for i := range 10 {
						flags := unix.MSG_DONTWAIT
						if i >= 5 {
							c.SetBlocking(false)
							flags = 0
						}
						n, err := c.ReadMessages(context.Background(), recvMsgs(4, 10, 0), flags)
						if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) || !errors.Is(err, syscall.EAGAIN) {
							nonBlocking <- fmt.Errorf("non-blocking read %d = %d, %v; want 0, ErrWouldBlock", i, n, err)
							return
						}
					}
					nonBlocking <- nil
				}()
				// A guard, not a measurement: a datagram lets both finish,
				// and the order shows whether the calls waited.
				tx := listen(t, "udp4")
				after(t, 10*time.Second, func() {
					tx.WriteToUDPAddrPort([]byte("guard"), addrOf(c))
				})
				select {
				case err := <-nonBlocking:
					if err != nil {
						t.Fatal(err)
					}
				case err := <-blocked:
					t.Fatalf("the blocked read returned (%v) before the non-blocking calls did: they waited behind it", err)
				}
				c.Close()
				if err := <-blocked; !errors.Is(err, net.ErrClosed) {
					t.Fatalf("the blocked read after Close: %v, want net.ErrClosed", err)
				}
			})
		}
	}
}
