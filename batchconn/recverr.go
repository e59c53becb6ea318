package batchconn

import "syscall"

// With IP_RECVERR (IPV6_RECVERR for IPv6 destinations) on, Linux reports a
// datagram its qdisc drops as an ENOBUFS send, where it otherwise reports
// it sent. A GSO send is then reported accepted if any of its segments was
// queued, so coalescing would change n (C14): a Conn makes no GSO runs to
// destinations of a family whose option is on. It learns the options at
// New and after every Control call through [Conn.SyscallConn], which is how
// code sets socket options on a Conn (x/net's ipv4 and ipv6 packages,
// quic-go): no system call per send. Set any other way (the UDPConn's own
// SyscallConn, File, another descriptor of the socket), they are not seen.

// Bits of Conn.recvErr.
const (
	recvErr4 = 1 << iota // IP_RECVERR: IPv4 destinations, and IPv4-mapped ones of a dual-stack socket
	recvErr6             // IPV6_RECVERR: IPv6 destinations
)

// learnRecvErr reads the socket's IP_RECVERR and IPV6_RECVERR into
// c.recvErr.
func (c *Conn) learnRecvErr() {
	var on uint32
	c.rc.Control(func(fd uintptr) { on = recvErrOn(fd, c.sock4) })
	c.recvErr.Store(on)
}

// rawConn is the syscall.RawConn [Conn.SyscallConn] returns: the socket's,
// which tells the Conn when socket options may have changed.
type rawConn struct {
	c  *Conn
	rc syscall.RawConn
}

func (r *rawConn) Control(f func(fd uintptr)) error {
	var err error
	if r.c.reply != nil {
		err = r.c.reply.control(r.rc, f)
	} else {
		err = r.rc.Control(f)
	}
	r.c.learnRecvErr()
	return err
}

func (r *rawConn) Read(f func(fd uintptr) (done bool)) error  { return r.rc.Read(f) }
func (r *rawConn) Write(f func(fd uintptr) (done bool)) error { return r.rc.Write(f) }
