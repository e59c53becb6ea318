package batchconn

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// A replyTable remembers, for the peers whose datagrams reached a Conn on a
// wildcard address, the local address each one wrote to, so that the
// Conn's replies to it leave from that address (WithReplySource). It is
// bounded: replySets sets of replyWays peers each, a peer's set chosen by a
// hash of its address; a set that is full forgets its least recently seen
// peer, whose replies then leave from the address the kernel picks, as
// without the table. It is made (about 140 KiB) at the first datagram that
// tells an address, and allocates nothing after that. Reads that learn and
// writes that look up may run at once: each set has its own lock.
type replyTable struct {
	sets atomic.Pointer[[replySets]replySet] // nil until the first datagram that tells an address
	made sync.Mutex                          // makes sets, once
}

// replySets × replyWays peers: far more than a server has replies in
// flight (a DNS server at 100k queries/s with 1 ms to answer has about 100).
const (
	replySets = 512
	replyWays = 4
)

type replySet struct {
	mu   sync.Mutex
	tick uint32 // the set's clock, for least recently seen
	e    [replyWays]replyEntry
}

type replyEntry struct {
	peer    netip.AddrPort // the zero AddrPort: an empty way
	local   netip.Addr
	ifindex uint32
	seen    uint32 // tick of the last datagram from peer
}

// setOf returns the set peer belongs to. The hash mixes the address's
// bytes and the port (FNV-1a folded into 64 bits); it needs only to spread
// the peers a host talks to, not to resist an adversary: a peer that
// evicts another makes that one's replies leave from the kernel's choice
// of address, never fail.
func (t *replyTable) setOf(peer netip.AddrPort) *replySet {
	a := peer.Addr().As16()
	h := uint64(14695981039346656037)
	for _, b := range a {
		h = (h ^ uint64(b)) * 1099511628211
	}
	h = (h ^ uint64(peer.Port())) * 1099511628211
	return &t.sets.Load()[(h^h>>29)%replySets]
}

// learn records that peer's datagram arrived on local (through interface
// ifindex).
func (t *replyTable) learn(peer netip.AddrPort, local netip.Addr, ifindex uint32) {
	if !peer.IsValid() || !local.IsValid() {
		return
	}
	if t.sets.Load() == nil {
		t.made.Lock()
		if t.sets.Load() == nil {
			t.sets.Store(new([replySets]replySet))
		}
		t.made.Unlock()
	}
	s := t.setOf(peer)
	s.mu.Lock()
	s.tick++
	old := 0
	for i := range s.e {
		e := &s.e[i]
		if e.peer == peer {
			e.local, e.ifindex, e.seen = local, ifindex, s.tick
			s.mu.Unlock()
			return
		}
		if e.seen < s.e[old].seen {
			old = i
		}
	}
	s.e[old] = replyEntry{peer: peer, local: local, ifindex: ifindex, seen: s.tick}
	s.mu.Unlock()
}

// lookup returns the local address and interface peer's last datagram
// arrived on, if the table holds it.
func (t *replyTable) lookup(peer netip.AddrPort) (local netip.Addr, ifindex uint32, ok bool) {
	if t.sets.Load() == nil {
		return netip.Addr{}, 0, false
	}
	s := t.setOf(peer)
	s.mu.Lock()
	for i := range s.e {
		if e := &s.e[i]; e.peer == peer {
			local, ifindex, ok = e.local, e.ifindex, true
			break
		}
	}
	s.mu.Unlock()
	return local, ifindex, ok
}

// forget drops peer, after a reply from its remembered address failed
// (the address is gone): its replies leave from the kernel's choice until
// its next datagram tells the address again.
func (t *replyTable) forget(peer netip.AddrPort) {
	if t.sets.Load() == nil {
		return
	}
	s := t.setOf(peer)
	s.mu.Lock()
	for i := range s.e {
		if s.e[i].peer == peer {
			s.e[i] = replyEntry{}
		}
	}
	s.mu.Unlock()
}

// A replyState is the reply-source state of a Conn on a wildcard address
// ([WithReplySource]): the peers' local addresses, and the packet-info
// control message the Conn asked the kernel for to learn them.
type replyState struct {
	table replyTable
	level int32 // IPPROTO_IP or IPPROTO_IPV6
	typ   int32 // IP_PKTINFO or IPV6_PKTINFO
	// user says the Conn's user asked for that message too (before New,
	// or later through Conn.SyscallConn): received OOB then keeps it;
	// otherwise the Conn takes it out, so reads show what they showed
	// without the option.
	user atomic.Bool
}

// take learns, from the control messages a datagram from peer came with,
// the local address it arrived on, and returns oob without the packet-info
// message unless the user asked for it; it is taken out in place, and the
// messages after it move up, as if the kernel had never stored it.
func (r *replyState) take(peer netip.AddrPort, oob []byte) []byte {
	if local, ifindex, ok := ParsePacketInfo(oob); ok {
		r.table.learn(peer, local, ifindex)
	}
	if r.user.Load() {
		return oob
	}
	return cutCmsg(oob, r.level, r.typ)
}

// cutCmsg removes the first control message of the given level and type
// from oob, in place, and returns the rest. Malformed control data is
// returned as it is.
func cutCmsg(oob []byte, level, typ int32) []byte {
	for off := 0; off < len(oob); {
		lv, ty, next, bad := linuxCmsg.cmsgAt(oob, off)
		if bad != nil {
			return oob
		}
		next = min(next, len(oob))
		if lv == level && ty == typ {
			copy(oob[off:], oob[next:])
			return oob[:len(oob)-(next-off)]
		}
		off = next
	}
	return oob
}

// source returns the packet-info control message that makes a reply to
// dst leave from the address dst's last datagram arrived on, appended to
// the caller's own control messages oob (padded to a whole message) in
// buf, or nil when there is none to add: dst is unknown, or oob carries a
// source of its own.
func (r *replyState) source(buf, oob []byte, dst netip.AddrPort) []byte {
	if r == nil || hasSource(oob) {
		return nil
	}
	local, ifindex, ok := r.table.lookup(dst)
	if !ok {
		return nil
	}
	buf = append(buf[:0], oob...)
	for len(buf)%cmsgAlign != 0 {
		buf = append(buf, 0)
	}
	return AppendPacketInfo(buf, local, ifindex)
}

// hasSource reports whether oob carries a source address of the caller's
// own: IP_PKTINFO or IPV6_PKTINFO.
func hasSource(oob []byte) bool {
	if len(oob) == 0 {
		return false
	}
	f4, _ := findCmsg(oob, ipprotoIP, ipPktinfo)
	f6, _ := findCmsg(oob, ipprotoIPv6, ipv6Pktinfo)
	return f4 || f6
}

// Linux's packet-info control messages (include/uapi/linux/in.h, in6.h),
// the same on every architecture.
const (
	ipprotoIP   = 0
	ipprotoIPv6 = 41
	ipPktinfo   = 8
	ipv6Pktinfo = 50
)

// sourceGone reports whether err, from a send with a remembered source,
// says that address is no longer the host's (or its interface is gone):
// the datagram is sent again from the kernel's choice, and the peer
// forgotten until its next datagram tells the address again. Linux says
// EINVAL for a source the host lacks, ENETUNREACH for IPv4 (6.18),
// EADDRNOTAVAIL, and ENODEV for a gone interface.
func sourceGone(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EINVAL, syscall.ENETUNREACH, syscall.EADDRNOTAVAIL, syscall.ENODEV:
		return true
	}
	return false
}
