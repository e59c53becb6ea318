package wgbatch

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"

	"github.com/batchconn/batchconn/batchconn"
)

// An Endpoint is a peer's address as a [Bind] knows it: the destination its
// packets go to and, for an Endpoint a ReceiveFunc made, the sticky source:
// the local address (and, on Linux, the interface) the peer's packet
// arrived on, which the replies leave from, as WireGuard's "sticky sockets"
// do. A host with many addresses thus answers a peer from the address the
// peer wrote to, which is what NAT and firewall state between them expect.
//
// An Endpoint never changes after it is made, except that [Endpoint.ClearSrc]
// forgets its source for good. wireguard-go keeps the Endpoint of a peer's
// last packet, so the Bind hands out immutable ones: a ReceiveFunc reuses
// the Endpoint it made for an earlier packet from the same source to the
// same local address, from a small cache, so packets from known peers cost
// no allocation.
type Endpoint struct {
	dst     netip.AddrPort
	src     netip.Addr // zero: no sticky source
	ifindex uint32
	ctrl    [batchconn.PacketInfoSpace]byte // the control message that sends from src
	nctrl   uint8                           // bytes of it; 0: none
	cleared atomic.Bool                     // ClearSrc was called
}

func newEndpoint(dst netip.AddrPort, src netip.Addr, ifindex uint32) *Endpoint {
	e := &Endpoint{dst: dst, src: src, ifindex: ifindex}
	if src.IsValid() {
		e.nctrl = uint8(len(batchconn.AppendPacketInfo(e.ctrl[:0], src, ifindex)))
		if e.nctrl == 0 {
			e.src, e.ifindex = netip.Addr{}, 0 // no sticky sockets here
		}
	}
	return e
}

// ClearSrc forgets the sticky source address, so that later packets to the
// peer leave from the address the kernel's routing picks. wireguard-go calls
// it when the peer roams or the routes change; the Bind calls it itself when
// the kernel refuses the source (the address or interface is gone).
func (e *Endpoint) ClearSrc() { e.cleared.Store(true) }

// SrcIP returns the sticky source address, or the zero Addr when there is
// none.
func (e *Endpoint) SrcIP() netip.Addr {
	if e.cleared.Load() {
		return netip.Addr{}
	}
	return e.src
}

// SrcIfidx returns the index of the interface the peer's packet arrived on,
// which replies leave through, or 0 when there is no sticky source.
func (e *Endpoint) SrcIfidx() int32 {
	if e.cleared.Load() || !e.src.IsValid() {
		return 0
	}
	return int32(e.ifindex)
}

// SrcToString returns the sticky source address as a string, or "" when
// there is none.
func (e *Endpoint) SrcToString() string {
	if a := e.SrcIP(); a.IsValid() {
		return a.String()
	}
	return ""
}

// DstIP returns the peer's address.
func (e *Endpoint) DstIP() netip.Addr { return e.dst.Addr() }

// DstAddrPort returns the peer's address and port.
func (e *Endpoint) DstAddrPort() netip.AddrPort { return e.dst }

// DstToString returns the peer's address and port, as "192.0.2.1:51820" or
// "[2001:db8::1]:51820".
func (e *Endpoint) DstToString() string { return e.dst.String() }

// DstToBytes returns the peer's address and port in the binary form of
// [netip.AddrPort.MarshalBinary], as StdNetEndpoint does; wireguard-go
// feeds it to its cookie MACs.
func (e *Endpoint) DstToBytes() []byte {
	b, _ := e.dst.MarshalBinary()
	return b
}

// srcControl returns the control message that makes a packet leave from
// the sticky source, or nil.
func (e *Endpoint) srcControl() []byte {
	if e.nctrl == 0 || e.cleared.Load() {
		return nil
	}
	return e.ctrl[:e.nctrl]
}

// endpointCacheSize is how many Endpoints each socket's cache holds: far
// more peers than most devices have, for 8 KiB of pointers (64-bit).
const endpointCacheSize = 1024

// An endpointCache maps (source, local address, interface) to the Endpoint
// a ReceiveFunc made for it, so that a peer's packets reuse one. It is
// direct-mapped: a colliding source replaces the one before it, which costs
// only an allocation when that one comes back. The hash is seeded per cache,
// so a remote sender cannot aim collisions at a peer's slot. Its user holds
// the socket's receive lock.
type endpointCache struct {
	seed  uint64
	slots []*Endpoint // len is a power of two
	last  *Endpoint   // the previous packet's: runs from one peer skip the hash
}

func (c *endpointCache) init(size int) {
	n := 1
	for n < size {
		n <<= 1
	}
	c.slots = make([]*Endpoint, n)
	c.seed = rand.Uint64()
}

// get returns the Endpoint for a packet from src that arrived on local
// (zero if unknown) through interface ifindex.
func (c *endpointCache) get(src netip.AddrPort, local netip.Addr, ifindex uint32) *Endpoint {
	if e := c.last; e != nil && e.is(src, local, ifindex) {
		return e
	}
	slot := &c.slots[c.hash(src, local, ifindex)&uint64(len(c.slots)-1)]
	if e := *slot; e != nil && e.is(src, local, ifindex) {
		c.last = e
		return e
	}
	e := newEndpoint(src, local, ifindex)
	*slot, c.last = e, e
	return e
}

// is reports whether e is the uncleared Endpoint for a packet from src to
// local through ifindex.
func (e *Endpoint) is(src netip.AddrPort, local netip.Addr, ifindex uint32) bool {
	return e.dst == src && e.src == local && e.ifindex == ifindex && !e.cleared.Load()
}

func (c *endpointCache) hash(src netip.AddrPort, local netip.Addr, ifindex uint32) uint64 {
	s, l := src.Addr().As16(), local.As16()
	h := c.seed
	h = mix(h, binary.LittleEndian.Uint64(s[:8]))
	h = mix(h, binary.LittleEndian.Uint64(s[8:]))
	h = mix(h, uint64(src.Port())<<32|uint64(ifindex))
	h = mix(h, binary.LittleEndian.Uint64(l[:8]))
	h = mix(h, binary.LittleEndian.Uint64(l[8:]))
	return h
}

func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15 // 2^64 / the golden ratio
	return h ^ h>>29
}
