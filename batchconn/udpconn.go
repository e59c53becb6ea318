package batchconn

import (
	"context"
	"net"
	"net/netip"
	"os"
)

// The rest of *net.UDPConn's method set, so a Conn can stand in for the
// socket it wraps wherever a *net.UDPConn's methods are looked for (x/net's
// ipv4.NewPacketConn, quic-go, pion). Reads on a Conn with GRO on are served
// from the Conn's receive batch, so they see one datagram per call; with GRO
// off they are the UDPConn's own. Writes take turns with the Conn's other
// writers, as WriteTo does.

var _ interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	ReadFromUDP(b []byte) (int, *net.UDPAddr, error)
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
	WriteToUDP(b []byte, addr *net.UDPAddr) (int, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
	File() (*os.File, error)
} = (*Conn)(nil)

// Read reads one datagram, as [net.UDPConn.Read]: a read into an empty b
// returns at once and consumes nothing.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.gro || len(b) == 0 {
		return c.udp.Read(b)
	}
	n, _, _, _, _, err := c.readOne(b, nil, false)
	return n, err
}

// ReadFromUDP reads one datagram, as [net.UDPConn.ReadFromUDP]. With GRO on,
// the *net.UDPAddr is shared as ReadFrom's is.
func (c *Conn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	if !c.gro {
		return c.udp.ReadFromUDP(b)
	}
	n, _, _, _, addr, err := c.readOne(b, nil, true)
	return n, addr, err
}

// ReadFromUDPAddrPort reads one datagram, as
// [net.UDPConn.ReadFromUDPAddrPort].
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if !c.gro {
		return c.udp.ReadFromUDPAddrPort(b)
	}
	n, _, _, src, _, err := c.readOne(b, nil, false)
	return n, src, err
}

// ReadMsgUDPAddrPort reads one datagram and its control messages, as
// [net.UDPConn.ReadMsgUDPAddrPort].
func (c *Conn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	if !c.gro {
		return c.udp.ReadMsgUDPAddrPort(b, oob)
	}
	n, oobn, flags, addr, _, err = c.readOne(b, oob, false)
	if err != nil {
		addr = c.noSource() // as the UDPConn reports a failed read's source
	}
	return n, oobn, flags, addr, err
}

// writeLocked runs a single-datagram write in turn with the Conn's other
// writers; addr is for the error if the turn never comes.
func (c *Conn) writeLocked(addr net.Addr) error {
	if err := c.lock(context.Background()); err != nil {
		if addr == nil {
			addr = c.udp.RemoteAddr()
		}
		return &net.OpError{Op: "write", Net: c.laddr.Network(), Source: c.laddr, Addr: addr, Err: err}
	}
	return nil
}

// Write writes one datagram to the connected peer, as [net.UDPConn.Write].
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.writeLocked(nil); err != nil {
		return 0, err
	}
	defer c.unlock()
	return c.udp.Write(b)
}

// WriteToUDP writes one datagram, as [net.UDPConn.WriteToUDP].
func (c *Conn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	var a net.Addr
	if addr != nil {
		a = addr
	}
	if err := c.writeLocked(a); err != nil {
		return 0, err
	}
	defer c.unlock()
	return c.udp.WriteToUDP(b, addr)
}

// WriteToUDPAddrPort writes one datagram, as [net.UDPConn.WriteToUDPAddrPort].
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if err := c.writeLocked(addrPortAddr(addr)); err != nil {
		return 0, err
	}
	defer c.unlock()
	return c.udp.WriteToUDPAddrPort(b, addr)
}

// WriteMsgUDPAddrPort writes one datagram with control messages, as
// [net.UDPConn.WriteMsgUDPAddrPort].
func (c *Conn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	if err := c.writeLocked(addrPortAddr(addr)); err != nil {
		return 0, 0, err
	}
	defer c.unlock()
	return c.udp.WriteMsgUDPAddrPort(b, oob, addr)
}

func addrPortAddr(ap netip.AddrPort) net.Addr {
	if !ap.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// File returns a copy of the socket's file descriptor, as
// [net.UDPConn.File]. Reading from it bypasses the Conn: with GRO on it
// would see coalesced buffers (see [WithGRO]).
func (c *Conn) File() (*os.File, error) { return c.udp.File() }
