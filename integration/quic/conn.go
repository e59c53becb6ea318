package quicbatch

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"
)

// Conn is a net.PacketConn, to pass as quic.Transport.Conn, whose sends are
// batched. It is not a *net.UDPConn but has the methods quic-go looks for in
// one (see the package documentation), so quic-go treats it as one. All
// methods are safe for concurrent use.
//
// Conn does not embed *net.UDPConn on purpose: every method quic-go uses is
// implemented here, so no write can bypass the batcher and quic-go reads
// through [Conn.ReadBatch] rather than from the file descriptor directly.
type Conn struct {
	udp   *net.UDPConn
	rx    *ipv4.PacketConn // batched reads on udp
	s     *sender
	laddr net.Addr
	reads atomic.Uint64 // ReadBatch calls
}

// The interfaces quic-go type-asserts on a Transport's Conn (v0.65).
var (
	_ quic.OOBCapablePacketConn = (*Conn)(nil)
	_ interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
	} = (*Conn)(nil)
	_ interface{ SetWriteBuffer(int) error } = (*Conn)(nil)
)

// An Option configures [Wrap].
type Option func(*config)

type config struct {
	queueDepth int
	queueBytes int
	gso        bool
	gsoOff     string // why gso is false, for Stats.GSOOff
	async      bool
}

// DefaultQueueDepth is the number of packets [Wrap] lets wait, copied, for
// the send in flight, unless [WithQueueDepth] says otherwise.
const DefaultQueueDepth = 128

// DefaultQueueBytes is the number of payload bytes [Wrap] lets wait, copied,
// for the send in flight, unless [WithQueueBytes] says otherwise: three of
// quic-go's 20 KiB GSO buffers, or 45 single packets. Packets that wait are
// already counted as sent by quic-go, so a longer queue only adds delay
// (measured with cmd/quicbench: 256 KiB was slower than 64 KiB).
const DefaultQueueBytes = 64 << 10

// maxQueueDepth keeps one WriteMessages call within batchconn.MaxMessages
// (1024, Linux's UIO_MAXIOV) with room for the writers that wait uncopied.
const maxQueueDepth = 512

// WithQueueDepth sets how many copied packets may wait for the send in
// flight (default [DefaultQueueDepth], at most 512). Each holds a buffer of
// up to 20 KiB, quic-go's largest GSO buffer, allocated when first needed.
// Writers that find the queue full block until there is room.
// A depth of 0 disables copying: every writer waits for its own packet.
func WithQueueDepth(n int) Option {
	return func(c *config) { c.queueDepth = max(0, min(n, maxQueueDepth)) }
}

// WithQueueBytes sets how many payload bytes may wait, copied, for the send
// in flight (default [DefaultQueueBytes]). One packet is always let in.
func WithQueueBytes(n int) Option {
	return func(c *config) { c.queueBytes = max(0, n) }
}

// WithGSO sets whether batchconn may coalesce runs of equal-sized packets
// into UDP GSO sends of its own (Linux only). quic-go's own GSO buffers are
// passed through either way. The default is on, unless the environment
// variable QUIC_GO_DISABLE_GSO is true: a user who turned GSO off for
// quic-go wants it off for the socket.
func WithGSO(enabled bool) Option {
	return func(c *config) {
		c.gso, c.gsoOff = enabled, ""
		if !enabled {
			c.gsoOff = "disabled by WithGSO(false)"
		}
	}
}

// envQuicGoDisableGSO is quic-go's own switch for GSO, honoured here too.
const envQuicGoDisableGSO = "QUIC_GO_DISABLE_GSO"

// WithAsync sets whether every short-header packet is queued (on, the
// default): WriteMsgUDP copies it and returns, and a goroutine of the Conn
// sends the queue in batches, so a single connection gets batched too, at
// the cost of a copy per packet and a goroutine hand-off. WithAsync(false)
// selects combining: nothing is copied; every packet goes to batchconn's
// group commit, which sends a writer's packet at once when no send is in
// flight and combines the writers that arrive during one (the queue depth
// and bytes do not apply). Long-header packets are sent by their writer
// either way.
func WithAsync(enabled bool) Option {
	return func(c *config) { c.async = enabled }
}

// Wrap returns a Conn that sends through batchconn on udp. The Conn owns udp
// from then on: use only the Conn, and close the Conn rather than udp. Nil
// options are ignored, as batchconn.New ignores them.
func Wrap(udp *net.UDPConn, opts ...Option) (*Conn, error) {
	if udp == nil {
		return nil, errors.New("quicbatch: nil *net.UDPConn")
	}
	cfg := config{queueDepth: DefaultQueueDepth, queueBytes: DefaultQueueBytes, gso: true, async: true}
	if v, err := strconv.ParseBool(os.Getenv(envQuicGoDisableGSO)); err == nil && v {
		cfg.gso, cfg.gsoOff = false, "disabled by "+envQuicGoDisableGSO
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s, err := newSender(udp, cfg)
	if err != nil {
		return nil, err
	}
	return &Conn{udp: udp, rx: ipv4.NewPacketConn(udp), s: s, laddr: udp.LocalAddr()}, nil
}

// WriteMsgUDP sends b as one datagram (or, when oob carries UDP_SEGMENT, as
// one GSO buffer the kernel segments) to addr, with the control messages in
// oob passed to the kernel as given. It returns len(b), len(oob) when the
// packet was sent or queued; see the package documentation for which packets
// are queued and how errors are reported.
func (c *Conn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	if addr == nil {
		return 0, 0, c.opError(nil, errMissingAddress)
	}
	if err := c.s.write(b, oob, addr); err != nil {
		return 0, 0, c.opError(addr, err)
	}
	return len(b), len(oob), nil
}

// WriteTo sends p to addr, which must be a *net.UDPAddr, through the same
// queue as [Conn.WriteMsgUDP].
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok || a == nil {
		return 0, c.opError(addr, syscall.EINVAL)
	}
	n, _, err := c.WriteMsgUDP(p, nil, a)
	return n, err
}

var errMissingAddress = errors.New("missing address")

// opError gives err the shape of a *net.UDPConn write error. A batchconn
// error naming sendmmsg is renamed to sendmsg: that is the name quic-go's
// first-packet EPERM retry looks for, and a *net.UDPConn would have used it.
func (c *Conn) opError(addr net.Addr, err error) error {
	if op, ok := errors.AsType[*net.OpError](err); ok {
		err = op.Err
	}
	if se, ok := errors.AsType[*os.SyscallError](err); ok && se.Syscall == "sendmmsg" {
		err = os.NewSyscallError("sendmsg", se.Err)
	}
	if addr != nil {
		if a, ok := addr.(*net.UDPAddr); ok && a == nil {
			addr = nil
		}
	}
	return &net.OpError{Op: "write", Net: "udp", Source: c.laddr, Addr: addr, Err: err}
}

// ReadBatch reads up to len(ms) datagrams with their control messages in one
// recvmmsg, as golang.org/x/net/ipv4.PacketConn.ReadBatch does on the wrapped
// socket. quic-go uses it for all reads. A read deadline interrupts it.
func (c *Conn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	c.reads.Add(1)
	return c.rx.ReadBatch(ms, flags)
}

// ReadMsgUDP reads one datagram from the wrapped socket.
func (c *Conn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	return c.udp.ReadMsgUDP(b, oob)
}

// ReadFrom reads one datagram from the wrapped socket.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) { return c.udp.ReadFrom(p) }

// LocalAddr returns the wrapped socket's local address, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// SetDeadline sets the read and write deadlines, as [Conn.SetReadDeadline]
// and [Conn.SetWriteDeadline] do.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the wrapped socket's read deadline; it interrupts a
// ReadBatch in progress, which quic.Transport.Close relies on.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.udp.SetReadDeadline(t) }

// SetWriteDeadline bounds both the wait for socket space and the wait for
// room in the queue. A write that runs out of time fails with
// [os.ErrDeadlineExceeded]; a queued packet whose send runs out of time is
// dropped.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.setWriteDeadline(t) }

// SyscallConn returns the wrapped socket's raw connection. quic-go uses it to
// set socket options and to detect UDP GSO.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.udp.SyscallConn() }

// SetReadBuffer sets the wrapped socket's receive buffer size.
func (c *Conn) SetReadBuffer(bytes int) error { return c.udp.SetReadBuffer(bytes) }

// SetWriteBuffer sets the wrapped socket's send buffer size.
func (c *Conn) SetWriteBuffer(bytes int) error { return c.udp.SetWriteBuffer(bytes) }

// Flush waits until every queued packet has been handed to the kernel (or
// dropped under the error policy). It returns an error wrapping
// [net.ErrClosed] once a send has found the socket closed, else nil.
func (c *Conn) Flush() error {
	if err := c.s.flush(); err != nil {
		return c.opError(nil, err)
	}
	return nil
}

// Close stops accepting writes, flushes the queue for at most 100 ms and
// closes the wrapped socket, which ends a ReadBatch in progress.
func (c *Conn) Close() error {
	if err := c.s.close(); err != nil {
		return &net.OpError{Op: "close", Net: "udp", Source: c.laddr, Err: err}
	}
	return nil
}

// Stats are counters of a [Conn] since [Wrap].
type Stats struct {
	Writes     uint64 // packets accepted by WriteMsgUDP and WriteTo
	Queued     uint64 // of those, copied into the queue (the writer returned before the send)
	QueueWaits uint64 // writes that blocked because the queue was full

	Batches  uint64 // batchconn WriteMessages calls
	Syscalls uint64 // send system calls made by batchconn (on Linux)
	Messages uint64 // packets (datagrams or GSO buffers) the kernel accepted
	Bytes    uint64 // payload bytes the kernel accepted
	MaxBatch uint64 // most packets handed to one WriteMessages call

	GSOSplits   uint64 // queued GSO buffers sent as separate packets after EIO
	DropMsgSize uint64 // queued packets dropped on EMSGSIZE
	Dropped     uint64 // queued packets dropped for any other error (see the package docs)

	GSO    bool   // batchconn's own GSO coalescing is on (Linux)
	GSOOff string // why it is off: WithGSO(false), QUIC_GO_DISABLE_GSO, or batchconn's reason

	ReadBatches uint64 // ReadBatch calls (quic-go reads only through these)
}

// MessagesPerSyscall returns Messages / Syscalls, or 0 before the first send.
func (s Stats) MessagesPerSyscall() float64 {
	if s.Syscalls == 0 {
		return 0
	}
	return float64(s.Messages) / float64(s.Syscalls)
}

// Stats returns the Conn's counters.
func (c *Conn) Stats() Stats {
	st := c.s.stats()
	st.ReadBatches = c.reads.Load()
	return st
}

// addrPort converts quic-go's destination, unmapping IPv4-mapped addresses:
// batchconn maps IPv4 destinations itself on dual-stack sockets, and an
// AF_INET socket cannot send to an IPv6-looking address.
func addrPort(a *net.UDPAddr) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap().WithZone(a.Zone), uint16(a.Port))
}
