package quicbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// quic-go's read shape (v0.66, internal/udp/conn_oob.go; TestGuardQuicGoReadShape
// checks it): 8 messages per ReadBatch, 1452-byte buffers, 128-byte OOB.
const (
	quicGoBatch   = 8
	quicGoBufSize = 1452
	quicGoOOBSize = 128
)

// quicGoMessages returns n messages shaped as quic-go's.
func quicGoMessages(n int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, quicGoBufSize)}
		ms[i].OOB = make([]byte, quicGoOOBSize)
	}
	return ms
}

// cmsg builds one control message.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func int32Bytes(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

// setRecvOpts turns on what quic-go turns on for a socket's reads: ECN
// (IP_RECVTOS, IPV6_RECVTCLASS) and, with pktinfo, packet info. As quic-go
// does, it tries both families and needs one to succeed.
func setRecvOpts(t *testing.T, c *Conn, pktinfo bool) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var e4, e6, p4, p6 error
	rc.Control(func(fd uintptr) {
		e4 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
		e6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1)
		if pktinfo {
			p4 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			p6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	})
	if e4 != nil && e6 != nil {
		t.Fatalf("IP_RECVTOS: %v, IPV6_RECVTCLASS: %v", e4, e6)
	}
	if pktinfo && p4 != nil && p6 != nil {
		t.Fatalf("IP_PKTINFO: %v, IPV6_RECVPKTINFO: %v", p4, p6)
	}
}

// wrapListen wraps a new socket on network and address.
func wrapListen(t *testing.T, network, address string, opts ...Option) *Conn {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP(network, la)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Wrap(udp, opts...)
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// skipWithoutIPv6 skips a test where the host has no IPv6 loopback.
func skipWithoutIPv6(t *testing.T) {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback (::1) on this host: %v", err)
	}
	c.Close()
}

// wantGRO reports whether a Conn made with WithGRO(gro) receives with GRO
// here: not under BATCHCONN_DISABLE_GRO=1, and where the kernel has it.
func wantGRO(t *testing.T, c *Conn, gro bool) bool {
	t.Helper()
	st := c.Stats()
	if !gro || os.Getenv("BATCHCONN_DISABLE_GRO") != "" {
		if st.GRO {
			t.Fatalf("GRO on after WithGRO(%v) with BATCHCONN_DISABLE_GRO=%q", gro, os.Getenv("BATCHCONN_DISABLE_GRO"))
		}
		return false
	}
	if !st.GRO {
		t.Logf("GRO is off: %s", st.GROOff)
	}
	return st.GRO
}

// A gsoSend is one GSO send: segs datagrams of seg bytes (the last one
// last bytes, if not 0), marked with tos (TOS or traffic class).
type gsoSend struct {
	segs, seg, last int
	tos             int32
}

// readPacket is what a test keeps of one datagram ReadBatch returned.
type readPacket struct {
	data  []byte
	tos   int32 // -1: no TOS/TCLASS cmsg
	info  bool  // a packet info cmsg was there
	flags int
	addr  *net.UDPAddr
}

// sendGSO sends each gsoSend as one GSO buffer from tx to dst; every
// datagram holds its number in its first 4 bytes and then that number's
// low byte. It returns the datagrams as the receiver must see them.
func sendGSO(t *testing.T, tx *net.UDPConn, dst *net.UDPAddr, v6 bool, sends []gsoSend) (want []readPacket) {
	t.Helper()
	n := 0
	for _, s := range sends {
		var buf []byte
		for i := range s.segs {
			size := s.seg
			if i == s.segs-1 && s.last > 0 {
				size = s.last
			}
			d := bytes.Repeat([]byte{byte(n)}, size)
			binary.BigEndian.PutUint32(d, uint32(n))
			buf = append(buf, d...)
			want = append(want, readPacket{data: d, tos: s.tos})
			n++
		}
		oob := segmentOOB(uint16(s.seg))
		if v6 {
			oob = append(oob, cmsg(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int32Bytes(s.tos))...)
		} else {
			oob = append(oob, cmsg(unix.IPPROTO_IP, unix.IP_TOS, int32Bytes(s.tos))...)
		}
		if _, _, err := tx.WriteMsgUDP(buf, oob, dst); err != nil {
			t.Fatalf("GSO send: %v", err)
		}
	}
	return want
}

// readN reads n datagrams with ReadBatch in quic-go's shape, parsing each
// one's control messages as quic-go does (a cut one fails the test).
func readN(t *testing.T, c *Conn, n int) []readPacket {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var got []readPacket
	for len(got) < n {
		ms := quicGoMessages(quicGoBatch) // fresh buffers each call, as quic-go swaps them
		k, err := c.ReadBatch(ms, 0)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), n, err)
		}
		if k == 0 {
			t.Fatal("ReadBatch returned (0, nil)")
		}
		for _, m := range ms[:k] {
			p := readPacket{data: m.Buffers[0][:m.N], tos: -1, flags: m.Flags, addr: m.Addr.(*net.UDPAddr)}
			cms, err := unix.ParseSocketControlMessage(m.OOB[:m.NN])
			if err != nil {
				t.Fatalf("datagram %d: control messages %x do not parse: %v", len(got), m.OOB[:m.NN], err)
			}
			for _, cm := range cms {
				switch {
				case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_TOS && len(cm.Data) == 1:
					p.tos = int32(cm.Data[0])
				case cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_TCLASS && len(cm.Data) == 4:
					p.tos = int32(binary.NativeEndian.Uint32(cm.Data))
				case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_PKTINFO,
					cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_PKTINFO:
					p.info = true
				case cm.Header.Level == unix.SOL_UDP && cm.Header.Type == unix.UDP_GRO:
					t.Errorf("datagram %d: a UDP_GRO control message reached the caller", len(got))
				}
			}
			got = append(got, p)
		}
	}
	return got
}

// The kernel coalesces GSO sends into one buffer for a GRO socket and keeps
// one ECN mark per buffer; ReadBatch must split the buffers into the
// datagrams that were sent, each with its own buffer's TOS or traffic class
// (and packet info on a dual-stack socket), whole cmsgs only.
func TestReadBatchSplitsGROKeepingECNAndPacketInfoPerPacket(t *testing.T) {
	if !kernelGSO(t) {
		t.Skip("the kernel has no UDP GSO: nothing sends coalescable buffers")
	}
	sends := []gsoSend{
		{segs: 10, seg: 1200, tos: 0x02},           // ECT(0)
		{segs: 7, seg: 1200, last: 500, tos: 0x01}, // ECT(1), a shorter last datagram
		{segs: 20, seg: 1000, tos: 0x03},           // CE
		{segs: 1, seg: 1300, tos: 0x02},            // a single datagram
		{segs: 44, seg: 1400, tos: 0x00},           // not ECN-capable; 61600 bytes, near GRO's 64 KiB
	}
	for _, tc := range []struct {
		name              string
		rxNet, rxAddr     string
		txNet, txAddr     string
		v6, pktinfo, skip bool
	}{
		{name: "IPv4", rxNet: "udp4", rxAddr: "127.0.0.1:0", txNet: "udp4", txAddr: "127.0.0.1:0"},
		{name: "IPv6", rxNet: "udp6", rxAddr: "[::1]:0", txNet: "udp6", txAddr: "[::1]:0", v6: true, skip: true},
		{name: "IPv4 to a dual-stack socket with packet info", rxNet: "udp", rxAddr: "[::]:0", txNet: "udp4", txAddr: "127.0.0.1:0", pktinfo: true},
		{name: "IPv6 to a dual-stack socket with packet info", rxNet: "udp", rxAddr: "[::]:0", txNet: "udp6", txAddr: "[::1]:0", v6: true, pktinfo: true, skip: true},
	} {
		for _, gro := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, GRO %v", tc.name, gro), func(t *testing.T) {
				if tc.skip {
					skipWithoutIPv6(t)
				}
				rx := wrapListen(t, tc.rxNet, tc.rxAddr, WithGRO(gro))
				setRecvOpts(t, rx, tc.pktinfo)
				coalesced := wantGRO(t, rx, gro)
				la, _ := net.ResolveUDPAddr(tc.txNet, tc.txAddr)
				tx, err := net.ListenUDP(tc.txNet, la)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Close()
				dst := &net.UDPAddr{IP: la.IP, Port: rx.LocalAddr().(*net.UDPAddr).Port}
				want := sendGSO(t, tx, dst, tc.v6, sends)
				got := readN(t, rx, len(want))
				if len(got) != len(want) {
					t.Fatalf("got %d datagrams, want %d", len(got), len(want))
				}
				srcPort := tx.LocalAddr().(*net.UDPAddr).Port
				for i := range want {
					g, w := got[i], want[i]
					if !bytes.Equal(g.data, w.data) {
						t.Errorf("datagram %d: %d bytes starting %x, want %d starting %x", i, len(g.data), g.data[:min(8, len(g.data))], len(w.data), w.data[:8])
					}
					if g.tos&0x03 != w.tos {
						t.Errorf("datagram %d: ECN %#x, want %#x (TOS/TCLASS cmsg %d)", i, g.tos&0x03, w.tos, g.tos)
					}
					if g.info != tc.pktinfo {
						t.Errorf("datagram %d: packet info %v, want %v", i, g.info, tc.pktinfo)
					}
					if g.flags != 0 {
						t.Errorf("datagram %d: flags %#x, want 0", i, g.flags)
					}
					if g.addr.Port != srcPort {
						t.Errorf("datagram %d: from %v, want port %d", i, g.addr, srcPort)
					}
				}
				st := rx.Stats()
				if coalesced && st.GROBuffers == 0 {
					t.Errorf("GRO on, but Stats shows no coalesced buffer: %+v", st)
				}
				if !coalesced && st.GROBuffers != 0 {
					t.Errorf("GRO off, but Stats shows coalesced buffers: %+v", st)
				}
				if st.RecvPackets != uint64(len(want)) {
					t.Errorf("Stats.RecvPackets = %d, want %d", st.RecvPackets, len(want))
				}
			})
		}
	}
}

// ReadMsgUDP and ReadFrom must go through the same split as ReadBatch, and
// share its queue: nothing quic-go could call sees a coalesced buffer.
func TestReadMsgUDPAndReadFromNeverSeeACoalescedBuffer(t *testing.T) {
	if !kernelGSO(t) {
		t.Skip("the kernel has no UDP GSO: nothing sends coalescable buffers")
	}
	rx := wrapListen(t, "udp4", "127.0.0.1:0")
	setRecvOpts(t, rx, false)
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	want := sendGSO(t, tx, rx.LocalAddr().(*net.UDPAddr), false, []gsoSend{{segs: 12, seg: 1200, tos: 0x02}})
	rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf, oob := make([]byte, 1500), make([]byte, quicGoOOBSize)
	for i, w := range want {
		var n int
		var err error
		switch i % 3 {
		case 0:
			n, _, _, _, err = rx.ReadMsgUDP(buf, oob)
		case 1:
			n, _, err = rx.ReadFrom(buf)
		default:
			ms := quicGoMessages(1)
			if _, err = rx.ReadBatch(ms, 0); err == nil {
				n = copy(buf, ms[0].Buffers[0][:ms[0].N])
			}
		}
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], w.data) {
			t.Fatalf("read %d: %d bytes starting %x, want the %d-byte datagram %x...", i, n, buf[:min(n, 8)], len(w.data), w.data[:8])
		}
	}
}

// quic-go swaps in fresh buffers before each ReadBatch, keeps the old ones
// and decrypts in place: ReadBatch must write into the buffers of each call
// and keep no pointer to them.
func TestReadBatchWritesIntoEachCallsBuffersAndKeepsNone(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("GRO %v", gro), func(t *testing.T) {
			rx := wrapListen(t, "udp4", "127.0.0.1:0", WithGRO(gro))
			tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			dst := rx.LocalAddr().(*net.UDPAddr)
			var oob []byte
			if kernelGSO(t) {
				oob = segmentOOB(1000)
			}
			// 24 datagrams: three calls of 8, some served from the queue.
			buf := make([]byte, 24*1000)
			for i := range 24 {
				clear(buf[i*1000 : (i+1)*1000])
				buf[i*1000] = byte(i + 1)
			}
			if oob != nil {
				if _, _, err := tx.WriteMsgUDP(buf, oob, dst); err != nil {
					t.Fatal(err)
				}
			} else {
				for i := range 24 {
					tx.WriteToUDP(buf[i*1000:(i+1)*1000], dst)
				}
			}
			rx.SetReadDeadline(time.Now().Add(10 * time.Second))
			var calls [][]ipv4.Message
			next := 1
			for next <= 24 {
				ms := quicGoMessages(quicGoBatch)
				k, err := rx.ReadBatch(ms, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range ms[:k] {
					if m.N != 1000 || m.Buffers[0][0] != byte(next) {
						t.Fatalf("datagram %d: N %d, first byte %d", next, m.N, m.Buffers[0][0])
					}
					next++
				}
				calls = append(calls, ms)
			}
			// The earlier calls' buffers hold what they were given, untouched
			// by later reads; quic-go would now decrypt them in place.
			for _, ms := range calls {
				for _, m := range ms {
					if m.N > 0 {
						m.Buffers[0][1] = 0xEE
					}
				}
			}
			for _, m := range rx.r.msgs[:cap(rx.r.msgs)] {
				if m.Buffers != nil || m.OOB != nil {
					t.Fatal("ReadBatch kept a pointer to the caller's buffers after returning")
				}
			}
		})
	}
}

// quic-go takes (0, nil) as a packet: ReadBatch must never return it.
func TestReadBatchNeverReturnsZeroWithoutError(t *testing.T) {
	rx := wrapListen(t, "udp4", "127.0.0.1:0")
	for _, ms := range [][]ipv4.Message{nil, {}} {
		n, err := rx.ReadBatch(ms, 0)
		if n != 0 || err == nil {
			t.Errorf("ReadBatch(%d messages) = %d, %v; want 0 and an error", len(ms), n, err)
		}
		if op, ok := errors.AsType[*net.OpError](err); !ok || op.Op != "read" {
			t.Errorf("ReadBatch(%d messages) error %#v, want a *net.OpError with Op read", len(ms), err)
		}
	}
	rx.SetReadDeadline(time.Now().Add(-time.Second))
	if n, err := rx.ReadBatch(quicGoMessages(quicGoBatch), 0); n != 0 || err == nil {
		t.Errorf("ReadBatch with a past deadline = %d, %v", n, err)
	}
}

// Transport.Close wakes its read loop with SetReadDeadline(now): a blocked
// ReadBatch must end with a timeout, also with split datagrams queued.
func TestReadBatchReadDeadlineInterruptsABlockedRead(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("GRO %v", gro), func(t *testing.T) {
			rx := wrapListen(t, "udp4", "127.0.0.1:0", WithGRO(gro))
			done := make(chan error, 1)
			go func() {
				_, err := rx.ReadBatch(quicGoMessages(quicGoBatch), 0)
				done <- err
			}()
			// Wait until the reader is parked in the poller, then wake it.
			waitFor(t, "ReadBatch to block", func() bool { return rx.Stats().RecvSyscalls > 0 })
			rx.SetReadDeadline(time.Now())
			err := <-done
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("ReadBatch after SetReadDeadline(now) = %v; want a timeout", err)
			}
			rx.SetReadDeadline(time.Time{})
			// Datagrams queued in the Conn do not outlive the deadline either.
			if gro && kernelGSO(t) && rx.Stats().GRO {
				tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Close()
				sendGSO(t, tx, rx.LocalAddr().(*net.UDPAddr), false, []gsoSend{{segs: 20, seg: 1000}})
				ms := quicGoMessages(quicGoBatch)
				if n, err := rx.ReadBatch(ms, 0); n != quicGoBatch || err != nil {
					t.Fatalf("ReadBatch = %d, %v; want a full batch", n, err)
				}
				rx.SetReadDeadline(time.Now().Add(-time.Second))
				if n, err := rx.ReadBatch(ms, 0); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("ReadBatch past the deadline with datagrams queued = %d, %v; want a timeout", n, err)
				}
				rx.SetReadDeadline(time.Time{})
				if n, err := rx.ReadBatch(ms, 0); n != quicGoBatch || err != nil {
					t.Fatalf("ReadBatch after clearing the deadline = %d, %v; want the queued datagrams", n, err)
				}
			}
		})
	}
}

// waitFor polls cond until it holds; it fails the test after a generous
// bound (a hang, not a speed check).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// ReadBatch's errors must look like x/net's ReadBatch errors on the same
// kind of socket: quic-go's read loop decides on them (Temporary and
// Timeout keep it reading; anything else closes the Transport).
func TestReadBatchErrorsHaveXNetsShape(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(pc interface{ SetReadDeadline(time.Time) error }, closeFn func() error)
		is    error
	}{
		{"a read deadline that passed", func(pc interface{ SetReadDeadline(time.Time) error }, _ func() error) {
			pc.SetReadDeadline(time.Now().Add(-time.Second))
		}, os.ErrDeadlineExceeded},
		{"a closed socket", func(_ interface{ SetReadDeadline(time.Time) error }, closeFn func() error) { closeFn() }, net.ErrClosed},
	} {
		for _, network := range []string{"udp4", "udp"} {
			t.Run(tc.name+" on "+network, func(t *testing.T) {
				addr := "127.0.0.1:0"
				if network == "udp" {
					addr = ":0"
				}
				la, _ := net.ResolveUDPAddr(network, addr)
				ref, err := net.ListenUDP(network, la)
				if err != nil {
					t.Fatal(err)
				}
				defer ref.Close()
				xc := ipv4.NewPacketConn(ref)
				tc.setup(ref, ref.Close)
				_, want := xc.ReadBatch(quicGoMessages(quicGoBatch), 0)

				c := wrapListen(t, network, addr)
				tc.setup(c, c.Close)
				n, got := c.ReadBatch(quicGoMessages(quicGoBatch), 0)
				if n != 0 {
					t.Fatalf("ReadBatch = %d", n)
				}
				compareReadErrors(t, got, want, c.LocalAddr(), tc.is)
			})
		}
	}
}

func compareReadErrors(t *testing.T, got, want error, laddr net.Addr, is error) {
	t.Helper()
	gop, ok1 := errors.AsType[*net.OpError](got)
	wop, ok2 := errors.AsType[*net.OpError](want)
	if !ok1 || !ok2 {
		t.Fatalf("errors %#v (quicbatch) and %#v (x/net): want *net.OpError both", got, want)
	}
	if gop.Op != wop.Op || gop.Net != wop.Net || (gop.Addr == nil) != (wop.Addr == nil) {
		t.Errorf("quicbatch: Op %q Net %q Addr %v; x/net: Op %q Net %q Addr %v", gop.Op, gop.Net, gop.Addr, wop.Op, wop.Net, wop.Addr)
	}
	if gop.Source == nil || gop.Source.String() != laddr.String() {
		t.Errorf("Source = %v, want %v", gop.Source, laddr)
	}
	if !errors.Is(got, is) || !errors.Is(want, is) {
		t.Errorf("errors.Is(%v): quicbatch %v, x/net %v", is, errors.Is(got, is), errors.Is(want, is))
	}
	if gop.Timeout() != wop.Timeout() || gop.Temporary() != wop.Temporary() {
		t.Errorf("Timeout/Temporary: quicbatch %v/%v, x/net %v/%v", gop.Timeout(), gop.Temporary(), wop.Timeout(), wop.Temporary())
	}
}

// A recvmmsg error keeps its *os.SyscallError and errno, as x/net's does:
// ECONNREFUSED on a connected socket whose peer is gone.
func TestReadBatchKernelErrorKeepsItsErrno(t *testing.T) {
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr := dead.LocalAddr().(*net.UDPAddr)
	dead.Close()
	for _, name := range []string{"x/net", "quicbatch"} {
		t.Run(name, func(t *testing.T) {
			udp, err := net.DialUDP("udp4", nil, raddr)
			if err != nil {
				t.Fatal(err)
			}
			var read func([]ipv4.Message) (int, error)
			if name == "x/net" {
				defer udp.Close()
				read = func(ms []ipv4.Message) (int, error) { return ipv4.NewPacketConn(udp).ReadBatch(ms, 0) }
			} else {
				c, err := Wrap(udp)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				read = func(ms []ipv4.Message) (int, error) { return c.ReadBatch(ms, 0) }
			}
			udp.Write([]byte("x")) // the ICMP port unreachable makes the next read fail
			udp.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = read(quicGoMessages(quicGoBatch))
			se, ok := errors.AsType[*os.SyscallError](err)
			// recvmsg where batchconn is built with batchconn_sendmsg.
			if !ok || (se.Syscall != "recvmmsg" && se.Syscall != "recvmsg") || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("ReadBatch = %#v; want recvmmsg's ECONNREFUSED", err)
			}
			if op, ok := errors.AsType[*net.OpError](err); !ok || op.Op != "read" {
				t.Fatalf("ReadBatch = %#v; want a *net.OpError with Op read", err)
			}
		})
	}
}

// quic-go needs a net.Addr per packet. ReadBatch shares one *net.UDPAddr
// per source, so it allocates nothing per packet while the peers stay the
// same (x/net allocates two objects per packet).
func TestReadBatchAllocatesNothingPerPacket(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("GRO %v", gro), func(t *testing.T) {
			rx := wrapListen(t, "udp4", "127.0.0.1:0", WithGRO(gro))
			setRecvOpts(t, rx, false)
			dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			var peers []*net.UDPConn
			for range 3 {
				p, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				peers = append(peers, p)
			}
			payload := make([]byte, 1200)
			ms := quicGoMessages(quicGoBatch)
			round := func() {
				for i := range quicGoBatch {
					if _, err := peers[i%len(peers)].WriteToUDPAddrPort(payload, dst); err != nil {
						t.Fatal(err)
					}
				}
				for got := 0; got < quicGoBatch; {
					n, err := rx.ReadBatch(ms, 0)
					if err != nil {
						t.Fatal(err)
					}
					got += n
				}
			}
			round() // the first read sets up buffers and the address cache
			if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
				t.Errorf("%v allocations per round of %d packets from %d peers, want 0", allocs, quicGoBatch, len(peers))
			}
		})
	}
}

func TestAddrCacheSharesOneUDPAddrPerSource(t *testing.T) {
	var c addrCache
	a := netip4(1, 1000)
	first := c.get(a)
	if got := c.get(a); got != first {
		t.Error("the same source gave a new *net.UDPAddr")
	}
	if first.String() != "10.0.0.1:1000" {
		t.Errorf("addr = %v", first)
	}
	// More sources than the cache holds: every answer is still right.
	for round := range 3 {
		for i := range addrCacheSize + 5 {
			ap := netip4(byte(i), uint16(2000+i))
			if got := c.get(ap); got.AddrPort() != ap {
				t.Fatalf("round %d: get(%v) = %v", round, ap, got)
			}
		}
	}
	// The zone is part of the source.
	z1 := net.UDPAddrFromAddrPort(netipMust("[fe80::1%lo]:443"))
	got := c.get(z1.AddrPort())
	if got.Zone != "lo" || c.get(netipMust("[fe80::1]:443")).Zone != "" {
		t.Errorf("zones mixed up: %v", got)
	}
}

func netip4(b byte, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, b}), port)
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Stats.GRO and GROOff say whether GRO is on and, if not, which switch
// turned it off.
func TestStatsGROOffNamesTheSwitch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     string // BATCHCONN_DISABLE_GRO
		opts    []Option
		wantOff string // in GROOff; "" = on wherever the kernel has GRO
	}{
		{"the default", "", nil, ""},
		{"WithGRO(false)", "", []Option{WithGRO(false)}, "WithGRO(false)"},
		{"BATCHCONN_DISABLE_GRO=1", "1", nil, "BATCHCONN_DISABLE_GRO"},
		{"BATCHCONN_DISABLE_GRO=1 beats WithGRO(true)", "1", []Option{WithGRO(true)}, "BATCHCONN_DISABLE_GRO"},
		{"WithGRO(true) after WithGRO(false)", "", []Option{WithGRO(false), WithGRO(true)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("BATCHCONN_DISABLE_GRO", tc.env)
			c := wrapListen(t, "udp4", "127.0.0.1:0", tc.opts...)
			st := c.Stats()
			if tc.wantOff != "" {
				if st.GRO || !strings.Contains(st.GROOff, tc.wantOff) {
					t.Errorf("GRO = %v, GROOff = %q; want off, naming %q", st.GRO, st.GROOff, tc.wantOff)
				}
				return
			}
			if st.GRO == (st.GROOff != "") {
				t.Errorf("GRO = %v with GROOff %q", st.GRO, st.GROOff)
			}
			if !st.GRO && !strings.HasPrefix(st.GROOff, "not supported") {
				t.Errorf("GRO off by default for a reason other than the kernel: %q", st.GROOff)
			}
		})
	}
}
