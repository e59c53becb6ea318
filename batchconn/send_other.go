//go:build !unix

package batchconn

import (
	"context"
	"net"
	"net/netip"
)

// sendState holds a Conn's reusable send state on platforms without Unix
// sockets APIs (Windows, and the rest): one WriteMsgUDPAddrPort per message.
//
// These platforms give no way to try a send without waiting, so a
// non-blocking WriteMessages there may still wait for the socket (Windows
// rarely makes UDP senders wait at all), and flags are not passed on.
type sendState struct {
	c          *Conn
	scratch    []byte
	writableFn func(fd uintptr) bool
}

// hostCmsg is the control message layout of these platforms: Windows's
// WSACMSGHDR is Linux's struct cmsghdr (a size_t length, two ints, aligned
// to the pointer size).
var hostCmsg = linuxCmsg

func (s *sendState) init(c *Conn) {
	s.c = c
	s.writableFn = func(uintptr) bool { return true }
}

// msgDontwait is 0: there is no such flag here.
const msgDontwait = 0

// writable would report whether the socket can take data now; these
// platforms cannot tell without writing, so a writer that must not wait
// does not wait behind one inside a *net.UDPConn method (see gate).
func (c *Conn) writable() bool { return false }

// send sends msgs one write each until all are accepted or one fails. The
// caller holds the write gate. Context cancellation is armed up front,
// because the wait happens inside the net package.
func (c *Conn) send(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	s := &c.tx
	c.ctx = ctx
	c.zones.tick()
	c.arm()
	for i := range msgs {
		m := &msgs[i]
		if err := checkMsg(m, hostCmsg); err != nil {
			return i, c.opError(&m.Addr, err)
		}
		if m.Addr != (netip.AddrPort{}) {
			if _, _, err := checkDest(m.Addr, c.sock4, c.v6only, &c.zones); err != nil {
				return i, c.opError(&m.Addr, err)
			}
		}
		b := gather(&s.scratch, m)
		n, _, err := c.udp.WriteMsgUDPAddrPort(b, m.OOB, m.Addr)
		c.stats.syscalls.Add(1)
		if err != nil {
			c.zones.failed(m.Addr.Addr().Zone())
			return i, c.opError(&m.Addr, c.waitErr(ctx, unwrapOp(err)))
		}
		m.N = n
		c.stats.messages.Add(1)
		c.stats.bytes.Add(uint64(n))
	}
	return len(msgs), nil
}

// unwrapOp strips the net package's *net.OpError, which opError adds back.
func unwrapOp(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}
