package batchconn

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// A replyTable remembers, for the peers whose datagrams reached a Conn on a
// wildcard address, the local address each one wrote to, so that the
// Conn's replies to it leave from that address (WithReplySource). It is
// bounded: replySets sets of replyWays peers each, a peer's set chosen by a
// hash of its address; a set that is full forgets its least recently seen
// peer, whose replies then leave from the address the kernel picks, as
// without the table. It is made (about 100 KiB) at the first datagram that
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
