//go:build unix

package gonettest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/batchconn/batchconn/batchconn"
)

// udpConn is the method set of *net.UDPConn: what the ported tests call, on
// the UDPConn itself or on a *batchconn.Conn standing in for it. Where Go's
// tests assert c.(*UDPConn) to reach a method, the ports call it here.
type udpConn interface {
	net.PacketConn
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	RemoteAddr() net.Addr
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
	SyscallConn() (syscall.RawConn, error)
	File() (*os.File, error)
	ReadFromUDP(b []byte) (int, *net.UDPAddr, error)
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
	WriteToUDP(b []byte, addr *net.UDPAddr) (int, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
}

var (
	_ udpConn = (*net.UDPConn)(nil)
	_ udpConn = (*batchconn.Conn)(nil)
)

// A mode is what the ported tests run on: the *net.UDPConn (the reference)
// or a *batchconn.Conn wrapping it, with UDP GRO off or on. Every socket a
// test opens, through the mode's ListenPacket, ListenUDP, Dial and the rest,
// is of the mode, so a test's peer is one too.
type mode struct {
	name string
	conn bool // wrap every socket in a *batchconn.Conn
	gro  bool // with WithGRO(true)
}

var modes = []*mode{
	{name: "UDPConn"},
	{name: "Conn/GRO off", conn: true},
	{name: "Conn/GRO on", conn: true, gro: true},
}

// forEachMode runs f as a subtest for each mode, named after it. The GRO-on
// mode skips where GRO cannot be turned on (no kernel support, or
// BATCHCONN_DISABLE_GRO), since it would test the GRO-off mode again.
func forEachMode(t *testing.T, f func(t *testing.T, m *mode)) {
	t.Helper()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if m.gro {
				if why := groOff(); why != "" {
					t.Skipf("GRO cannot be turned on here: %s", why)
				}
			}
			f(t, m)
		})
	}
}

// groOff says why a Conn cannot have GRO on, or "" if it can.
var groOff = sync.OnceValue(func() string {
	c, err := batchconn.Listen("udp4", "127.0.0.1:0", batchconn.WithGRO(true))
	if err != nil {
		if c, err = batchconn.Listen("udp6", "[::1]:0", batchconn.WithGRO(true)); err != nil {
			return err.Error()
		}
	}
	defer c.Close()
	return c.Stats().GROOff
})

func (m *mode) options() []batchconn.Option {
	return []batchconn.Option{batchconn.WithGRO(m.gro)}
}

// wrap returns c as a conn of the mode: c itself, or a *batchconn.Conn
// made by batchconn.New. On an error c is closed.
func (m *mode) wrap(c *net.UDPConn) (udpConn, error) {
	if !m.conn {
		return c, nil
	}
	bc, err := batchconn.New(c, m.options()...)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := m.check(bc); err != nil {
		bc.Close()
		return nil, err
	}
	return bc, nil
}

// check makes sure a Conn is what the mode says: GRO on or off as asked,
// and, bound to a wildcard address and not connected, answering from the
// address its peer wrote to (WithReplySource, on by default there), so the
// tests that bind a wildcard exercise reply sources.
func (m *mode) check(c *batchconn.Conn) error {
	if c.GROEnabled() != m.gro {
		return fmt.Errorf("%s: a Conn made with WithGRO(%v) has GROEnabled() = %v (%s)", m.name, m.gro, c.GROEnabled(), c.Stats().GROOff)
	}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() || c.RemoteAddr() != nil {
		return nil
	}
	// The wrapped UDPConn's socket, since the Conn's SyscallConn shows a
	// Control callback the user's own setting of the option.
	on, known, err := replySourceOn(c.UDPConn())
	if err != nil {
		return err
	}
	if known && !on {
		return fmt.Errorf("%s: a Conn on the wildcard address %v does not ask for packet info: reply sources are off", m.name, la)
	}
	return nil
}

// ListenPacket is net.ListenPacket for the mode: batchconn.Listen for a
// Conn.
func (m *mode) ListenPacket(network, address string) (udpConn, error) {
	if m.conn {
		c, err := batchconn.Listen(network, address, m.options()...)
		if err != nil {
			return nil, err
		}
		if err := m.check(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("ListenPacket(%q, %q) made a %T, not a *net.UDPConn", network, address, c)
	}
	return uc, nil
}

// ListenConfigPacket is lc.ListenPacket for the mode.
func (m *mode) ListenConfigPacket(lc *net.ListenConfig, network, address string) (udpConn, error) {
	c, err := lc.ListenPacket(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("ListenPacket(%q, %q) made a %T, not a *net.UDPConn", network, address, c)
	}
	return m.wrap(uc)
}

// ListenUDP is net.ListenUDP for the mode.
func (m *mode) ListenUDP(network string, laddr *net.UDPAddr) (udpConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return m.wrap(c)
}

// ListenMulticastUDP is net.ListenMulticastUDP for the mode.
func (m *mode) ListenMulticastUDP(network string, ifi *net.Interface, gaddr *net.UDPAddr) (udpConn, error) {
	c, err := net.ListenMulticastUDP(network, ifi, gaddr)
	if err != nil {
		return nil, err
	}
	return m.wrap(c)
}

// Dial is net.Dial for the mode: the connected socket it makes, wrapped.
func (m *mode) Dial(network, address string) (udpConn, error) {
	return m.DialWith(&net.Dialer{}, network, address)
}

// DialWith is d.Dial for the mode.
func (m *mode) DialWith(d *net.Dialer, network, address string) (udpConn, error) {
	c, err := d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("Dial(%q, %q) made a %T, not a *net.UDPConn", network, address, c)
	}
	return m.wrap(uc)
}

// DialUDP is net.DialUDP for the mode.
func (m *mode) DialUDP(network string, laddr, raddr *net.UDPAddr) (udpConn, error) {
	c, err := net.DialUDP(network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return m.wrap(c)
}

// DialerUDP is d.DialUDP for the mode.
func (m *mode) DialerUDP(ctx context.Context, d *net.Dialer, network string, laddr, raddr netip.AddrPort) (udpConn, error) {
	c, err := d.DialUDP(ctx, network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return m.wrap(c)
}
