package quicbatch

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"

	"github.com/batchconn/batchconn/batchconn"
)

// The receive side: quic-go's reads, served by batchconn's ReadMessages
// (recvmmsg on Linux, with UDP GRO split back into packets).

// reader is the Conn's receive state. mu serialises ReadBatch calls (quic-go
// makes them from one goroutine; batchconn serves reads one at a time
// anyway) and guards the scratch below it.
type reader struct {
	bc       *batchconn.Conn
	groAsked bool // WithGRO(true), the default

	mu    sync.Mutex
	msgs  []batchconn.Message // scratch, pointing at the caller's buffers only during a call
	addrs addrCache
}

// errNoMessages is ReadBatch's error for an empty slice. x/net returns
// (0, nil) there; quic-go takes (0, nil) as a packet, so it is never returned.
var errNoMessages = errors.New("no messages to read into")

// ReadBatch reads up to len(ms) datagrams with their control messages, as
// golang.org/x/net/ipv4.PacketConn.ReadBatch does: it waits until at least
// one datagram is there (or the read deadline passes, or the Conn is
// closed), then fills ms[0], ms[1], ... with what is queued and returns how
// many it filled. quic-go uses it for all reads.
//
// It reads through batchconn: on Linux, recvmmsg, with UDP GRO on unless
// [WithGRO](false) or BATCHCONN_DISABLE_GRO=1 turned it off. Buffers the
// kernel coalesced with GRO are split again, so every message holds exactly
// one datagram, with the buffer's control messages (ECN, packet info)
// repeated on each; datagrams beyond len(ms) wait in the Conn for the next
// read. The datagrams are copied into ms's own buffers, and nothing of ms is
// kept after the call.
//
// Each message's Addr is a *net.UDPAddr shared by the datagrams from the
// same source (a few recent sources are remembered): it must not be
// modified. So ReadBatch allocates nothing while the peers stay the same,
// where x/net allocates two objects per datagram.
//
// Errors are shaped as x/net's: a *net.OpError with Op "read", wrapping
// os.ErrDeadlineExceeded, net.ErrClosed or an *os.SyscallError. It returns
// an error whenever it returns 0, also for an empty ms.
func (c *Conn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	c.reads.Add(1)
	if len(ms) == 0 {
		return 0, c.readError(errNoMessages)
	}
	ms = ms[:min(len(ms), batchconn.MaxMessages)]
	r := &c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	msgs := r.msgs[:0]
	for i := range ms {
		msgs = append(msgs, batchconn.Message{Buffers: ms[i].Buffers, OOB: ms[i].OOB})
	}
	n, err := r.bc.ReadMessages(context.Background(), msgs, flags)
	for i := range n {
		m, out := &msgs[i], &ms[i]
		out.N, out.NN, out.Flags = m.N, m.NN, m.Flags
		out.Addr = r.addrs.get(m.Addr)
	}
	clear(msgs) // keep no pointer to the caller's buffers
	r.msgs = msgs[:0]
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = errNoMessages // cannot happen: ReadMessages reports why it read nothing
	}
	return 0, c.readError(err)
}

// ReadMsgUDP reads one datagram and its control messages, as
// [net.UDPConn.ReadMsgUDP], through the same receive path as
// [Conn.ReadBatch]: with GRO on it is served from the Conn's split
// batches, so it never sees a coalesced buffer. The *net.UDPAddr is a
// fresh one, as the UDPConn's.
func (c *Conn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	return c.r.bc.ReadMsgUDP(b, oob)
}

// ReadFrom reads one datagram, as [net.UDPConn.ReadFrom], through the same
// receive path as [Conn.ReadMsgUDP].
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) { return c.r.bc.ReadFrom(p) }

// readError gives err the shape of x/net's ReadBatch errors:
// *net.OpError{Op: "read", Net: "udp", Source: the local address} around
// the cause (batchconn names the network as the socket was made, "udp4").
func (c *Conn) readError(err error) error {
	if op, ok := errors.AsType[*net.OpError](err); ok {
		err = op.Err
	}
	return &net.OpError{Op: "read", Net: c.laddr.Network(), Source: c.laddr, Err: err}
}

// addrCacheSize is how many sources an addrCache remembers: a server's
// busiest peers, or a client's few servers.
const addrCacheSize = 16

// An addrCache turns datagram sources into *net.UDPAddr values, allocating
// only for a source it does not hold. The values are shared between
// packets; quic-go never modifies a packet's address.
type addrCache struct {
	ent  [addrCacheSize]addrEntry
	last int // the entry that served the last lookup
	next int // the entry to replace next (round robin)
}

type addrEntry struct {
	ap netip.AddrPort
	ua *net.UDPAddr
}

func (c *addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	if e := &c.ent[c.last]; e.ua != nil && e.ap == ap {
		return e.ua
	}
	for i := range c.ent {
		if e := &c.ent[i]; e.ua != nil && e.ap == ap {
			c.last = i
			return e.ua
		}
	}
	i := c.next
	c.next = (i + 1) % addrCacheSize
	c.ent[i] = addrEntry{ap: ap, ua: net.UDPAddrFromAddrPort(ap)}
	c.last = i
	return c.ent[i].ua
}
