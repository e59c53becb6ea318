package wgbatch

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/batchconn/batchconn/batchconn"
)

// batch is conn.IdealBatchSize: the packets one ReceiveFunc call or one Send
// handles.
const batch = conn.IdealBatchSize

// oobRoom is the control-message room of each received packet: one
// IPV6_PKTINFO (40 bytes on 64-bit Linux) or IP_PKTINFO (32), with room to
// spare for the kernel adding another.
const oobRoom = 64

// A socket is one of a Bind's two sockets, with what its ReceiveFunc and its
// Sends reuse from call to call, so that neither allocates.
type socket struct {
	c   *batchconn.Conn
	is6 bool

	// blackhole drops what Send sends (BindSocketToInterface's blackhole).
	blackhole atomic.Bool
	// gsoReported is set by the Send that saw GSO go off, so exactly one
	// Send returns conn.ErrUDPGSODisabled.
	gsoReported atomic.Bool

	rmu   sync.Mutex // the receive state below, for the ReceiveFunc
	rmsgs [batch]batchconn.Message
	rbufs [batch][1][]byte
	roob  [batch][oobRoom]byte
	eps   endpointCache
}

func newSocket(c *batchconn.Conn, is6 bool, cacheSize int) *socket {
	s := &socket{c: c, is6: is6}
	s.eps.init(cacheSize)
	for i := range s.rmsgs {
		s.rmsgs[i].OOB = s.roob[i][:]
	}
	return s
}

func (s *socket) close() error { return s.c.Close() }

// receiveIPv4 and receiveIPv6 are the ReceiveFuncs; wireguard-go names its
// receive goroutines after the suffix ("v4", "v6": conn.ReceiveFunc.PrettyName).
func (s *socket) receiveIPv4(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	return s.receive(packets, sizes, eps)
}

func (s *socket) receiveIPv6(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	return s.receive(packets, sizes, eps)
}

// receive reads up to len(packets) packets, straight into packets, with one
// recvmmsg (and GRO, which batchconn splits back into packets), and returns
// how many: sizes[i] and eps[i] are set for each. It blocks until at least
// one packet is there or the socket is closed. A truncated packet (one
// longer than its buffer) gets size 0, which wireguard-go skips.
func (s *socket) receive(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	n := min(len(packets), len(sizes), len(eps), batch)
	if n == 0 {
		return 0, nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	msgs := s.rmsgs[:n]
	for i := range msgs {
		s.rbufs[i][0] = packets[i]
		msgs[i].Buffers = s.rbufs[i][:]
	}
	got, err := s.c.ReadMessages(context.Background(), msgs, 0)
	for i := range msgs {
		s.rbufs[i][0] = nil // hold on to none of wireguard-go's buffers
	}
	if err != nil {
		return 0, err
	}
	for i := range got {
		m := &msgs[i]
		sizes[i] = m.N
		if m.Flags&msgTrunc != 0 {
			sizes[i] = 0
		}
		local, ifindex, _ := batchconn.ParsePacketInfo(m.OOB[:m.NN])
		eps[i] = s.eps.get(m.Addr, local, ifindex)
	}
	return got, nil
}

// send sends bufs to e, from e's sticky source if it has one. The caller has
// checked that e's family is this socket's.
func (s *socket) send(bufs [][]byte, e *Endpoint) error {
	gsoBefore := s.c.GSOEnabled()
	err := s.sendAll(bufs, e)
	if gsoBefore && !s.c.GSOEnabled() && s.gsoReported.CompareAndSwap(false, true) {
		return conn.ErrUDPGSODisabled{RetryErr: err}
	}
	return err
}

func (s *socket) sendAll(bufs [][]byte, e *Endpoint) error {
	oob := e.srcControl()
	sent, err := s.writeAll(bufs, oob, e.dst)
	if err != nil && oob != nil && staleSource(err) {
		// Perhaps the sticky source is gone: send the rest from the
		// address the kernel picks. If that gets through, the source was
		// the trouble: forget it. If not, the peer is unreachable from
		// anywhere, and the source may be good once it is back.
		var n int
		n, err = s.writeAll(bufs[sent:], nil, e.dst)
		if n > 0 {
			e.ClearSrc()
		}
	}
	return err
}

// writeAll sends bufs to dst with oob, looping over partial sends, until
// all are sent or one fails, and returns how many were sent and that one's
// error.
func (s *socket) writeAll(bufs [][]byte, oob []byte, dst netip.AddrPort) (int, error) {
	sent := 0
	for sent < len(bufs) {
		n, err := s.c.WriteBuffersTo(context.Background(), bufs[sent:], oob, dst, 0)
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, nil
}

// staleSource reports whether a send may have failed because its sticky
// source address or interface no longer exists: for an address the host
// lacks, IPv4's route lookup fails with ENETUNREACH (Linux 6.18; EINVAL
// before) and IPV6_PKTINFO's check with EINVAL; for an interface that is
// gone both fail with ENODEV. EADDRNOTAVAIL is taken too, as batchconn's
// reply sources take it (WithReplySource).
func staleSource(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}
