package wgbatch

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/batchconn/batchconn/batchconn"
)

// A Bind is a wireguard-go [conn.Bind] whose udp4 and udp6 sockets are
// [batchconn.Conn]s: it receives with recvmmsg and UDP GRO straight into
// wireguard-go's buffers, and sends each [Bind.Send] batch with sendmmsg and
// UDP GSO, gathering the packets from wireguard-go's buffers without copying
// them. Make one with [NewBind] and hand it to device.NewDevice in place of
// conn.NewDefaultBind().
//
// A Bind is safe for concurrent use: wireguard-go sends from one goroutine
// per peer and receives from one per socket, while a bind update closes and
// reopens it.
type Bind struct {
	cfg config

	mu   sync.Mutex // serialises Open, Close, SetMark and BindSocketToInterface
	mark uint32     // the SO_MARK for sockets opened later; 0: none set
	// open is what Send reads, without a lock: the sockets of the current
	// Open, or nil while the Bind is closed.
	open atomic.Pointer[sockets]
}

// sockets is one Open's pair of sockets; either may be nil (an IPv6-less
// host has no udp6 socket).
type sockets struct {
	v4, v6 *socket
}

var (
	_ conn.Bind     = (*Bind)(nil)
	_ conn.Endpoint = (*Endpoint)(nil)
)

// An Option configures a [Bind] made by [NewBind].
type Option func(*config)

type config struct {
	gro, gso  bool
	bufBytes  int
	cacheSize int
}

// socketBufferBytes is the SO_RCVBUF and SO_SNDBUF a Bind asks for: 7 MiB,
// as StdNetBind does, so a burst of a fast peer fits in the socket while
// wireguard-go decrypts the previous one. Linux caps the request at
// net.core.rmem_max and wmem_max unless the process has CAP_NET_ADMIN, in
// which case the Bind forces it (SO_RCVBUFFORCE, SO_SNDBUFFORCE).
const socketBufferBytes = 7 << 20

// WithGRO turns UDP generic receive offload on the Bind's sockets on or off.
// It is on by default: on Linux 5.0 and later the kernel then hands up runs
// of a peer's packets as one buffer, which batchconn splits back into
// wireguard-go's buffers, one packet each. Nothing but the Bind reads its
// sockets, so nothing can see a coalesced buffer. BATCHCONN_DISABLE_GRO=1
// keeps it off whatever this says (see [batchconn.WithGRO]).
func WithGRO(enabled bool) Option { return func(c *config) { c.gro = enabled } }

// WithGSO turns UDP generic segmentation offload for [Bind.Send] on or off.
// It is on by default where the kernel has it (Linux 4.18 and later): the
// packets of one Send that have the same length go to the kernel as one
// GSO send. BATCHCONN_DISABLE_GSO=1 keeps it off whatever this says (see
// [batchconn.WithGSO]).
func WithGSO(enabled bool) Option { return func(c *config) { c.gso = enabled } }

// WithSocketBuffer sets the SO_RCVBUF and SO_SNDBUF the Bind asks for on
// each socket, in bytes; the default is 7 MiB, StdNetBind's. 0 leaves the
// kernel's defaults (net.core.rmem_default, wmem_default); a negative size
// is treated as 0.
func WithSocketBuffer(bytes int) Option { return func(c *config) { c.bufBytes = max(bytes, 0) } }

// NewBind returns a closed Bind; wireguard-go opens it (device.Up, or the
// first listen_port set through its configuration interface).
func NewBind(opts ...Option) *Bind {
	b := &Bind{cfg: config{gro: true, gso: true, bufBytes: socketBufferBytes, cacheSize: endpointCacheSize}}
	for _, o := range opts {
		if o != nil {
			o(&b.cfg)
		}
	}
	return b
}

// Open opens a udp4 and a udp6 socket on port, both on the wildcard address,
// and returns a [conn.ReceiveFunc] for each. With port 0 the kernel picks
// the udp4 socket's port and the udp6 socket takes the same one; if another
// program holds it for IPv6, Open tries again with a fresh port, up to 100
// times, as StdNetBind does. On a host without IPv6 (or without IPv4) Open
// opens the one family it can. Opening an open Bind fails with
// [conn.ErrBindAlreadyOpen].
//
// On Linux both sockets report the local address each packet arrived on
// (IP_PKTINFO, IPV6_RECVPKTINFO), so that replies leave from it (see
// [Endpoint]), and the udp6 socket is IPv6-only, as StdNetBind's.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open.Load() != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	var s sockets
	actual := port
	for tries := 0; ; tries++ {
		v4, p, err := b.listen("udp4", port)
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			return nil, 0, err
		}
		if v4 != nil {
			actual = p
		}
		v6, p, err := b.listen("udp6", actual)
		if port == 0 && v4 != nil && errors.Is(err, syscall.EADDRINUSE) && tries < 100 {
			v4.close()
			continue
		}
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			if v4 != nil {
				v4.close()
			}
			return nil, 0, err
		}
		if v6 != nil {
			actual = p
		}
		s.v4, s.v6 = v4, v6
		break
	}
	if s.v4 == nil && s.v6 == nil {
		return nil, 0, syscall.EAFNOSUPPORT
	}
	var fns []conn.ReceiveFunc
	if s.v4 != nil {
		fns = append(fns, s.v4.receiveIPv4)
	}
	if s.v6 != nil {
		fns = append(fns, s.v6.receiveIPv6)
	}
	b.open.Store(&s)
	return fns, actual, nil
}

// listen opens one socket of the Bind on the wildcard address of network
// ("udp4" or "udp6") and port, and returns it with its port.
func (b *Bind) listen(network string, port uint16) (*socket, uint16, error) {
	lc := net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
		return controlSocket(network, rc, b.cfg.bufBytes)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, ":"+strconv.Itoa(int(port)))
	if err != nil {
		return nil, 0, err
	}
	udp := pc.(*net.UDPConn)
	afterListen(udp, b.cfg.bufBytes)
	if b.mark != 0 {
		if err := setMark(udp, b.mark); err != nil {
			udp.Close()
			return nil, 0, err
		}
	}
	// The Bind keeps each peer's source itself (sticky sockets, as
	// StdNetBind), and sends only through WriteBuffersTo, which takes no
	// reply source: the Conn's own table would be learnt on every datagram
	// and never read.
	c, err := batchconn.New(udp, batchconn.WithGRO(b.cfg.gro), batchconn.WithGSO(b.cfg.gso), batchconn.WithReplySource(false))
	if err != nil {
		udp.Close()
		return nil, 0, err
	}
	s := newSocket(c, network == "udp6", b.cfg.cacheSize)
	return s, udp.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil
}

// Close closes the Bind's sockets. ReceiveFuncs blocked in a read return an
// error that [errors.Is] [net.ErrClosed], at once, as do those called later,
// and Sends still waiting for room in a socket return net.ErrClosed. Closing
// a closed Bind does nothing. A closed Bind can be opened again.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.open.Swap(nil)
	if s == nil {
		return nil
	}
	var err4, err6 error
	if s.v4 != nil {
		err4 = s.v4.close()
	}
	if s.v6 != nil {
		err6 = s.v6.close()
	}
	return errors.Join(err4, err6)
}

// SetMark sets the firewall mark (SO_MARK, on Linux) of the packets the Bind
// sends, on its open sockets and on those it opens later; 0 clears it.
// Setting a mark needs CAP_NET_ADMIN: without it SetMark on an open Bind
// returns the kernel's EPERM and keeps no mark, while a mark set on a closed
// Bind, which has no socket to try it on, is kept and makes the next Open
// fail with that EPERM. Off Linux it does nothing, as StdNetBind's on those
// systems.
func (b *Bind) SetMark(mark uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.open.Load(); s != nil {
		for _, so := range []*socket{s.v4, s.v6} {
			if so == nil {
				continue
			}
			if err := setMark(so.c.UDPConn(), mark); err != nil {
				return err
			}
		}
	}
	b.mark = mark
	return nil
}

// BatchSize returns [conn.IdealBatchSize] (128): the most packets a
// ReceiveFunc fills, and the most wireguard-go passes to Send, per call.
func (b *Bind) BatchSize() int { return conn.IdealBatchSize }

// ParseEndpoint parses an "ip:port" string, as wireguard-go's configuration
// gives a peer's endpoint ("192.0.2.1:51820", "[2001:db8::1]:51820"). An
// IPv4-mapped IPv6 address is taken as the IPv4 address it maps, which the
// udp4 socket reaches. Strings that are not an address and a port fail with
// the error of [netip.ParseAddrPort].
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &Endpoint{dst: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// Send sends bufs, one packet each, to ep, which must be an [*Endpoint] (from
// [Bind.ParseEndpoint] or a ReceiveFunc). All of them go out in as few
// system calls as the kernel allows: one sendmmsg, with runs of equal-size
// packets coalesced into UDP GSO sends, from the local address ep's packets
// arrived on (see [Endpoint]). Send blocks while the socket's send buffer is
// full, until the packets fit or the Bind is closed.
//
// If the kernel refuses a send from the sticky source (EINVAL or
// ENETUNREACH for an address the host no longer has, ENODEV for an
// interface that is gone), Send sends the packets again from the address
// the kernel picks and, if they get through, clears ep's source, as
// [Endpoint.ClearSrc]. If the kernel fails a GSO send in a way that means the
// device cannot segment (EIO), batchconn turns GSO off for the socket and
// resends the packets plain; the one Send that saw it happen returns a
// [conn.ErrUDPGSODisabled] whose RetryErr is the rest of the Send's result,
// which wireguard-go logs and then treats as the Send's error.
//
// A Send on a closed Bind returns [net.ErrClosed]; one to an address
// family the Bind has no socket for returns [syscall.EAFNOSUPPORT].
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*Endpoint)
	if !ok || e == nil {
		return conn.ErrWrongEndpointType
	}
	s := b.open.Load()
	if s == nil {
		return net.ErrClosed
	}
	so := s.v4
	if e.dst.Addr().Is6() {
		so = s.v6
	}
	if so == nil {
		return syscall.EAFNOSUPPORT
	}
	if len(bufs) == 0 || so.blackhole.Load() {
		return nil
	}
	return so.send(bufs, e)
}
