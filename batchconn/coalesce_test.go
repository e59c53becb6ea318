package batchconn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// The GSO planner (planner.runLen) and findCmsg are pure and portable, so
// they are tested here on every platform: against a slow reference that
// states the C14 run rule directly, and against the kernel's way of cutting
// a GSO send into datagrams.

// testCmsg returns one control message as the kernel lays it out on this
// architecture: a cmsghdr (size_t length, int level, int type), the data,
// and padding to the cmsg alignment.
func testCmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, cmsgAlignUp(cmsgHdrLen+len(data)))
	putCmsgLen(b, cmsgHdrLen+len(data))
	binary.NativeEndian.PutUint32(b[cmsgAlign:], uint32(level))
	binary.NativeEndian.PutUint32(b[cmsgAlign+4:], uint32(typ))
	copy(b[cmsgHdrLen:], data)
	return b
}

// Values from the Linux UAPI headers, spelled out to keep this file portable.
const (
	testSolIP  = 0   // SOL_IP
	testIPTOS  = 1   // IP_TOS
	testUDPGRO = 104 // UDP_GRO
)

func tosCmsg(tos byte) []byte {
	return testCmsg(testSolIP, testIPTOS, binary.NativeEndian.AppendUint32(nil, uint32(tos)))
}

func segCmsg(seg uint16) []byte {
	return testCmsg(solUDP, udpSegment, binary.NativeEndian.AppendUint16(nil, seg))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFindCmsg(t *testing.T) {
	// A cmsg whose length field is n, with only the header present.
	withLen := func(n int) []byte {
		b := make([]byte, cmsgHdrLen)
		putCmsgLen(b, n)
		binary.NativeEndian.PutUint32(b[cmsgAlign:], solUDP)
		binary.NativeEndian.PutUint32(b[cmsgAlign+4:], udpSegment)
		return b
	}
	unpadded := tosCmsg(0x10)[:cmsgHdrLen+4] // the last cmsg needs no padding
	tests := []struct {
		name      string
		oob       []byte
		found, ok bool
	}{
		{"nil control data holds nothing and is well formed", nil, false, true},
		{"empty control data holds nothing and is well formed", []byte{}, false, true},
		{"a lone UDP_SEGMENT is found", segCmsg(1200), true, true},
		{"a lone IP_TOS is not a UDP_SEGMENT", tosCmsg(0x10), false, true},
		{"a UDP_SEGMENT after an IP_TOS is found", cat(tosCmsg(0x10), segCmsg(1200)), true, true},
		{"a UDP_SEGMENT before an IP_TOS is found", cat(segCmsg(1200), tosCmsg(0x10)), true, true},
		{"the UDP_SEGMENT type at another level is not a match", testCmsg(testSolIP, udpSegment, []byte{1, 2}), false, true},
		{"another SOL_UDP type is not a match", testCmsg(solUDP, testUDPGRO, []byte{1, 0, 0, 0}), false, true},
		{"a header with no data is well formed", testCmsg(testSolIP, testIPTOS, nil), false, true},
		{"a last cmsg without trailing padding is well formed", unpadded, false, true},
		{"three cmsgs are walked to the end", cat(tosCmsg(1), tosCmsg(2), segCmsg(9)), true, true},
		{"fewer bytes than a header are malformed", make([]byte, cmsgHdrLen-1), false, false},
		{"a length of zero is malformed rather than looping", withLen(0), false, false},
		{"a length shorter than the header is malformed", withLen(cmsgHdrLen - 1), false, false},
		{"a length past the end of the data is malformed", withLen(cmsgHdrLen + 3), false, false},
		{"a length far past the end is malformed", withLen(1 << 30), false, false},
		{"trailing bytes too short for a header are malformed", cat(tosCmsg(1), []byte{1, 2, 3}), false, false},
		{"a UDP_SEGMENT followed by garbage is found but malformed", cat(segCmsg(100), []byte{1}), true, false},
		{"a bad second cmsg makes the whole malformed", cat(tosCmsg(1), withLen(2*cmsgHdrLen)), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, ok := findCmsg(tt.oob, solUDP, udpSegment)
			if found != tt.found || ok != tt.ok {
				t.Errorf("findCmsg(% x) = (found %v, ok %v), want (%v, %v)", tt.oob, found, ok, tt.found, tt.ok)
			}
		})
	}
}

// msgOf makes a message of the given size to addr, its payload cut into
// parts buffers.
func msgOf(addr netip.AddrPort, oob []byte, size, parts int) Message {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	m := Message{Addr: addr, OOB: oob}
	for k := range parts {
		m.Buffers = append(m.Buffers, data[k*size/parts:(k+1)*size/parts])
	}
	return m
}

// msgsOf makes one message per size, all to addr with the same OOB.
func msgsOf(addr netip.AddrPort, oob []byte, sizes ...int) []Message {
	var ms []Message
	for _, s := range sizes {
		ms = append(ms, msgOf(addr, oob, s, 1))
	}
	return ms
}

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

func TestPlannerRunLen(t *testing.T) {
	a4 := netip.MustParseAddrPort("192.0.2.1:443")
	b4 := netip.MustParseAddrPort("192.0.2.2:443")
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:443")
	a6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	var peer netip.AddrPort
	on4 := planner{gso: true, sock4: true, maxSegs: maxGSOSegments}
	on6 := planner{gso: true, maxSegs: maxGSOSegments}
	on6peer4 := planner{gso: true, peer4: true, maxSegs: maxGSOSegments}

	manyBufs := func(n, parts int) []Message {
		ms := make([]Message, n)
		for i := range ms {
			ms[i] = msgOf(a4, nil, 1000, parts)
		}
		return ms
	}
	bigOOB := cat(tosCmsg(1), tosCmsg(2))
	tests := []struct {
		name      string
		p         planner
		msgs      []Message
		i         int
		wantCount int
		wantSeg   int
	}{
		{"a single message is never a run", on4, msgsOf(a4, nil, 1200), 0, 1, 0},
		{"the last message is never a run", on4, msgsOf(a4, nil, 1200, 1200, 1200), 2, 1, 0},
		{"two equal messages are a run", on4, msgsOf(a4, nil, 1200, 1200), 0, 2, 1200},
		{"a run may start in the middle", on4, msgsOf(a4, nil, 100, 1200, 1200, 1200), 1, 3, 1200},
		{"a shorter last message joins and ends the run", on4, msgsOf(a4, nil, 1200, 1200, 500, 1200), 0, 3, 1200},
		{"a tail one byte short ends the run", on4, msgsOf(a4, nil, 1200, 1200, 1199, 1199), 0, 3, 1200},
		{"a longer message ends the run before it", on4, msgsOf(a4, nil, 1200, 1200, 1201), 0, 2, 1200},
		{"a shorter second message makes a run of two", on4, msgsOf(a4, nil, 1200, 1), 0, 2, 1200},
		{"a longer second message means no run", on4, msgsOf(a4, nil, 1200, 1300, 1300), 0, 1, 0},
		{"an empty first message is never coalesced", on4, msgsOf(a4, nil, 0, 0, 0), 0, 1, 0},
		{"an empty message ends a run before it", on4, msgsOf(a4, nil, 1200, 1200, 0, 1200), 0, 2, 1200},
		{"1-byte messages are coalesced", on4, msgsOf(a4, nil, 1, 1, 1), 0, 3, 1},
		{"a run stops at 64 segments", on4, msgsOf(a4, nil, repeat(100, 10)...), 0, 64, 10},
		{"the 65th message starts a new run", on4, msgsOf(a4, nil, repeat(100, 10)...), 64, 36, 10},
		{"a smaller segment limit is honoured", planner{gso: true, sock4: true, maxSegs: 3}, msgsOf(a4, nil, repeat(5, 10)...), 0, 3, 10},
		{"GSO off means no runs", planner{sock4: true, maxSegs: maxGSOSegments}, msgsOf(a4, nil, 1200, 1200), 0, 1, 0},
		{"messages before plainUntil are not coalesced", planner{gso: true, sock4: true, maxSegs: 64, plainUntil: 2}, msgsOf(a4, nil, 1200, 1200, 1200, 1200), 1, 1, 0},
		{"messages from plainUntil on are coalesced again", planner{gso: true, sock4: true, maxSegs: 64, plainUntil: 2}, msgsOf(a4, nil, 1200, 1200, 1200, 1200), 2, 2, 1200},
		{"another destination ends the run", on4, append(msgsOf(a4, nil, 1200, 1200), msgsOf(b4, nil, 1200)...), 0, 2, 1200},
		{"another port is another destination", on4, append(msgsOf(a4, nil, 1200), msgsOf(netip.AddrPortFrom(a4.Addr(), 444), nil, 1200)...), 0, 1, 0},
		{"an IPv4 address and its IPv4-mapped form are not merged", on6, append(msgsOf(a4, nil, 1200), msgsOf(mapped, nil, 1200)...), 0, 1, 0},
		{"different OOB ends the run", on4, append(msgsOf(a4, tosCmsg(1), 1200, 1200), msgsOf(a4, tosCmsg(2), 1200)...), 0, 2, 1200},
		{"byte-identical OOB is coalesced", on4, msgsOf(a4, bigOOB, 1200, 1200, 1200), 0, 3, 1200},
		{"OOB against none ends the run", on4, append(msgsOf(a4, nil, 1200), msgsOf(a4, tosCmsg(1), 1200)...), 0, 1, 0},
		{"nil and empty OOB are the same bytes", on4, append(msgsOf(a4, nil, 1200), msgsOf(a4, []byte{}, 1200)...), 0, 2, 1200},
		{"a caller's UDP_SEGMENT is sent as given", on4, msgsOf(a4, segCmsg(100), 1200, 1200), 0, 1, 0},
		{"a caller's UDP_SEGMENT after another cmsg is sent as given", on4, msgsOf(a4, cat(tosCmsg(1), segCmsg(100)), 1200, 1200), 0, 1, 0},
		{"malformed OOB is sent as given", on4, msgsOf(a4, []byte{1, 2, 3}, 1200, 1200), 0, 1, 0},
		{"IPv4 payload of 65507 bytes is one run", on4, msgsOf(a4, nil, 40000, 25507), 0, 2, 40000},
		{"IPv4 payload of 65508 bytes is not", on4, msgsOf(a4, nil, 40000, 25508), 0, 1, 0},
		{"IPv4 two halves of 32754 are not coalesced", on4, msgsOf(a4, nil, 32754, 32754), 0, 1, 0},
		{"IPv4 payload limit cuts a long run", on4, msgsOf(a4, nil, repeat(64, 1200)...), 0, 54, 1200},
		{"IPv6 payload of 65527 bytes is one run", on6, msgsOf(a6, nil, 40000, 25527), 0, 2, 40000},
		{"IPv6 payload of 65528 bytes is not", on6, msgsOf(a6, nil, 40000, 25528), 0, 1, 0},
		{"IPv4-mapped destinations get the IPv4 limit", on6, msgsOf(mapped, nil, 40000, 25508), 0, 1, 0},
		{"IPv4-mapped destinations are coalesced up to it", on6, msgsOf(mapped, nil, 40000, 25507), 0, 2, 40000},
		{"IPv4 destinations on a dual-stack socket get the IPv4 limit", on6, msgsOf(a4, nil, 40000, 25508), 0, 1, 0},
		{"the connected IPv6 peer gets the IPv6 limit", on6, msgsOf(peer, nil, 40000, 25527), 0, 2, 40000},
		{"the connected IPv4 peer of a dual-stack socket gets the IPv4 limit", on6peer4, msgsOf(peer, nil, 40000, 25508), 0, 1, 0},
		{"an IPv4 socket's peer gets the IPv4 limit", on4, msgsOf(peer, nil, 40000, 25508), 0, 1, 0},
		{"a message over the payload limit is never coalesced", on4, msgsOf(a4, nil, 70000, 1), 0, 1, 0},
		{"1024 iovecs fit in one run", on4, manyBufs(64, 16), 0, 64, 1000},
		{"the iovec limit cuts a run", on4, manyBufs(64, 20), 0, 51, 1000},
		{"a first message with too many iovecs is alone", on4, manyBufs(2, 1025), 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			count, seg := p.runLen(tt.msgs, tt.i)
			if count != tt.wantCount || seg != tt.wantSeg {
				t.Errorf("runLen(msgs, %d) = (%d, %d), want (%d, %d)", tt.i, count, seg, tt.wantCount, tt.wantSeg)
			}
			if got := refRunLen(&p, tt.msgs, datagramSizes(tt.msgs), tt.i, fuzzOOBEligible); got != count {
				t.Errorf("reference run length %d, planner %d", got, count)
			}
		})
	}
}

// Reference planner: the C14 run rule stated as a predicate over a whole
// candidate run, and the longest candidate that satisfies it. It is
// quadratic and knows nothing of how runLen scans; that is the point.

// refRunOK reports whether run may go out as one GSO send.
// sizes[k] is the length of run[k]'s datagram.
func refRunOK(p *planner, run []Message, sizes []int, eligible func([]byte) bool) bool {
	if len(run) < 2 || len(run) > p.maxSegs {
		return false
	}
	first := run[0]
	if !eligible(first.OOB) {
		return false
	}
	seg := sizes[0]
	if seg == 0 {
		return false
	}
	total, iovs := 0, 0
	for k, m := range run {
		if m.Addr != first.Addr || !bytes.Equal(m.OOB, first.OOB) {
			return false
		}
		size := sizes[k]
		switch {
		case k < len(run)-1 && size != seg: // all but the last: exactly seg
			return false
		case k == len(run)-1 && (size == 0 || size > seg): // the last: 1..seg
			return false
		}
		total += size
		iovs += len(m.Buffers)
	}
	return total <= refLimit(p, first.Addr) && iovs <= 1024 // UIO_MAXIOV
}

// refLimit is the payload ceiling for a datagram to a.
func refLimit(p *planner, a netip.AddrPort) int {
	v4 := p.sock4
	switch {
	case a == netip.AddrPort{}:
		v4 = v4 || p.peer4
	case a.Addr().Is4(), a.Addr().Is4In6():
		v4 = true
	}
	if v4 {
		return 65535 - 20 - 8
	}
	return 65535 - 8
}

// refRunLen is how many messages from msgs[i] the reference sends as one.
// sizes[k] is the length of msgs[k]'s datagram.
func refRunLen(p *planner, msgs []Message, sizes []int, i int, eligible func([]byte) bool) int {
	if !p.gso || i < p.plainUntil {
		return 1
	}
	best := 1
	for c := 2; c <= p.maxSegs && i+c <= len(msgs); c++ {
		if refRunOK(p, msgs[i:i+c], sizes[i:i+c], eligible) {
			best = c
		}
	}
	return best
}

// fuzzOOB are the control data variants fuzzed messages carry, with what
// the reference is told about them (so it does not parse them at all).
var fuzzOOB = []struct {
	oob       []byte
	callerSeg bool // holds the caller's own UDP_SEGMENT
	malformed bool
}{
	{oob: nil},
	{oob: []byte{}},
	{oob: tosCmsg(0x10)},
	{oob: tosCmsg(0x20)},
	{oob: segCmsg(100), callerSeg: true},
	{oob: cat(tosCmsg(0x10), segCmsg(1200)), callerSeg: true},
	{oob: withBadLen(tosCmsg(0x10)), malformed: true},
	{oob: []byte{1, 2, 3, 4, 5}, malformed: true},
}

func withBadLen(b []byte) []byte {
	b = bytes.Clone(b)
	putCmsgLen(b, len(b)+1)
	return b
}

// fuzzOOBEligible reports whether oob may start a run: from fuzzOOB's
// labels (checked by TestFuzzOOBLabels), or, for control data of the table
// tests, from findCmsg (checked by TestFindCmsg).
func fuzzOOBEligible(oob []byte) bool {
	for _, v := range fuzzOOB {
		if bytes.Equal(v.oob, oob) && len(v.oob) == len(oob) {
			return !v.callerSeg && !v.malformed
		}
	}
	found, ok := findCmsg(oob, solUDP, udpSegment) // TestFindCmsg checks this one
	return !found && ok
}

var fuzzAddrs = []netip.AddrPort{
	{}, // the connected peer
	netip.MustParseAddrPort("10.0.0.1:443"),
	netip.MustParseAddrPort("10.0.0.1:444"),
	netip.MustParseAddrPort("10.0.0.2:443"),
	netip.MustParseAddrPort("[::ffff:10.0.0.1]:443"),
	netip.MustParseAddrPort("[2001:db8::1]:443"),
	netip.MustParseAddrPort("[fe80::1%eth0]:443"),
	netip.MustParseAddrPort("[fe80::1%eth1]:443"),
}

var fuzzSizes = []int{0, 1, 2, 100, 1199, 1200, 1201, 9000, 21835, 32753, 32754, 32763, 32764, 65507, 65527, 70000}

// fuzzPattern backs every fuzzed payload: pseudo-random bytes, so that
// datagrams cut from different offsets differ.
var fuzzPattern = func() []byte {
	b := make([]byte, 1<<17+70000)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// fuzzMessages decodes a planner and a message list from data.
//
//	data[0]: bit 0 IPv4 socket, bit 1 IPv4 peer, bit 2 GSO off,
//	         bit 3 a 4-segment limit (else 64); data[1]: plainUntil.
//	then 3 bytes per message:
//	  a: bit 7 clear = same Addr and OOB as the previous message,
//	     else Addr fuzzAddrs[a&7], OOB fuzzOOB[a>>3&7];
//	  b: < 128 = same size as the previous message (1200 for the first),
//	     else fuzzSizes[b&15], minus b>>4&7 bytes;
//	  c: the number of buffers: c&3+1, or 300 when c&3 == 3 and c&4 set.
func fuzzMessages(data []byte) (planner, []Message) {
	p := planner{gso: true, maxSegs: maxGSOSegments}
	if len(data) >= 2 {
		p.sock4 = data[0]&1 != 0
		p.peer4 = data[0]&2 != 0
		p.gso = data[0]&4 == 0
		if data[0]&8 != 0 {
			p.maxSegs = 4
		}
		p.plainUntil = int(data[1])
		data = data[2:]
	}
	var msgs []Message
	addr, oob, size := 0, 0, 1200
	for i := 0; len(data) >= 3 && i < MaxMessages+100; i++ {
		a, b, c := data[0], data[1], data[2]
		data = data[3:]
		if a&0x80 != 0 {
			addr, oob = int(a&7), int(a>>3&7)
		}
		if b >= 128 {
			size = max(0, fuzzSizes[b&15]-int(b>>4&7))
		}
		parts := int(c&3) + 1
		if c&3 == 3 && c&4 != 0 {
			parts = 300
		}
		off := (i * 7919) % (len(fuzzPattern) - size)
		payload := fuzzPattern[off : off+size : off+size]
		m := Message{Addr: fuzzAddrs[addr], OOB: fuzzOOB[oob].oob, N: -1}
		for k := range parts {
			m.Buffers = append(m.Buffers, payload[k*size/parts:(k+1)*size/parts])
		}
		msgs = append(msgs, m)
	}
	return p, msgs
}

func datagram(m *Message) []byte { return bytes.Join(m.Buffers, nil) }

func datagramSizes(msgs []Message) []int {
	sizes := make([]int, len(msgs))
	for k := range msgs {
		for _, b := range msgs[k].Buffers {
			sizes[k] += len(b)
		}
	}
	return sizes
}

func FuzzCoalesce(f *testing.F) {
	msg := func(a, b, c byte) []byte { return []byte{a, b, c} }
	same := msg(0, 0, 0)       // same Addr, OOB and size as before
	full := msg(0x81, 0x85, 0) // 10.0.0.1:443, no OOB, 1200 bytes
	seeds := [][]byte{
		{},
		cat([]byte{1, 0}, full, same, same, msg(0, 0x83, 0), same),                       // run, short tail, new run
		cat([]byte{1, 0}, full, same, msg(0, 0x84, 0), same, same),                       // 1199-byte tail, then a run of them
		cat([]byte{1, 0}, full, bytes.Repeat(same, 70)),                                  // 71 equal: 64 + 7
		cat([]byte{1, 0}, full, bytes.Repeat(same, 60)),                                  // 61 × 1200 over the IPv4 limit
		cat([]byte{0, 0}, msg(0x84, 0x8a, 0), same, msg(0x85, 0x8a, 0), same),            // 32754 × 2 mapped, then IPv6
		cat([]byte{0, 0}, msg(0x85, 0x8c, 0), same, msg(0x85, 0x8b, 0), same),            // 32764 × 2, 32763 × 2 IPv6
		cat([]byte{2, 0}, msg(0x80, 0x85, 0), same, same),                                // connected IPv4 peer
		cat([]byte{1, 0}, msg(0x91, 0x85, 0), same, msg(0x99, 0x85, 0), same, same),      // IP_TOS 0x10, then 0x20
		cat([]byte{1, 0}, msg(0xa1, 0x85, 0), same, msg(0xb1, 0x85, 0), same),            // caller UDP_SEGMENT, malformed
		cat([]byte{1, 0}, msg(0x81, 0x85, 7), same, same, same, same),                    // 300 buffers each
		cat([]byte{1, 0}, msg(0x81, 0x80, 0), same, msg(0, 0x81, 0), same, same),         // 0- and 1-byte datagrams
		cat([]byte{1, 2}, full, same, same, same),                                        // plainUntil 2
		cat([]byte{5, 0}, full, same, same),                                              // GSO off
		cat([]byte{9, 0}, full, same, same, same, same, same),                            // 4-segment limit
		cat([]byte{1, 0}, full, msg(0x83, 0, 0), msg(0x81, 0, 0), same, msg(0x83, 0, 0)), // interleaved destinations
		cat([]byte{1, 0}, msg(0x81, 0x8d, 2), msg(0, 0xf5, 1), msg(0x81, 0x8f, 0), same), // 65507 at once, 70000
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, msgs := fuzzMessages(data)
		checkPlan(t, &p, msgs)
	})
}

// checkPlan runs the planner over msgs as the sender does and checks each
// run against the reference, the kernel's segmentation and the limits.
func checkPlan(t *testing.T, p *planner, msgs []Message) {
	t.Helper()
	sizes := datagramSizes(msgs)
	for i := 0; i < len(msgs); {
		count, seg := p.runLen(msgs, i)
		if count < 1 || i+count > len(msgs) {
			t.Fatalf("runLen(msgs, %d) = %d: out of range for %d messages", i, count, len(msgs))
		}
		run := msgs[i : i+count]
		where := fmt.Sprintf("run msgs[%d:%d] (seg %d)", i, i+count, seg)

		// (a) The same runs as the reference.
		if want := refRunLen(p, msgs, sizes, i, fuzzOOBEligible); count != want {
			t.Fatalf("%s: planner coalesces %d messages, reference %d", where, count, want)
		}

		if count == 1 {
			if seg != 0 {
				t.Fatalf("%s: a single message must not get a segment size", where)
			}
			i++
			continue
		}

		// (c) The limits of C14 and the kernel.
		total, iovs := 0, 0
		for k := range run {
			total += msgLen(&run[k])
			iovs += len(run[k].Buffers)
		}
		switch {
		case count > maxGSOSegments || count > p.maxSegs:
			t.Fatalf("%s: %d segments, limit %d", where, count, p.maxSegs)
		case total > refLimit(p, run[0].Addr):
			t.Fatalf("%s: %d payload bytes over the limit %d", where, total, refLimit(p, run[0].Addr))
		case iovs > maxIovecs:
			t.Fatalf("%s: %d iovecs over the limit", where, iovs)
		case seg < 1 || seg > 0xffff:
			t.Fatalf("%s: segment size does not fit UDP_SEGMENT's u16", where)
		case !p.gso || i < p.plainUntil:
			t.Fatalf("%s: coalesced while GSO is off for it (gso %v, plainUntil %d)", where, p.gso, p.plainUntil)
		}
		if found, ok := findCmsg(run[0].OOB, solUDP, udpSegment); found || !ok {
			t.Fatalf("%s: OOB with a caller UDP_SEGMENT or malformed (found %v, ok %v)", where, found, ok)
		}

		// (b) What the kernel does with the run, cutting the gathered
		// payload into seg-byte datagrams, gives back the messages.
		var whole []byte
		for k := range run {
			whole = append(whole, datagram(&run[k])...)
		}
		for k := range run {
			n := min(seg, len(whole))
			if n == 0 {
				t.Fatalf("%s: the kernel would send %d datagrams, want %d", where, k, count)
			}
			if want := datagram(&run[k]); !bytes.Equal(whole[:n], want) {
				t.Fatalf("%s: datagram %d comes out as %d bytes, want %d bytes (equal: %v)",
					where, k, n, len(want), bytes.Equal(whole[:n], want))
			}
			whole = whole[n:]
		}
		if len(whole) != 0 {
			t.Fatalf("%s: %d bytes left over after cutting into datagrams", where, len(whole))
		}
		i += count
	}
}

func TestFuzzOOBLabels(t *testing.T) {
	// The fuzz reference trusts fuzzOOB's labels; check them against the
	// kernel's rules as findCmsg applies them.
	for i, v := range fuzzOOB {
		found, ok := findCmsg(v.oob, solUDP, udpSegment)
		if ok == v.malformed || ok && found != v.callerSeg {
			t.Errorf("fuzzOOB[%d] = % x: findCmsg says (found %v, ok %v), labels (callerSeg %v, malformed %v)",
				i, v.oob, found, ok, v.callerSeg, v.malformed)
		}
	}
}
