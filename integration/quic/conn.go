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
// batched and whose reads take many packets per system call, with UDP GRO
// where the kernel has it. It is not a *net.UDPConn but has the methods quic-go looks for in
// one (see the package documentation), so quic-go treats it as one. All
// methods are safe for concurrent use.
//
// Conn does not embed *net.UDPConn on purpose: every method quic-go uses is
// implemented here, so no write can bypass the batcher and quic-go reads
// through [Conn.ReadBatch] rather than from the file descriptor directly
// (where, with GRO on, it would meet coalesced buffers it cannot parse).
type Conn struct {
	udp    *net.UDPConn
	s      *sender
	r      reader // quic-go's reads, through batchconn
	laddr  net.Addr
	reads  atomic.Uint64 // ReadBatch calls
	closed atomic.Bool
}

// The interfaces quic-go type-asserts on a Transport's Conn (v0.66).
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
	gro        bool
}

// DefaultQueueDepth was the number of packets [Wrap] let wait; the queue
// is now bounded by bytes alone.
//
// Deprecated: see [WithQueueDepth].
const DefaultQueueDepth = 128

// DefaultQueueBytes is the size of the queue in which [Wrap] lets packets
// wait, copied, for the send in flight, unless [WithQueueBytes] says
// otherwise: three of quic-go's 20 KiB GSO buffers, or about 45 single
// packets. Packets that wait are already counted as sent by quic-go, so a
// longer queue only adds delay (measured with cmd/quicbench: 256 KiB was
// slower than 64 KiB).
const DefaultQueueBytes = 64 << 10

// WithQueueDepth(0) turns the queue off, as [WithAsync](false) does. Other
// values are accepted and ignored: the queue is bounded by bytes alone
// ([WithQueueBytes]), since it became batchconn's write queue.
//
// Deprecated: use WithAsync(false) to turn the queue off and
// WithQueueBytes to size it.
func WithQueueDepth(n int) Option {
	return func(c *config) { c.queueDepth = max(0, n) }
}

// WithQueueBytes sets the size of the queue, in bytes (default
// [DefaultQueueBytes]): each packet takes its length, its control
// messages' and 40 bytes. A packet larger than the whole queue is sent
// directly, after the packets queued before it; a size of 0 turns the
// queue off, as [WithAsync](false) does.
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
// default): WriteMsgUDP copies it into batchconn's write queue
// ([batchconn.WithWriteQueue]) and returns, and a goroutine of the
// batchconn.Conn sends the queue in batches, so a single connection gets
// batched too, at the cost of a copy per packet and a goroutine hand-off.
// WithAsync(false) selects combining: nothing is copied; every packet goes
// to batchconn's group commit, which sends a writer's packet at once when
// no send is in flight and combines the writers that arrive during one
// (the queue size does not apply). Long-header packets are sent by their
// writer either way. Off Linux the queue is always off.
func WithAsync(enabled bool) Option {
	return func(c *config) { c.async = enabled }
}

// WithGRO sets whether the socket receives with UDP generic receive offload
// (Linux 5.0 and later): the kernel then hands up runs of datagrams of one
// flow, such as the segments of a peer's GSO send, as one buffer, and
// [Conn.ReadBatch] splits them back into packets for quic-go, which cannot
// parse GRO itself. It is on by default; the environment variable
// BATCHCONN_DISABLE_GRO=1 turns it off whatever this says. Where the kernel
// lacks it, reads go on without it ([Stats].GROOff says why).
func WithGRO(enabled bool) Option {
	return func(c *config) { c.gro = enabled }
}

// Wrap returns a Conn that sends and receives through batchconn on udp. The Conn owns udp
// from then on: use only the Conn, and close the Conn rather than udp. Nil
// options are ignored, as batchconn.New ignores them.
func Wrap(udp *net.UDPConn, opts ...Option) (*Conn, error) {
	if udp == nil {
		return nil, errors.New("quicbatch: nil *net.UDPConn")
	}
	cfg := config{queueDepth: DefaultQueueDepth, queueBytes: DefaultQueueBytes, gso: true, async: true, gro: true}
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
	return &Conn{udp: udp, s: s, r: reader{bc: s.bc, groAsked: cfg.gro}, laddr: udp.LocalAddr()}, nil
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

// SetReadDeadline sets the read deadline. It interrupts a ReadBatch in
// progress with a timeout error, which quic.Transport.Close relies on, and
// a deadline that has passed fails reads at once, even with split packets
// still waiting in the Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.r.bc.SetReadDeadline(t) }

// SetWriteDeadline bounds both the wait for socket space and the wait for
// room in the queue. A write that runs out of time fails with
// [os.ErrDeadlineExceeded]; a queued packet whose send runs out of time is
// dropped.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.bc.SetWriteDeadline(t) }

// SyscallConn returns the wrapped socket's raw connection, through the
// batchconn.Conn, which so sees the options set on it (see
// [batchconn.Conn.SyscallConn]). quic-go uses it to set socket options and
// to detect UDP GSO.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.r.bc.SyscallConn() }

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
	if c.closed.Swap(true) {
		return &net.OpError{Op: "close", Net: "udp", Source: c.laddr, Err: net.ErrClosed}
	}
	return c.s.bc.Close()
}

// Stats are counters of a [Conn] since [Wrap].
type Stats struct {
	Writes     uint64 // packets accepted by WriteMsgUDP and WriteTo
	Queued     uint64 // of those, copied into the queue (the writer returned before the send)
	QueueWaits uint64 // writes that blocked because the queue was full

	Batches  uint64 // batches the queue was sent in
	Syscalls uint64 // send system calls made by batchconn (on Linux)
	Messages uint64 // packets (datagrams or GSO buffers) the kernel accepted
	Bytes    uint64 // payload bytes the kernel accepted
	MaxBatch uint64 // most packets in one batch of the queue

	GSOSplits   uint64 // queued GSO buffers sent as separate packets after EIO
	DropMsgSize uint64 // queued packets dropped on EMSGSIZE
	Dropped     uint64 // queued packets dropped for any other error (see the package docs)

	GSO    bool   // batchconn's own GSO coalescing is on (Linux)
	GSOOff string // why it is off: WithGSO(false), QUIC_GO_DISABLE_GSO, or batchconn's reason

	// The receive side. quic-go reads only through ReadBatch; ReadMsgUDP
	// and ReadFrom are counted too while GRO is on.
	ReadBatches  uint64 // ReadBatch calls
	RecvSyscalls uint64 // receive system calls (recvmmsg on Linux), including those that found nothing
	RecvPackets  uint64 // packets handed to the caller
	RecvBytes    uint64 // payload bytes handed to the caller
	GROBuffers   uint64 // coalesced buffers the kernel returned, split into packets
	GROPackets   uint64 // packets that arrived in those buffers
	GRO          bool   // the socket receives with UDP GRO
	GROOff       string // why GRO is off: WithGRO(false), BATCHCONN_DISABLE_GRO or the kernel's error
}

// MessagesPerSyscall returns Messages / Syscalls, or 0 before the first send.
func (s Stats) MessagesPerSyscall() float64 {
	if s.Syscalls == 0 {
		return 0
	}
	return float64(s.Messages) / float64(s.Syscalls)
}

// PacketsPerRecvSyscall returns RecvPackets / RecvSyscalls, or 0 before the
// first read.
func (s Stats) PacketsPerRecvSyscall() float64 {
	if s.RecvSyscalls == 0 {
		return 0
	}
	return float64(s.RecvPackets) / float64(s.RecvSyscalls)
}

// PacketsPerGROBuffer returns GROPackets / GROBuffers, or 0 before the first
// coalesced buffer.
func (s Stats) PacketsPerGROBuffer() float64 {
	if s.GROBuffers == 0 {
		return 0
	}
	return float64(s.GROPackets) / float64(s.GROBuffers)
}

// Stats returns the Conn's counters.
func (c *Conn) Stats() Stats {
	st := c.s.stats()
	st.ReadBatches = c.reads.Load()
	rs := c.r.bc.Stats()
	st.RecvSyscalls, st.RecvPackets, st.RecvBytes = rs.RecvSyscalls, rs.RecvMessages, rs.RecvBytes
	st.GROBuffers, st.GROPackets = rs.GROBuffers, rs.GROMessages
	st.GRO, st.GROOff = c.r.bc.GROEnabled(), rs.GROOff
	if !c.r.groAsked {
		st.GROOff = "disabled by WithGRO(false)"
	}
	return st
}

// addrPort converts quic-go's destination, unmapping IPv4-mapped addresses:
// batchconn maps IPv4 destinations itself on dual-stack sockets, and an
// AF_INET socket cannot send to an IPv6-looking address.
func addrPort(a *net.UDPAddr) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap().WithZone(a.Zone), uint16(a.Port))
}
