package batchconn

import "net/netip"

// ReadFromAddrPort and WriteToAddrPort are the names pion/ice (v4.4.5 and
// later) looks for on any conn, its AddrPortReaderWriter, to read and
// write without allocating an address per packet; a *net.UDPConn has them
// only as ReadFromUDPAddrPort and WriteToUDPAddrPort.
var _ interface {
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
} = (*Conn)(nil)

// ReadFromAddrPort is [Conn.ReadFromUDPAddrPort], under the name pion/ice
// looks for.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort is [Conn.WriteToUDPAddrPort], under the name pion/ice
// looks for.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}
