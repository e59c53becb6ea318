//go:build linux

// UDP GSO is a Linux feature, and these tests need the Linux kernel's own
// ways of failing it (SO_NO_CHECK, a segment over the route MTU). With the
// batchconn_sendmsg tag GSO is off: transparency still holds and is checked,
// and the tests that need GSO skip.

package batchconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
	"golang.org/x/sys/unix"
)

// gsoWait bounds every wait for datagrams. Loopback delivers within the
// sending system call, so it only matters when a test is failing.
const gsoWait = 10 * time.Second

// gsoSentinel is sent, without WriteMessages, after a test's messages. Loopback
// and a veth link keep one socket's datagrams in order, so a receiver that got
// the sentinel has got everything sent before it, and nothing else may sit
// between the expected datagrams and the sentinel.
var gsoSentinel = []byte("batchconn gso test: end of datagrams")

// gsoCmsg returns one control message with an integer of the given size.
func gsoCmsg(level, typ int32, size int, v uint32) []byte {
	b := make([]byte, unix.CmsgSpace(size))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(size))
	data := b[unix.CmsgLen(0):]
	switch size {
	case 2:
		binary.NativeEndian.PutUint16(data, uint16(v))
	case 4:
		binary.NativeEndian.PutUint32(data, v)
	}
	return b
}

func gsoTOS(tos uint32) []byte   { return gsoCmsg(unix.IPPROTO_IP, unix.IP_TOS, 4, tos) }
func gsoTClass(tc uint32) []byte { return gsoCmsg(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 4, tc) }
func gsoSegment(seg int) []byte  { return gsoCmsg(unix.IPPROTO_UDP, unix.UDP_SEGMENT, 2, uint32(seg)) }
func gsoSizes(n, size int) []int { return slices.Repeat([]int{size}, n) }

// gsoBatch builds a message list. Every datagram is stamped with its index
// in the list, so that loss, duplication and reordering all show.
type gsoBatch struct {
	dst  []netip.AddrPort
	msgs []batchconn.Message
}

// add appends one message per size to destination d, each with oob and its
// payload cut into parts buffers (the last ones empty if the payload is
// short).
func (b *gsoBatch) add(d int, oob []byte, parts int, sizes ...int) *gsoBatch {
	for _, size := range sizes {
		k := len(b.msgs)
		p := make([]byte, size)
		for j := range p {
			p[j] = byte(k*7 + j*13 + j>>8)
		}
		if size >= 2 {
			binary.BigEndian.PutUint16(p, uint16(k))
		}
		m := batchconn.Message{Addr: b.dst[d], OOB: oob, N: -1}
		for i := range parts {
			m.Buffers = append(m.Buffers, p[i*size/parts:(i+1)*size/parts])
		}
		b.msgs = append(b.msgs, m)
	}
	return b
}

// to appends plain single-buffer messages to destination d.
func (b *gsoBatch) to(d int, sizes ...int) *gsoBatch { return b.add(d, nil, 1, sizes...) }

// gsoDatagrams is what a receiver should get from m: its gathered payload, or,
// if m carries the caller's own UDP_SEGMENT, that payload cut into segments.
func gsoDatagrams(m *batchconn.Message) [][]byte {
	p := bytes.Join(m.Buffers, nil)
	seg := 0
	if cms, err := unix.ParseSocketControlMessage(m.OOB); err == nil {
		for _, cm := range cms {
			if cm.Header.Level == unix.IPPROTO_UDP && cm.Header.Type == unix.UDP_SEGMENT {
				seg = int(binary.NativeEndian.Uint16(cm.Data))
			}
		}
	}
	if seg == 0 || len(p) <= seg {
		return [][]byte{p}
	}
	var ds [][]byte
	for len(p) > 0 {
		n := min(seg, len(p))
		ds = append(ds, p[:n])
		p = p[n:]
	}
	return ds
}

// gsoCheckArrivals checks that each receiver got exactly the datagrams of msgs
// sent to it, whole and in order, and nothing else; dst[i] is rxs[i]'s
// address in msgs. It sends the sentinel from uc to every receiver first.
func gsoCheckArrivals(t *testing.T, uc *net.UDPConn, rxs []*testnet.Receiver, dst []netip.AddrPort, msgs []batchconn.Message) {
	t.Helper()
	for i, rx := range rxs {
		var want [][]byte
		for k := range msgs {
			if msgs[k].Addr == dst[i] {
				want = append(want, gsoDatagrams(&msgs[k])...)
			}
		}
		var err error
		if uc.RemoteAddr() != nil {
			_, err = uc.Write(gsoSentinel)
		} else {
			_, err = uc.WriteToUDPAddrPort(gsoSentinel, dst[i])
		}
		if err != nil {
			t.Fatalf("sending the sentinel to %v: %v", dst[i], err)
		}
		got := rx.Collect(len(want)+1, gsoWait)
		gsoCompare(t, fmt.Sprintf("receiver %d (%v)", i, rx.Addr()), got, want)
	}
}

// gsoCompare reports the first difference between the datagrams a receiver
// got and want followed by the sentinel.
func gsoCompare(t *testing.T, who string, got []testnet.Datagram, want [][]byte) {
	t.Helper()
	for k := range max(len(got), len(want)+1) {
		var g, w []byte
		switch {
		case k >= len(got):
			t.Errorf("%s: got %d datagrams, want %d and the sentinel", who, len(got), len(want))
			return
		case k > len(want):
			t.Errorf("%s: %d extra datagrams after the sentinel", who, len(got)-len(want)-1)
			return
		case k == len(want):
			w = gsoSentinel
		default:
			w = want[k]
		}
		if g = got[k].Payload; !bytes.Equal(g, w) {
			t.Errorf("%s: datagram %d is %d bytes (% x...), want %d bytes (% x...)",
				who, k, len(g), g[:min(len(g), 4)], len(w), w[:min(len(w), 4)])
			return
		}
	}
}

// A gsoSender is the socket a transparency case sends from.
type gsoSender struct {
	network string // "udp4", "udp6", or "udp" (dual-stack)
	connect bool   // connected to the first receiver; messages use the zero Addr
}

// A gsoRx is one receiver of a case, and how the messages address it.
type gsoRx struct {
	network string // "udp4" or "udp6"
	mapped  bool   // address the IPv4 receiver by its IPv4-mapped IPv6 form
}

var (
	gsoRx4    = gsoRx{network: "udp4"}
	gsoRx6    = gsoRx{network: "udp6"}
	gsoRx4in6 = gsoRx{network: "udp4", mapped: true}
)

type gsoCase struct {
	name       string
	from       gsoSender
	to         []gsoRx
	build      func(b *gsoBatch)
	gsoBatches uint64 // runs the kernel must accept as GSO sends, with GSO on
	// gsoBatches128, if not 0, replaces gsoBatches where the kernel takes
	// 128 segments per GSO send (batchconn.GSOSegments).
	gsoBatches128 uint64
	fallbacks     uint64 // GSO sends the kernel must refuse, with GSO on
}

var gsoCases = []gsoCase{
	{
		name: "equal sizes to one destination are one run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(10, 1200)...) },
		gsoBatches: 1,
	},
	{
		name: "a short tail ends the run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(9, 1200)...).to(0, 700) },
		gsoBatches: 1,
	},
	{
		name: "messages after a short tail start a new run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(4, 1200)...).to(0, 300).to(0, gsoSizes(4, 1200)...) },
		gsoBatches: 2,
	},
	{
		name: "a tail one byte short ends the run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, 1200, 1200, 1199, 1199, 1199) },
		gsoBatches: 2,
	},
	{
		name: "a longer message starts a new run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(3, 1000)...).to(0, gsoSizes(3, 1200)...) },
		gsoBatches: 2,
	},
	{
		name: "plain messages between runs go out as they are",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, 100, 1200, 1200, 1200, 50, 1200, 1200, 7) },
		gsoBatches: 2,
	},
	{
		name: "0- and 1-byte datagrams arrive as they were",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, 0, 0, 1, 1, 1, 0, 1, 1, 0) },
		gsoBatches: 2,
	},
	{
		name: "messages of only empty buffers are 0-byte datagrams",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.add(0, nil, 3, 0, 0, 2, 2, 0) },
		gsoBatches: 1,
	},
	{
		name: "messages with several buffers each are gathered",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build: func(b *gsoBatch) {
			b.add(0, nil, 3, gsoSizes(8, 1200)...).add(0, nil, 5, gsoSizes(7, 999)...).add(0, nil, 2, 500)
		},
		gsoBatches: 2,
	},
	{
		name: "the iovec limit splits a run of many-buffer messages",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.add(0, nil, 20, gsoSizes(64, 1000)...) }, // 51 × 20 ≤ 1024 < 52 × 20
		gsoBatches: 2,
	},
	{
		name: "63 messages are one run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(63, 500)...) },
		gsoBatches: 1,
	},
	{
		name: "64 messages are one run",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(64, 500)...) },
		gsoBatches: 1,
	},
	{
		name: "65 messages are one run of 65, or of 64 and a plain one",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(65, 500)...) },
		gsoBatches: 1,
	},
	{
		name: "128 messages are one run of 128, or two of 64",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(128, 500)...) },
		gsoBatches: 2, gsoBatches128: 1,
	},
	{
		name: "129 messages are runs and a plain one",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(129, 500)...) },
		gsoBatches: 2, gsoBatches128: 1,
	},
	{
		name: "1024 messages to one destination go out in one call",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(1024, 100)...) },
		gsoBatches: 16, gsoBatches128: 8,
	},
	{
		name: "1024 messages to four destinations in runs of 16 go out in one call",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4, gsoRx4, gsoRx4, gsoRx4},
		build: func(b *gsoBatch) {
			for r := range 64 {
				b.to(r%4, gsoSizes(16, 200)...)
			}
		},
		gsoBatches: 64,
	},
	{
		name: "two destinations alternating per message are never coalesced",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4, gsoRx4},
		build: func(b *gsoBatch) {
			for k := range 20 {
				b.to(k%2, 1200)
			}
		},
	},
	{
		name: "two destinations interleaved in runs",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4, gsoRx4},
		build: func(b *gsoBatch) {
			b.to(0, gsoSizes(8, 1200)...).to(1, gsoSizes(8, 1200)...).to(0, gsoSizes(8, 1200)...).to(1, gsoSizes(8, 1200)...)
		},
		gsoBatches: 4,
	},
	{
		name: "three destinations with runs, short tails and plain messages",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4, gsoRx4, gsoRx4},
		build: func(b *gsoBatch) {
			b.to(0, 1200, 1200, 1200, 1200, 1200, 600).to(1, 80).to(2, 1200, 1200, 1200).to(0, 1200, 1200).to(1, 300, 300, 300, 300, 1)
		},
		gsoBatches: 4,
	},
	{
		name: "different IP_TOS values split runs",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build: func(b *gsoBatch) {
			b.add(0, gsoTOS(0x10), 1, 1200, 1200, 1200).add(0, gsoTOS(0x20), 1, 1200, 1200, 1200).
				to(0, 1200, 1200).add(0, gsoTOS(0x10), 1, 1200, 1200).add(0, gsoTOS(0x02), 1, 1200)
		},
		gsoBatches: 4,
	},
	{
		name: "different IPV6_TCLASS values split runs",
		from: gsoSender{network: "udp6"}, to: []gsoRx{gsoRx6},
		build: func(b *gsoBatch) {
			b.add(0, gsoTClass(0x10), 1, 1200, 1200, 1200).add(0, gsoTClass(0x20), 1, 1200, 1200, 1200).
				to(0, 1200, 1200).add(0, gsoTClass(0x10), 1, 1200, 1200).add(0, gsoTClass(0x02), 1, 1200)
		},
		gsoBatches: 4,
	},
	{
		name: "a caller's own UDP_SEGMENT is sent as given",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build: func(b *gsoBatch) {
			b.to(0, 500, 500, 500).add(0, gsoSegment(100), 1, 1000, 1000).add(0, gsoSegment(300), 2, 1000).to(0, 500, 500, 500)
		},
		gsoBatches: 2,
	},
	{
		name: "IPv4 runs of 65507 payload bytes are coalesced",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, 40000, 25507).to(0, 32753, 32753) },
		gsoBatches: 2,
	},
	{
		name: "IPv4 runs over 65507 payload bytes are not coalesced",
		from: gsoSender{network: "udp4"}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, 40000, 25508).to(0, 32754, 32754).to(0, 65507, 65507) },
		gsoBatches: 0,
	},
	{
		name: "IPv6 runs of 65527 payload bytes are coalesced",
		from: gsoSender{network: "udp6"}, to: []gsoRx{gsoRx6},
		build:      func(b *gsoBatch) { b.to(0, 40000, 25527).to(0, 32763, 32763) },
		gsoBatches: 2,
	},
	{
		name: "IPv6 runs over 65527 payload bytes are not coalesced",
		from: gsoSender{network: "udp6"}, to: []gsoRx{gsoRx6},
		build:      func(b *gsoBatch) { b.to(0, 40000, 25528).to(0, 32764, 32764).to(0, 65527, 65527) },
		gsoBatches: 0,
	},
	{
		// 65490 + 40 + 8 bytes exceed the loopback MTU of 65536: the kernel
		// refuses the GSO send with EINVAL and the run goes out plain.
		name: "an IPv6 segment over the loopback MTU is resent without GSO",
		from: gsoSender{network: "udp6"}, to: []gsoRx{gsoRx6},
		build:      func(b *gsoBatch) { b.to(0, 65490, 37).to(0, 1200, 1200) },
		gsoBatches: 1,
		fallbacks:  1,
	},
	{
		name: "a dual-stack socket applies the IPv4 limit to IPv4 and IPv4-mapped destinations",
		from: gsoSender{network: "udp"}, to: []gsoRx{gsoRx4, gsoRx4in6, gsoRx6},
		build: func(b *gsoBatch) {
			b.to(0, 1200, 1200, 1200, 1200).to(1, 1200, 1200, 1200, 1200).to(2, 1200, 1200, 1200, 1200).
				to(0, 40000, 25508).to(1, 40000, 25508).to(2, 40000, 25527).
				to(1, 32754, 32754).to(1, 40000, 25507).to(0, 32753, 32753)
		},
		gsoBatches: 6,
	},
	{
		name: "a connected IPv4 socket coalesces messages to its peer",
		from: gsoSender{network: "udp4", connect: true}, to: []gsoRx{gsoRx4},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(8, 1200)...).to(0, 40000, 25508).to(0, 40000, 25507) },
		gsoBatches: 2,
	},
	{
		name: "a connected IPv6 socket coalesces messages to its peer",
		from: gsoSender{network: "udp6", connect: true}, to: []gsoRx{gsoRx6},
		build:      func(b *gsoBatch) { b.to(0, gsoSizes(8, 1200)...).to(0, 40000, 25528).to(0, 40000, 25527) },
		gsoBatches: 2,
	},
}

// gsoOutcome is everything a sender can observe of one WriteMessages call.
type gsoOutcome struct {
	n   int
	err error
	ns  []int // each message's N
}

// gsoRunCase sends the case's messages from a fresh Conn with GSO on or off
// to fresh receivers, checks what arrives, and returns what the call said.
func gsoRunCase(t *testing.T, tc gsoCase, gso bool) gsoOutcome {
	t.Helper()
	rxs := make([]*testnet.Receiver, len(tc.to))
	dst := make([]netip.AddrPort, len(tc.to))
	for i, r := range tc.to {
		rxs[i] = testnet.NewReceiver(t, testnet.ListenUDP(t, r.network))
		dst[i] = rxs[i].Addr()
		if r.mapped {
			dst[i] = netip.AddrPortFrom(netip.AddrFrom16(dst[i].Addr().As16()), dst[i].Port())
		}
	}
	var uc *net.UDPConn
	if tc.from.connect {
		var err error
		uc, err = net.DialUDP(tc.from.network, nil, net.UDPAddrFromAddrPort(dst[0]))
		if err != nil {
			t.Fatal(err)
		}
		dst[0] = netip.AddrPort{}
	} else {
		uc = testnet.ListenUDP(t, tc.from.network)
	}
	c, err := batchconn.New(uc, batchconn.WithGSO(gso))
	if err != nil {
		uc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	gsoUsed := c.GSOEnabled()

	b := &gsoBatch{dst: dst}
	tc.build(b)
	var out gsoOutcome
	out.n, out.err = c.WriteMessages(context.Background(), b.msgs, 0)
	for k := range b.msgs {
		out.ns = append(out.ns, b.msgs[k].N)
	}
	if out.err != nil || out.n != len(b.msgs) {
		t.Fatalf("WriteMessages of %d messages = (%d, %v), want all sent", len(b.msgs), out.n, out.err)
	}
	for k := range b.msgs {
		if want := len(bytes.Join(b.msgs[k].Buffers, nil)); b.msgs[k].N != want {
			t.Errorf("msgs[%d].N = %d, want %d", k, b.msgs[k].N, want)
		}
	}
	gsoCheckArrivals(t, uc, rxs, dst, b.msgs)

	st := c.Stats()
	wantBatches, wantFallbacks := uint64(0), uint64(0)
	if gsoUsed {
		wantBatches, wantFallbacks = tc.gsoBatches, tc.fallbacks
		if tc.gsoBatches128 != 0 && batchconn.GSOSegments() == 128 {
			wantBatches = tc.gsoBatches128
		}
	}
	if st.GSOBatches != wantBatches || st.GSOFallbacks != wantFallbacks {
		t.Errorf("GSO enabled %v: Stats GSOBatches %d, GSOFallbacks %d; want %d, %d",
			gsoUsed, st.GSOBatches, st.GSOFallbacks, wantBatches, wantFallbacks)
	}
	if st.Messages != uint64(len(b.msgs)) {
		t.Errorf("Stats().Messages = %d, want %d", st.Messages, len(b.msgs))
	}
	return out
}

func TestContractC14Transparency(t *testing.T) {
	for _, tc := range gsoCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var on, off gsoOutcome
			t.Run("with GSO on", func(t *testing.T) { on = gsoRunCase(t, tc, true) })
			t.Run("with GSO off", func(t *testing.T) { off = gsoRunCase(t, tc, false) })
			if on.n != off.n || fmt.Sprint(on.err) != fmt.Sprint(off.err) || fmt.Sprint(on.ns) != fmt.Sprint(off.ns) {
				t.Errorf("GSO on: n %d, err %v, N %v\nGSO off: n %d, err %v, N %v", on.n, on.err, on.ns, off.n, off.err, off.ns)
			}
		})
	}
}

// gsoConn wraps uc, and skips the test unless GSO is in use on it.
func gsoConn(t *testing.T, uc *net.UDPConn) *batchconn.Conn {
	t.Helper()
	c, err := batchconn.New(uc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !c.GSOEnabled() {
		t.Skipf("UDP GSO is not in use: %s", c.Stats().GSOOff)
	}
	return c
}

// gsoRequire skips the test unless a loopback Conn would use GSO, before
// the test sets up anything costly.
func gsoRequire(t *testing.T) {
	t.Helper()
	c, err := batchconn.New(testnet.ListenUDP(t, "udp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.GSOEnabled() {
		t.Skipf("UDP GSO is not in use: %s", c.Stats().GSOOff)
	}
}

// gsoRuns appends runs runs of 4 × 1000-byte messages, alternating between
// destinations 0 and 1 so that no two runs merge, with a plain 300-byte
// message to destination 1 after every third run.
func gsoRuns(b *gsoBatch, runs int) *gsoBatch {
	for r := range runs {
		b.to(r%2, gsoSizes(4, 1000)...)
		if r%3 == 2 {
			b.to(1, 300)
		}
	}
	return b
}

func TestContractC14KernelEINVALFallsBack(t *testing.T) {
	// With the UDP checksum off the kernel refuses every GSO send with
	// EINVAL (udp_send_skb, udp_v6_send_skb).
	// An IPv6 receiver drops datagrams without a checksum unless it allows
	// them with UDP_NO_CHECK6_RX (RFC 6935).
	tests := []struct {
		name         string
		network      string
		level        int
		txOpt, rxOpt int // rxOpt 0: none needed
	}{
		{"over IPv4 with SO_NO_CHECK", "udp4", unix.SOL_SOCKET, unix.SO_NO_CHECK, 0},
		{"over IPv6 with UDP_NO_CHECK6_TX", "udp6", unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_TX, unix.UDP_NO_CHECK6_RX},
	}
	setOpt := func(t *testing.T, uc *net.UDPConn, level, opt int) {
		t.Helper()
		rc, err := uc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, 1) }); err != nil || serr != nil {
			t.Skipf("setsockopt(%d, %d): %v %v", level, opt, err, serr)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uc := testnet.ListenUDP(t, tt.network)
			c := gsoConn(t, uc)
			setOpt(t, uc, tt.level, tt.txOpt)
			var rxs []*testnet.Receiver
			for range 2 {
				rc := testnet.ListenUDP(t, tt.network)
				if tt.rxOpt != 0 {
					setOpt(t, rc, tt.level, tt.rxOpt)
				}
				rxs = append(rxs, testnet.NewReceiver(t, rc))
			}
			dst := []netip.AddrPort{rxs[0].Addr(), rxs[1].Addr()}

			// Each run fails once and goes out plain. Runs alternate between
			// the two destinations: after 5 runs, 3 and 2 GSO sends to them
			// have failed, and both still get GSO runs.
			first := gsoRuns(&gsoBatch{dst: dst}, 5).msgs
			// The 4th failure in a row to a destination stops its GSO runs
			// (1 more for destination 0, 2 for 1); the rest go out plain,
			// and GSO stays on for the Conn.
			second := gsoRuns(&gsoBatch{dst: dst}, 20).msgs
			for _, step := range []struct {
				msgs      []batchconn.Message
				fallbacks uint64
			}{
				{first, 5},
				{second, 8},
			} {
				n, err := c.WriteMessages(context.Background(), step.msgs, 0)
				if n != len(step.msgs) || err != nil {
					t.Fatalf("WriteMessages of %d messages = (%d, %v), want all sent", len(step.msgs), n, err)
				}
				st := c.Stats()
				if st.GSOFallbacks != step.fallbacks || st.GSOBatches != 0 || !c.GSOEnabled() {
					t.Errorf("after %d messages: GSOFallbacks %d, GSOBatches %d, GSOEnabled %v; want %d, 0, true",
						len(step.msgs), st.GSOFallbacks, st.GSOBatches, c.GSOEnabled(), step.fallbacks)
				}
			}
			gsoCheckArrivals(t, uc, rxs, dst, append(first, second...))
		})
	}
}

func TestContractC14SegmentOverMTUFallsBack(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run("over "+network+" on a 1500-byte veth link", func(t *testing.T) {
			gsoRequire(t)
			p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1500})
			uc := p.A.ListenUDP(t, network, 0)
			c := gsoConn(t, uc)
			rx := testnet.NewReceiver(t, p.B.ListenUDP(t, network, 0))
			dst := []netip.AddrPort{rx.Addr()}

			// 1400-byte segments fit the MTU and go out with GSO; 1600-byte
			// ones do not: the kernel refuses the GSO send with EINVAL and
			// the datagrams go out plain, as IP fragments.
			b := (&gsoBatch{dst: dst}).to(0, gsoSizes(8, 1400)...).to(0, gsoSizes(8, 1600)...).to(0, 1000).to(0, 1600, 1600)
			n, err := c.WriteMessages(context.Background(), b.msgs, 0)
			if n != len(b.msgs) || err != nil {
				t.Fatalf("WriteMessages of %d messages = (%d, %v), want all sent", len(b.msgs), n, err)
			}
			for k := range b.msgs {
				if want := len(bytes.Join(b.msgs[k].Buffers, nil)); b.msgs[k].N != want {
					t.Errorf("msgs[%d].N = %d, want %d", k, b.msgs[k].N, want)
				}
			}
			if st := c.Stats(); st.GSOBatches != 1 || st.GSOFallbacks != 2 || !c.GSOEnabled() {
				t.Errorf("Stats: GSOBatches %d, GSOFallbacks %d, GSOEnabled %v; want 1, 2, true",
					st.GSOBatches, st.GSOFallbacks, c.GSOEnabled())
			}
			gsoCheckArrivals(t, uc, []*testnet.Receiver{rx}, dst, b.msgs)
		})
	}
}

func TestContractC13NoAllocsWithGSORunsToManyDestinations(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("with GSO %v", map[bool]string{true: "on", false: "off"}[gso]), func(t *testing.T) {
			uc := testnet.ListenUDP(t, "udp4")
			c, err := batchconn.New(uc, batchconn.WithGSO(gso))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			// Nobody reads the destinations: a reader would allocate, and
			// AllocsPerRun counts every goroutine's allocations.
			var dst []netip.AddrPort
			for range 4 {
				dst = append(dst, testnet.ListenUDP(t, "udp4").LocalAddr().(*net.UDPAddr).AddrPort())
			}
			b := &gsoBatch{dst: dst}
			for r := 0; len(b.msgs) < batchconn.MaxMessages-16; r++ {
				b.to(r%4, gsoSizes(15, 200)...).to(r%4, 100).to((r+1)%4, 50)
			}
			ctx := context.Background()
			allocs := testing.AllocsPerRun(20, func() {
				if n, err := c.WriteMessages(ctx, b.msgs, 0); n != len(b.msgs) || err != nil {
					t.Fatalf("WriteMessages = (%d, %v), want (%d, nil)", n, err, len(b.msgs))
				}
			})
			if allocs != 0 {
				t.Errorf("WriteMessages of %d messages allocates %v times per call, want 0", len(b.msgs), allocs)
			}
			if c.GSOEnabled() && c.Stats().GSOBatches == 0 {
				t.Errorf("GSO is on but no GSO batch was sent")
			}
		})
	}
}
