package batchconn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Conn wraps a *net.UDPConn and adds [Conn.WriteMessages] and
// [Conn.ReadMessages]: many datagrams per system call. It has the whole
// method set of *net.UDPConn and satisfies net.PacketConn, so it can stand
// in for the UDPConn it wraps.
//
// A Conn is safe for concurrent use by multiple goroutines. Writes made
// through the Conn take turns (the kernel serialises writes on one socket
// anyway), and concurrent single-datagram writes leave together (group
// commit, see [Conn.Write]); reads take turns among themselves, and a read
// never holds up a write.
type Conn struct {
	udp   *net.UDPConn
	rc    syscall.RawConn
	laddr net.Addr

	sock4  bool // AF_INET socket (else AF_INET6)
	v6only bool // AF_INET6 socket with IPV6_V6ONLY
	peer4  bool // connected to an IPv4 (or IPv4-mapped) peer

	blocking atomic.Bool
	closed   atomic.Bool
	closing  chan struct{}
	closeMu  sync.Once

	// gso is nil while UDP GSO is in use; otherwise it points to the reason it
	// is off. It only ever goes from nil to non-nil.
	gso atomic.Pointer[string]

	stats struct {
		syscalls, messages, bytes, gsoBatches, gsoFallbacks atomic.Uint64
	}

	// bufMsgs keeps the Message slices of finished WriteBuffersTo calls.
	bufMsgs msgSlices

	// zones names IPv6 zones for reads and writes alike.
	zones zoneTable

	// recvErr says which of IP_RECVERR and IPV6_RECVERR are on (recverr.go).
	recvErr atomic.Uint32

	// wg, the write gate, admits one writer at a time. Whoever holds it
	// owns the fields below it and the batch state in tx.
	wg gate

	// Context cancellation ends a wait by setting a past write deadline
	// (kick); the user's deadline is restored afterwards (disarm).
	dlMu     sync.Mutex
	deadline time.Time    // the write deadline the user set
	kicked   bool         // a kick's past deadline is in force
	dlNano   atomic.Int64 // deadline as UnixNano, 0 for none: for writes that bypass the poller

	ctx      context.Context // the current writer's context
	armed    bool
	stopKick func() bool
	kickWG   sync.WaitGroup
	kickFn   func()

	tx  sendState   // send state: headers, iovecs, sockaddrs
	grp group       // single-datagram writers waiting for the gate (group.go)
	q   *writeQueue // the write queue (queue.go); nil without WithWriteQueue

	// reply is the reply-source state (replysrc.go), nil when off; src is
	// the gate holder's room for a reply's control messages.
	reply *replyState
	src   []byte

	// batchReads says the single-datagram read methods read through the
	// Conn's own path (readOne), not the UDPConn's: with GRO, so that no
	// read sees a coalesced buffer, and with reply sources, so that every
	// datagram tells its local address.
	batchReads bool

	// The receive side: rd is the portable part (read gate, read deadline,
	// GRO queue), rx the platform's (headers, iovecs, sockaddrs, GRO slots).
	gro    bool   // UDP GRO is on for the socket
	groOff string // why GRO is off
	rstats struct{ syscalls, messages, bytes, groBuffers, groMessages atomic.Uint64 }
	rd     readSide
	rx     recvState
}

var (
	_ net.PacketConn = (*Conn)(nil)
	_ interface {
		SyscallConn() (syscall.RawConn, error)
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
		ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
		WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error)
	} = (*Conn)(nil)
)

// An Option configures a Conn made by [New] or [Listen].
type Option func(*config)

type config struct {
	gso      bool
	gro      bool
	queue    int
	onError  func(Message, error) bool
	replySrc *bool // nil: on for a Conn on a wildcard address
}

// WithGSO turns the use of UDP generic segmentation offload (GSO) on or off.
// It is on by default where the kernel supports it (Linux 4.18 and later);
// elsewhere, or when the environment variable BATCHCONN_DISABLE_GSO is set to
// a true value ("1", "true"), it stays off whatever this says.
func WithGSO(enabled bool) Option {
	return func(c *config) { c.gso = enabled }
}

// WithGRO turns UDP generic receive offload (GRO) on or off. It is off by
// default. With it on, on Linux 5.0 and later, the kernel may hand up many
// datagrams of one flow as one buffer, which the Conn splits again, so every
// read still sees exactly one datagram per message; only code that reads
// the socket behind the Conn's back (through [Conn.SyscallConn],
// [Conn.UDPConn] or golang.org/x/net/ipv4 on the Conn) would see the
// coalesced buffers, which is why it is off by default. Off Linux, where the
// kernel cannot do it, or when the environment variable
// BATCHCONN_DISABLE_GRO is set to a true value, it stays off whatever this
// says.
func WithGRO(enabled bool) Option {
	return func(c *config) { c.gro = enabled }
}

// WithWriteQueue gives the Conn a write queue of the given size in bytes,
// for code that writes datagrams one at a time, from one goroutine or a
// few: the single-datagram write methods (Write, WriteTo, WriteToUDP,
// WriteToUDPAddrPort, WriteMsgUDP, WriteMsgUDPAddrPort) then copy the
// datagram and its control messages into the queue and return at once,
// and a goroutine of the Conn sends the queue in batches through
// WriteMessages' path (sendmmsg, UDP GSO runs). No timer is involved: a
// datagram waits at most for the send in flight. 0, the default, means no
// queue: those methods then send as [Conn.Write] describes.
//
// The price is that a datagram the kernel refuses after its write returned
// (its path's MTU, no route, a full device queue) can no longer fail that
// write: it is counted by cause in [Stats].QueueFailures, the first such
// error since the last [Conn.Flush] is what Flush returns, and
// [WithWriteQueueErrors] sees each one. What a UDPConn would refuse before
// sending (a closed Conn, a passed write deadline, a bad address, an
// oversized datagram, malformed control data) is refused by the write
// itself, as the UDPConn refuses it. A full queue makes a writer wait for
// room, up to the write deadline, or return [ErrWouldBlock] after
// [Conn.SetBlocking](false). Datagrams to one destination leave in the
// order they were written, also across WriteMessages and WriteBuffersTo;
// within a batch the queue groups each destination's datagrams, so that
// GSO can send them as one. [Conn.Flush] waits for the queue; [Conn.Close]
// sends what is queued for at most 100 ms first.
//
// The queue is one buffer of bytes (rounded up to a multiple of 8),
// allocated by New; each datagram takes its length and its control
// messages' plus 40 bytes. A datagram that does not fit in the whole queue
// is sent with the UDPConn's own method, after the datagrams queued before
// it. bytes must be at most 1 GiB.
func WithWriteQueue(bytes int) Option {
	return func(c *config) { c.queue = bytes }
}

// WithWriteQueueErrors sets f to be told of every datagram of the write
// queue ([WithWriteQueue]) that failed after its write returned: m is the
// datagram (its Buffers and OOB valid only during the call), err the error
// WriteMessages would have returned for it (a *net.OpError whose Addr is
// the destination). If f returns true, the datagram is sent once more at
// once, in its place; if that fails too, f is told again, and its answer
// does not count. f is called by whichever goroutine sends the queue, with
// the Conn's writes held up meanwhile: it must return quickly, and must not
// write to the Conn.
func WithWriteQueueErrors(f func(m Message, err error) (retry bool)) Option {
	return func(c *config) { c.onError = f }
}

// WithReplySource sets whether replies leave from the address the peer
// wrote to, on a Conn bound to a wildcard address (0.0.0.0, ::): the
// single-datagram write methods (WriteTo, WriteToUDPAddrPort, WriteMsgUDP,
// ...) and the write queue send a datagram to a peer whose datagrams the
// Conn received with that datagram's local address as the source (an
// IP_PKTINFO or IPV6_PKTINFO control message), unless the write carries a
// source of its own. It is on by default for such a Conn: on a host with
// several addresses, a *net.UDPConn on a wildcard address answers from the
// address the kernel picks, which a client that checks the reply's source
// (DNS resolvers, dig, QUIC clients) takes as no answer. A Conn remembers
// the local address of the peers it heard from lately (2048, in about
// 140 KiB made at the first datagram); a peer it does not remember,
// or whose address is gone from the host, gets the kernel's choice, as
// without the option. WriteMessages and WriteBuffersTo send as they are
// told: give them a source with [AppendPacketInfo].
//
// The Conn turns on the packet-info control message for its reads, and
// takes it out of what reads return unless the user turned it on too
// (before New, or through [Conn.SyscallConn]). It has no effect on a
// connected Conn, on one bound to a specific address (whose source is
// fixed), or off Linux.
func WithReplySource(enabled bool) Option {
	return func(c *config) { c.replySrc = &enabled }
}

// maxWriteQueue bounds WithWriteQueue: the queue is allocated at once.
const maxWriteQueue = 1 << 30

// envDisableGRO is the environment variable that keeps GRO off everywhere.
const envDisableGRO = "BATCHCONN_DISABLE_GRO"

// envDisableGSO is the environment variable that turns GSO off everywhere: a
// kill switch for kernels or drivers that mishandle it without an error.
const envDisableGSO = "BATCHCONN_DISABLE_GSO"

// New wraps c. The Conn uses c's socket; closing the Conn closes c. c must
// not be nil.
func New(c *net.UDPConn, opts ...Option) (*Conn, error) {
	if c == nil {
		return nil, errors.New("batchconn: New called with a nil *net.UDPConn")
	}
	cfg := config{gso: true}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.queue < 0 || cfg.queue > maxWriteQueue {
		return nil, errors.New("batchconn: WithWriteQueue(" + strconv.Itoa(cfg.queue) + "): the size must be from 0 to 1 GiB")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	bc := &Conn{
		udp:     c,
		rc:      rc,
		laddr:   c.LocalAddr(),
		closing: make(chan struct{}),
	}
	if bc.laddr == nil {
		return nil, &net.OpError{Op: "new", Net: "udp", Err: net.ErrClosed}
	}
	bc.blocking.Store(true)
	bc.kickFn = bc.kick
	if bc.sock4, bc.v6only, err = socketFamily(c, rc); err != nil {
		return nil, &net.OpError{Op: "new", Net: "udp", Source: bc.laddr, Err: err}
	}
	if ra, ok := c.RemoteAddr().(*net.UDPAddr); ok && ra != nil {
		bc.peer4 = ra.IP.To4() != nil
	}
	switch {
	case !cfg.gso:
		bc.disableGSO("disabled by WithGSO(false)")
	case envTrue(os.Getenv(envDisableGSO)):
		bc.disableGSO("disabled by " + envDisableGSO)
	default:
		if err := gsoSupported(rc); err != nil {
			bc.disableGSO("not supported: " + err.Error())
		}
	}
	bc.zones.init(newZoneLookup(rc))
	bc.learnRecvErr()
	if ua, ok := bc.laddr.(*net.UDPAddr); ok && ua.IP.IsUnspecified() && c.RemoteAddr() == nil &&
		replySupported && (cfg.replySrc == nil || *cfg.replySrc) {
		if bc.reply, err = newReplyState(rc, bc.sock4); err != nil {
			return nil, &net.OpError{Op: "new", Net: "udp", Source: bc.laddr, Err: err}
		}
	}
	bc.tx.init(bc)
	bc.initRead(cfg.gro)
	bc.batchReads = bc.gro || bc.reply != nil
	if cfg.queue > 0 {
		bc.q = newWriteQueue(bc, cfg.queue, cfg.onError)
	}
	return bc, nil
}

func envTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// Listen announces on the local network address, as
// net.ListenPacket(network, address) does, and wraps the socket with [New].
// network is "udp", "udp4" or "udp6"; its errors are shaped as
// net.ListenPacket's (a *net.OpError with Op "listen"), and another network
// fails with a net.UnknownNetworkError in one, as net.ListenUDP's does.
func Listen(network, address string, opts ...Option) (*Conn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	udp := pc.(*net.UDPConn) // what ListenPacket makes for these networks
	c, err := New(udp, opts...)
	if err != nil {
		udp.Close()
		return nil, err
	}
	return c, nil
}

// SetBlocking sets whether WriteMessages waits for space in a full send
// buffer (true, the default) or returns at once with what the socket took
// ([ErrWouldBlock] if nothing), without waiting behind another writer
// either. The single-datagram write methods (Write, WriteTo, WriteMsgUDP,
// ...) keep the *net.UDPConn's behaviour whatever this says: like it, they
// wait for space up to the write deadline, so a writer that must not wait
// uses WriteMessages with unix.MSG_DONTWAIT.
func (c *Conn) SetBlocking(blocking bool) { c.blocking.Store(blocking) }

// Blocking reports the mode set by [Conn.SetBlocking].
func (c *Conn) Blocking() bool { return c.blocking.Load() }

// GSOEnabled reports whether WriteMessages currently coalesces messages into
// UDP GSO sends. It is false off Linux, where the kernel lacks UDP_SEGMENT,
// after WithGSO(false) or BATCHCONN_DISABLE_GSO, and for good after the kernel
// failed a GSO send with EIO. EINVAL and EMSGSIZE never turn it off: after 4
// in a row to one destination, only that destination gets plain sends, until
// it is offered GSO again (see the package docs).
func (c *Conn) GSOEnabled() bool { return c.gso.Load() == nil }

// GROEnabled reports whether the socket receives with UDP GRO: whether
// [WithGRO](true) was given and the kernel accepted it. It is false off
// Linux and under BATCHCONN_DISABLE_GRO; [Conn.Stats] says why it is off.
func (c *Conn) GROEnabled() bool { return c.gro }

func (c *Conn) disableGSO(reason string) { c.gso.CompareAndSwap(nil, &reason) }

// Stats are counters of a Conn's batched writes and reads since [New].
type Stats struct {
	Syscalls     uint64 // send system calls made
	Messages     uint64 // datagrams the kernel accepted
	Bytes        uint64 // payload bytes the kernel accepted
	GSOBatches   uint64 // runs the kernel accepted as one UDP GSO send
	GSOFallbacks uint64 // GSO sends the kernel refused (EIO, EINVAL, EMSGSIZE), resent without GSO
	GSOOff       string // why GSO is off for the Conn (WithGSO(false), BATCHCONN_DISABLE_GSO, no kernel support, EIO), or "" while it is in use

	// The receive side: ReadMessages, and the single-datagram read methods
	// of a Conn with GRO on (with GRO off they are the UDPConn's own and are
	// not counted).
	RecvSyscalls uint64 // receive system calls made
	RecvMessages uint64 // datagrams handed to callers
	RecvBytes    uint64 // payload bytes handed to callers
	GROBuffers   uint64 // coalesced buffers the kernel returned and batchconn split
	GROMessages  uint64 // datagrams that arrived in those coalesced buffers
	GROOff       string // why GRO is off, or "" while it is in use

	// The write queue (WithWriteQueue); its sends are counted above too.
	QueueWrites    uint64        // datagrams the single-datagram write methods put in the queue
	QueueWaits     uint64        // writes that waited for room in the queue
	QueueBatches   uint64        // batches the queue was sent in (each one or more system calls)
	QueueMaxBatch  uint64        // the most datagrams one batch held
	QueueGSOSplits uint64        // callers' GSO buffers (UDP_SEGMENT) sent as separate datagrams, after the kernel failed one with EIO
	QueueFailures  QueueFailures // queued datagrams that failed after their write returned, by cause
}

// QueueFailures counts, by cause, the datagrams of a write queue that
// failed after their write had returned (see [WithWriteQueue]).
type QueueFailures struct {
	MessageSize uint64 // EMSGSIZE: larger than the path takes (its MTU, with IP_PMTUDISC_DO)
	Unreachable uint64 // ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN: no route to the destination
	Refused     uint64 // ECONNREFUSED: the connected peer refused an earlier datagram
	Denied      uint64 // EPERM, EACCES: a firewall rule, or a broadcast without SO_BROADCAST
	NoBuffers   uint64 // ENOBUFS: a device or qdisc queue was full (reported where IP_RECVERR is on)
	Address     uint64 // EINVAL, EADDRNOTAVAIL, EAFNOSUPPORT, EDESTADDRREQ: an address or control message the kernel refused
	Deadline    uint64 // the write deadline passed before it could be sent
	Closed      uint64 // the Conn was closed before it could be sent
	Other       uint64 // any other error
}

// Total returns the number of failures, of every cause.
func (f QueueFailures) Total() uint64 {
	return f.MessageSize + f.Unreachable + f.Refused + f.Denied + f.NoBuffers +
		f.Address + f.Deadline + f.Closed + f.Other
}

// Stats returns the Conn's counters. Writes through the single-datagram
// methods (WriteTo, WriteMsgUDP, ...) are counted only when they were
// combined into a batch with others (see [Conn.Write]); a writer that sends
// alone makes the UDPConn's own system call, uncounted.
func (c *Conn) Stats() Stats {
	s := Stats{
		Syscalls:     c.stats.syscalls.Load(),
		Messages:     c.stats.messages.Load(),
		Bytes:        c.stats.bytes.Load(),
		GSOBatches:   c.stats.gsoBatches.Load(),
		GSOFallbacks: c.stats.gsoFallbacks.Load(),
	}
	if r := c.gso.Load(); r != nil {
		s.GSOOff = *r
	}
	s.RecvSyscalls = c.rstats.syscalls.Load()
	s.RecvMessages = c.rstats.messages.Load()
	s.RecvBytes = c.rstats.bytes.Load()
	s.GROBuffers = c.rstats.groBuffers.Load()
	s.GROMessages = c.rstats.groMessages.Load()
	s.GROOff = c.groOff
	if q := c.q; q != nil {
		st := &q.stats
		s.QueueWrites, s.QueueWaits, s.QueueGSOSplits = st.writes.Load(), st.waits.Load(), st.gsoSplits.Load()
		s.QueueBatches, s.QueueMaxBatch = st.batches.Load(), st.most.Load()
		s.QueueFailures = QueueFailures{
			MessageSize: st.msgSize.Load(),
			Unreachable: st.unreach.Load(),
			Refused:     st.refused.Load(),
			Denied:      st.denied.Load(),
			NoBuffers:   st.noBufs.Load(),
			Address:     st.address.Load(),
			Deadline:    st.deadline.Load(),
			Closed:      st.closed.Load(),
			Other:       st.other.Load(),
		}
	}
	return s
}

// WaitWritable returns when the socket can take more data, or when ctx is
// done, the write deadline passes or the Conn is closed, with that error. A
// following non-blocking WriteMessages may still meet [ErrWouldBlock] (another
// writer may have used the space); callers loop.
func (c *Conn) WaitWritable(ctx context.Context) error {
	if c.closed.Load() || c.rc.Control(noControl) != nil {
		return c.opError(nil, net.ErrClosed)
	}
	if ctx == nil {
		return c.opError(nil, errNilContext)
	}
	if err := ctx.Err(); err != nil {
		return c.opError(nil, err)
	}
	if err := c.lock(ctx, true); err != nil {
		return c.opError(nil, err)
	}
	defer c.unlock()
	c.ctx = ctx
	err := c.rc.Write(c.tx.writableFn)
	c.disarm()
	if err != nil {
		return c.opError(nil, c.waitErr(ctx, err))
	}
	return nil
}

// lock takes the write gate, or gives up when ctx is done or the Conn
// closes. A writer that must not wait (wait false: a non-blocking
// WriteMessages) does not queue behind one that waits for room in the send
// buffer: it gets [ErrWouldBlock], as it would from the full buffer itself.
// Behind a holder that is only sending it waits, parked, for the release
// (see gate).
func (c *Conn) lock(ctx context.Context, wait bool) error {
	if wait {
		return c.wg.lock(ctx, c.closing)
	}
	return c.wg.lockNow(ctx, c.closing, c.writable)
}

// unlock releases the write gate, or hands it to the first queued
// single-datagram writer (group.go).
func (c *Conn) unlock() {
	c.ctx = nil
	c.wg.unlock()
	if c.grp.n.Load() != 0 {
		c.handoff()
	}
}

// aLongTimeAgo is a deadline that has passed: setting it wakes a waiting write.
var aLongTimeAgo = time.Unix(1, 0)

// arm makes the cancellation of the current writer's context end its wait.
// It is called only when a wait begins, so calls that never wait allocate
// nothing for it.
func (c *Conn) arm() {
	c.wg.park()
	if c.armed || c.ctx.Done() == nil {
		return
	}
	c.armed = true
	c.kickWG.Add(1)
	c.stopKick = context.AfterFunc(c.ctx, c.kickFn)
}

func (c *Conn) kick() {
	defer c.kickWG.Done()
	c.dlMu.Lock()
	c.kicked = true
	c.udp.SetWriteDeadline(aLongTimeAgo)
	c.dlMu.Unlock()
}

// disarm undoes arm, and restores the user's write deadline if a kick
// replaced it.
func (c *Conn) disarm() {
	c.wg.unpark()
	if !c.armed {
		return
	}
	c.armed = false
	if c.stopKick() {
		c.kickWG.Done()
	}
	c.kickWG.Wait()
	c.stopKick = nil
	c.dlMu.Lock()
	if c.kicked {
		c.kicked = false
		c.udp.SetWriteDeadline(c.deadline)
	}
	c.dlMu.Unlock()
}

// waitErr names what ended a wait in the poller.
func (c *Conn) waitErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	}
	return err
}

// opError wraps err the way *net.UDPConn reports write errors.
func (c *Conn) opError(dst *netip.AddrPort, err error) error {
	e := &net.OpError{Op: "write", Net: c.rd.network, Source: c.laddr, Err: err}
	if dst != nil && dst.IsValid() {
		e.Addr = net.UDPAddrFromAddrPort(*dst)
	} else if ra := c.udp.RemoteAddr(); ra != nil && dst != nil {
		e.Addr = ra
	}
	return e
}

// UDPConn returns the wrapped socket. Writing to it directly bypasses the
// Conn's serialisation; a write that waits on it while a WriteMessages call is
// being cancelled may see os.ErrDeadlineExceeded, and so may a read while a
// ReadMessages call is. Reading from it with GRO on bypasses the Conn's
// split and queue: see [WithGRO].
func (c *Conn) UDPConn() *net.UDPConn { return c.udp }

// Close closes the socket. A WriteMessages call waiting for space returns
// what it sent so far, or net.ErrClosed; so does a waiting read. Datagrams
// still queued in the Conn (GRO) are dropped. With a write queue, Close
// first stops taking writes and sends what is queued for at most 100 ms;
// what is left then is dropped and counted (Stats.QueueFailures.Closed).
func (c *Conn) Close() error {
	first := false
	c.closeMu.Do(func() {
		first = true
		if c.q != nil {
			c.q.closeQueue()
		}
		c.closed.Store(true)
		close(c.closing)
	})
	err := c.udp.Close()
	if first && c.q != nil {
		c.q.dropLeft()
	}
	return err
}

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// RemoteAddr returns the connected peer's address, or nil.
func (c *Conn) RemoteAddr() net.Addr { return c.udp.RemoteAddr() }

// ReadFrom reads one datagram, as [net.UDPConn.ReadFrom]. With GRO or
// reply sources on it is served from the Conn's receive batch (see
// [Conn.ReadMessages]); either way the *net.UDPAddr it returns is a fresh
// one, as the UDPConn's (the allocation-free reads are
// [Conn.ReadFromUDPAddrPort] and [Conn.ReadMsgUDPAddrPort]).
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	if !c.batchReads {
		return c.udp.ReadFrom(p)
	}
	n, _, _, _, addr, err := c.readOne(p, nil, true, "recvfrom")
	if err != nil {
		return n, nil, err
	}
	return n, addr, nil
}

// ReadMsgUDP reads one datagram and its control messages, as
// [net.UDPConn.ReadMsgUDP]. With GRO or reply sources on it is served from
// the Conn's receive batch.
func (c *Conn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	if !c.batchReads {
		return c.udp.ReadMsgUDP(b, oob)
	}
	n, oobn, flags, _, addr, err = c.readOne(b, oob, true, "recvmsg")
	if err != nil {
		addr = net.UDPAddrFromAddrPort(c.noSource()) // as the UDPConn reports a failed read's source
	}
	return n, oobn, flags, addr, err
}

// WriteTo writes one datagram, as [net.UDPConn.WriteTo], with the same
// result and errors. Concurrent writers are combined (group commit): a
// writer that finds no send in flight sends at once; writers that arrive
// during a send wait and leave together in the next sendmmsg. See
// [Conn.Write] for the rules.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.sendPlain() {
		n, err := c.udp.WriteTo(p, addr)
		c.unlock()
		return n, err
	}
	q := &queued{} // on the stack: write copies it where it must outlive the call
	q.kind, q.b, q.addr, q.direct = kindWriteTo, p, addr, true
	if a, ok := addr.(*net.UDPAddr); ok {
		q.dst, ok = c.udpAddrPort(a)
		q.direct = !ok
	}
	c.write(q)
	n, err := q.n, q.err
	return n, err
}

// WriteMsgUDP writes one datagram with control messages, as
// [net.UDPConn.WriteMsgUDP], with the same result and errors, combined with
// concurrent writers as [Conn.WriteTo] is.
func (c *Conn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	ap, ok := netip.AddrPort{}, addr == nil && c.udp.RemoteAddr() != nil // to the peer
	if addr != nil {
		ap, ok = c.udpAddrPort(addr)
	}
	if c.sendPlain() {
		if ok && addr != nil {
			// The UDPConn's WriteMsgUDP allocates a sockaddr for addr;
			// its WriteMsgUDPAddrPort does not, and differs only in the
			// Addr its errors carry.
			n, oobn, err = c.udp.WriteMsgUDPAddrPort(b, oob, ap)
			if oe, isOp := err.(*net.OpError); isOp {
				oe.Addr = addr
			}
		} else {
			n, oobn, err = c.udp.WriteMsgUDP(b, oob, addr)
		}
		c.unlock()
		return n, oobn, err
	}
	q := &queued{} // on the stack: write copies it where it must outlive the call
	q.kind, q.b, q.oob, q.uaddr, q.dst = kindWriteMsgUDP, b, oob, addr, ap
	q.direct = !ok || !plainOOB(oob)
	c.write(q)
	n, oobn, err = q.n, q.oobn, q.err
	return n, oobn, err
}

// SetDeadline sets the read and write deadlines, as [net.UDPConn.SetDeadline].
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline, as [net.UDPConn.SetReadDeadline].
// It bounds ReadMessages' waits too; a deadline that has passed makes every
// read fail at once, even with datagrams queued.
func (c *Conn) SetReadDeadline(t time.Time) error {
	r := &c.rd
	r.dlMu.Lock()
	defer r.dlMu.Unlock()
	r.deadline = t
	if r.kicked {
		return nil // disarm applies it
	}
	return c.udp.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline, as
// [net.UDPConn.SetWriteDeadline]. It bounds WriteMessages' waits too; a
// deadline that has passed makes WriteMessages fail at once.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.deadline = t
	c.dlNano.Store(unixNano(t))
	if c.kicked {
		return nil // disarm applies it
	}
	return c.udp.SetWriteDeadline(t)
}

// unixNano is t as a deadline in nanoseconds: 0 for none.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

// writeExpired reports whether the user's write deadline has passed.
func (c *Conn) writeExpired() bool {
	d := c.dlNano.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

// rawWrite makes a send system call: fn as the RawConn.Write callback,
// ctl as the RawConn.Control one (both bound once, so nothing allocates).
// A writer that may wait goes through RawConn.Write, which waits in the
// poller under the write deadline. One that must not wait goes through
// RawConn.Control, which takes none of the net package's locks, so it
// never queues behind a write that waits for the socket behind the Conn's
// back (C5); it applies the write deadline itself.
func (c *Conn) rawWrite(fn func(uintptr) bool, ctl func(uintptr), wait bool) error {
	if wait {
		return c.rc.Write(fn)
	}
	if c.writeExpired() {
		return os.ErrDeadlineExceeded
	}
	return c.rc.Control(ctl)
}

// SyscallConn returns the socket's raw connection. Reading through it with
// GRO on sees coalesced buffers: see [WithGRO]. After each of its Control
// calls the Conn reads IP_RECVERR and IPV6_RECVERR again (see
// [Conn.WriteMessages]).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.udp.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, rc: rc}, nil
}

// SetReadBuffer sets the socket's receive buffer size (SO_RCVBUF).
func (c *Conn) SetReadBuffer(bytes int) error { return c.udp.SetReadBuffer(bytes) }

// SetWriteBuffer sets the socket's send buffer size (SO_SNDBUF).
func (c *Conn) SetWriteBuffer(bytes int) error { return c.udp.SetWriteBuffer(bytes) }
