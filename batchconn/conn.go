package batchconn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
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

	// gate admits one writer at a time. Whoever holds it owns the fields
	// below it and the batch state in tx.
	gate chan struct{}
	// parked says the gate's holder waits in the poller for room in the
	// send buffer, so a writer that must not wait does not queue behind
	// it (lock).
	parked atomic.Bool

	// Context cancellation ends a wait by setting a past write deadline
	// (kick); the user's deadline is restored afterwards (disarm).
	dlMu     sync.Mutex
	deadline time.Time // the write deadline the user set
	kicked   bool      // a kick's past deadline is in force

	ctx      context.Context // the current writer's context
	armed    bool
	stopKick func() bool
	kickWG   sync.WaitGroup
	kickFn   func()

	tx  sendState // send state: headers, iovecs, sockaddrs
	grp group     // single-datagram writers waiting for the gate (group.go)

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
	gso bool
	gro bool
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
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	bc := &Conn{
		udp:     c,
		rc:      rc,
		laddr:   c.LocalAddr(),
		closing: make(chan struct{}),
		gate:    make(chan struct{}, 1),
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
	bc.tx.init(bc)
	bc.initRead(cfg.gro)
	return bc, nil
}

func envTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// Listen announces on the local network address, like [net.ListenUDP] with
// the address resolved by [net.ResolveUDPAddr], and wraps the socket with
// [New]. network is "udp", "udp4" or "udp6".
func Listen(network, address string, opts ...Option) (*Conn, error) {
	laddr, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
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
// WriteMessages) does not queue behind one that waits in the poller for
// room in the send buffer: it gets [ErrWouldBlock], as it would from the
// full buffer itself. Until the holder either parks or releases the gate
// (it is sending, which takes microseconds), such a writer yields and
// looks again; it must not block on the gate, because a holder that
// parks after it looked could keep it there without bound (C5).
func (c *Conn) lock(ctx context.Context, wait bool) error {
	for !wait {
		if c.tryLock() {
			return nil
		}
		switch {
		case c.parked.Load():
			return ErrWouldBlock
		case ctx.Err() != nil:
			return ctx.Err()
		case c.closed.Load():
			return net.ErrClosed
		}
		runtime.Gosched()
	}
	select {
	case c.gate <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return net.ErrClosed
	}
}

// unlock releases the write gate, or hands it to the first queued
// single-datagram writer (group.go).
func (c *Conn) unlock() {
	c.ctx = nil
	<-c.gate
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
	c.parked.Store(true)
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
	c.parked.Store(false)
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
// still queued in the Conn (GRO) are dropped.
func (c *Conn) Close() error {
	c.closed.Store(true)
	c.closeMu.Do(func() { close(c.closing) })
	return c.udp.Close()
}

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// RemoteAddr returns the connected peer's address, or nil.
func (c *Conn) RemoteAddr() net.Addr { return c.udp.RemoteAddr() }

// ReadFrom reads one datagram, as [net.UDPConn.ReadFrom]. With GRO on it is
// served from the Conn's receive batch (see [Conn.ReadMessages]), and the
// *net.UDPAddr it returns is shared by consecutive datagrams from the same
// source: callers must not modify it.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	if !c.gro {
		return c.udp.ReadFrom(p)
	}
	n, _, _, _, addr, err := c.readOne(p, nil, true, "recvfrom")
	if err != nil {
		return n, nil, err
	}
	return n, addr, nil
}

// ReadMsgUDP reads one datagram and its control messages, as
// [net.UDPConn.ReadMsgUDP]. With GRO on it is served from the Conn's receive
// batch, and the *net.UDPAddr it returns is shared as ReadFrom's is.
func (c *Conn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	if !c.gro {
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
	if c.sendAlone() {
		n, err := c.udp.WriteTo(p, addr)
		c.unlock()
		return n, err
	}
	q := c.grp.getQueued()
	q.kind, q.b, q.addr, q.direct = kindWriteTo, p, addr, true
	if a, ok := addr.(*net.UDPAddr); ok {
		q.dst, ok = c.udpAddrPort(a)
		q.direct = !ok
	}
	c.writeQueued(q)
	n, err := q.n, q.err
	c.grp.putQueued(q)
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
	if c.sendAlone() {
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
	q := c.grp.getQueued()
	q.kind, q.b, q.oob, q.uaddr, q.dst = kindWriteMsgUDP, b, oob, addr, ap
	q.direct = !ok || !plainOOB(oob)
	c.writeQueued(q)
	n, oobn, err = q.n, q.oobn, q.err
	c.grp.putQueued(q)
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
	if c.kicked {
		return nil // disarm applies it
	}
	return c.udp.SetWriteDeadline(t)
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
