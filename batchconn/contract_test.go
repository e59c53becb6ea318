//go:build linux

package batchconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// Tests named TestContractCn check rule Cn of the WriteMessages contract
// (CONTRACT.md at the repository's root) on the real kernel: loopback here,
// the veth test hosts in contract_wait_test.go.

// listen returns a Conn on a loopback socket of the given network.
func listen(t *testing.T, network string, opts ...batchconn.Option) *batchconn.Conn {
	t.Helper()
	c, err := batchconn.New(testnet.ListenUDP(t, network), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receiver returns a draining receiver on a fresh loopback socket.
func receiver(t *testing.T, network string) *testnet.Receiver {
	t.Helper()
	return testnet.NewReceiver(t, testnet.ListenUDP(t, network))
}

// payload is a datagram of size bytes that names message i of a test.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for k := range b {
		b[k] = byte(i*7 + k)
	}
	if size >= 4 {
		binary.BigEndian.PutUint32(b, uint32(i))
	}
	return b
}

// messages returns n messages of size bytes each to dst.
func messages(dst netip.AddrPort, n, size int) []batchconn.Message {
	msgs := make([]batchconn.Message, n)
	for i := range msgs {
		msgs[i] = batchconn.Message{Addr: dst, Buffers: [][]byte{payload(i, size)}}
	}
	return msgs
}

// flat returns the datagram a message describes.
func flat(m batchconn.Message) []byte {
	var b []byte
	for _, p := range m.Buffers {
		b = append(b, p...)
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

// expectDatagrams waits for exactly want at r, in order, and no more.
func expectDatagrams(t *testing.T, r *testnet.Receiver, want []batchconn.Message) {
	t.Helper()
	got := r.Collect(len(want), 5*time.Second)
	if len(got) == len(want) {
		got = r.Quiet(100 * time.Millisecond)
	}
	if len(got) != len(want) {
		t.Fatalf("receiver got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if w := flat(want[i]); !bytes.Equal(got[i].Payload, w) {
			t.Fatalf("datagram %d: got %d bytes %x..., want %d bytes %x...", i, len(got[i].Payload), head(got[i].Payload), len(w), head(w))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// mustSend sends msgs in one call and requires all of them to be accepted.
func mustSend(t *testing.T, c *batchconn.Conn, msgs []batchconn.Message) {
	t.Helper()
	n, err := c.WriteMessages(context.Background(), msgs, 0)
	if err != nil || n != len(msgs) {
		t.Fatalf("WriteMessages = %d, %v; want %d, nil", n, err, len(msgs))
	}
}

// errnoOf returns the errno in err's chain, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	errors.As(err, &e)
	return e
}

func TestContractC1CountNotError(t *testing.T) {
	c := listen(t, "udp4")
	r := receiver(t, "udp4")

	t.Run("all messages sent means n is len(msgs) and no error", func(t *testing.T) {
		r.Reset()
		msgs := messages(r.Addr(), 10, 100)
		mustSend(t, c, msgs)
		expectDatagrams(t, r, msgs)
	})
	t.Run("a failure after the first message gives a count, never an error", func(t *testing.T) {
		r.Reset()
		msgs := messages(r.Addr(), 5, 100)
		msgs[3].Addr = netip.AddrPortFrom(r.Addr().Addr(), 0) // port 0: refused
		n, err := c.WriteMessages(context.Background(), msgs, 0)
		if n != 3 || err != nil {
			t.Fatalf("WriteMessages = %d, %v; want 3, nil", n, err)
		}
		expectDatagrams(t, r, msgs[:3])
	})
	t.Run("a failure of the first message gives an error and a zero count", func(t *testing.T) {
		msgs := messages(netip.AddrPortFrom(r.Addr().Addr(), 0), 2, 100)
		n, err := c.WriteMessages(context.Background(), msgs, 0)
		if n != 0 || err == nil {
			t.Fatalf("WriteMessages = %d, %v; want 0 and an error", n, err)
		}
	})
}

func TestContractC2EntryChecks(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	dst := receiver(t, "udp4").Addr()
	one := messages(dst, 1, 10)

	tests := []struct {
		name   string
		closed bool
		ctx    context.Context
		msgs   []batchconn.Message
		want   error
	}{
		{"a closed conn fails with net.ErrClosed even with no messages", true, context.Background(), nil, net.ErrClosed},
		{"a closed conn fails with net.ErrClosed before a cancelled context", true, cancelled, one, net.ErrClosed},
		{"a cancelled context fails with its error even with no messages", false, cancelled, nil, context.Canceled},
		{"a cancelled context fails before any message is sent", false, cancelled, one, context.Canceled},
		{"no messages is a zero count and no error", false, context.Background(), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := listen(t, "udp4")
			if tt.closed {
				c.Close()
			}
			n, err := c.WriteMessages(tt.ctx, tt.msgs, 0)
			if n != 0 || !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("WriteMessages = %d, %v; want 0, %v", n, err, tt.want)
			}
			if err != nil {
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Op != "write" {
					t.Errorf("error %v is not a *net.OpError with Op write", err)
				}
			}
			if s := c.Stats(); s.Syscalls != 0 {
				t.Errorf("made %d system calls, want none", s.Syscalls)
			}
		})
	}
	t.Run("a nil context is an error, not a panic", func(t *testing.T) {
		c := listen(t, "udp4")
		//lint:ignore SA1012 a nil Context is the bad input under test
		n, err := c.WriteMessages(nil, one, 0) //nolint:staticcheck
		if n != 0 || err == nil {
			t.Fatalf("WriteMessages(nil ctx) = %d, %v; want 0 and an error", n, err)
		}
		//lint:ignore SA1012 a nil Context is the bad input under test
		if err := c.WaitWritable(nil); err == nil { //nolint:staticcheck
			t.Fatal("WaitWritable(nil ctx) = nil, want an error")
		}
	})
}

func TestContractC3AtMostMaxMessages(t *testing.T) {
	for _, gso := range []bool{false, true} {
		t.Run(gsoName(gso), func(t *testing.T) {
			c := listen(t, "udp4", batchconn.WithGSO(gso))
			r := receiver(t, "udp4")
			msgs := messages(r.Addr(), 1500, 64)
			for i := range msgs {
				msgs[i].N = -7
			}
			n, err := c.WriteMessages(context.Background(), msgs, 0)
			if n != batchconn.MaxMessages || err != nil {
				t.Fatalf("WriteMessages(1500 messages) = %d, %v; want %d, nil", n, err, batchconn.MaxMessages)
			}
			for i := batchconn.MaxMessages; i < len(msgs); i++ {
				if msgs[i].N != -7 {
					t.Fatalf("message %d beyond MaxMessages was touched: N = %d", i, msgs[i].N)
				}
			}
			expectDatagrams(t, r, msgs[:batchconn.MaxMessages])
		})
	}
}

func gsoName(gso bool) string {
	if gso {
		return "with GSO"
	}
	return "without GSO"
}

func TestContractC6FailingMessageEndsCall(t *testing.T) {
	tests := []struct {
		name  string
		k     int   // the failing message
		errno error // what the retry from it reports
		spoil func(m *batchconn.Message, r *testnet.Receiver)
	}{
		{"an oversized datagram first fails the call", 0, syscall.EMSGSIZE, func(m *batchconn.Message, _ *testnet.Receiver) {
			m.Buffers = [][]byte{make([]byte, 65508)}
		}},
		{"an oversized datagram later ends the call before it", 2, syscall.EMSGSIZE, func(m *batchconn.Message, _ *testnet.Receiver) {
			m.Buffers = [][]byte{make([]byte, 40000), make([]byte, 30000)}
		}},
		{"port 0 ends the call before it", 1, syscall.EINVAL, func(m *batchconn.Message, r *testnet.Receiver) {
			m.Addr = netip.AddrPortFrom(r.Addr().Addr(), 0)
		}},
		{"a zero address on an unconnected socket ends the call before it", 1, syscall.EDESTADDRREQ, func(m *batchconn.Message, _ *testnet.Receiver) {
			m.Addr = netip.AddrPort{}
		}},
		{"malformed OOB ends the call before it", 3, syscall.EINVAL, func(m *batchconn.Message, _ *testnet.Receiver) {
			m.OOB = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
		}},
	}
	for _, gso := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(gsoName(gso)+"/"+tt.name, func(t *testing.T) {
				c := listen(t, "udp4", batchconn.WithGSO(gso))
				r := receiver(t, "udp4")
				msgs := messages(r.Addr(), 6, 1000)
				tt.spoil(&msgs[tt.k], r)
				n, err := c.WriteMessages(context.Background(), msgs, 0)
				if tt.k == 0 {
					if n != 0 || errnoOf(err) != tt.errno {
						t.Fatalf("WriteMessages = %d, %v; want 0, %v", n, err, tt.errno)
					}
				} else {
					if n != tt.k || err != nil {
						t.Fatalf("WriteMessages = %d, %v; want %d, nil", n, err, tt.k)
					}
					n, err = c.WriteMessages(context.Background(), msgs[tt.k:], 0)
					if n != 0 || errnoOf(err) != tt.errno {
						t.Fatalf("retry from the failing message = %d, %v; want 0, %v", n, err, tt.errno)
					}
				}
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Op != "write" {
					t.Fatalf("error %v is not a *net.OpError with Op write", err)
				}
				// Nothing after message k went out.
				expectDatagrams(t, r, msgs[:tt.k])
			})
		}
	}
}

func TestContractC7PerMessageN(t *testing.T) {
	for _, gso := range []bool{false, true} {
		t.Run(gsoName(gso), func(t *testing.T) {
			c := listen(t, "udp4", batchconn.WithGSO(gso))
			r := receiver(t, "udp4")
			sizes := []int{1200, 1200, 1200, 700, 0, 9000, 9000, 1}
			msgs := make([]batchconn.Message, 0, len(sizes)+3)
			for i, s := range sizes {
				msgs = append(msgs, batchconn.Message{Addr: r.Addr(), Buffers: [][]byte{payload(i, s)}, N: -7})
			}
			// A failing message, then more that must stay untouched.
			msgs = append(msgs, batchconn.Message{Addr: netip.AddrPortFrom(r.Addr().Addr(), 0), Buffers: [][]byte{{1}}, N: -7})
			msgs = append(msgs, batchconn.Message{Addr: r.Addr(), Buffers: [][]byte{{1}}, N: -7}, batchconn.Message{Addr: r.Addr(), N: 12345})
			n, err := c.WriteMessages(context.Background(), msgs, 0)
			if n != len(sizes) || err != nil {
				t.Fatalf("WriteMessages = %d, %v; want %d, nil", n, err, len(sizes))
			}
			for i, s := range sizes {
				if msgs[i].N != s {
					t.Errorf("msgs[%d].N = %d, want %d", i, msgs[i].N, s)
				}
			}
			for i, want := range []int{-7, -7, 12345} {
				if got := msgs[len(sizes)+i].N; got != want {
					t.Errorf("unsent msgs[%d].N = %d, want it left at %d", len(sizes)+i, got, want)
				}
			}
			expectDatagrams(t, r, msgs[:n])
		})
	}
}

func TestContractC8Addresses(t *testing.T) {
	r4 := receiver(t, "udp4")
	r6 := receiver(t, "udp6")
	v4, v6 := r4.Addr(), r6.Addr()
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), v4.Port())

	ok := []struct {
		name    string
		network string
		dst     netip.AddrPort
		r       *testnet.Receiver
	}{
		{"an IPv4 destination on a udp4 socket", "udp4", v4, r4},
		{"an IPv4-mapped destination on a udp4 socket is sent as IPv4", "udp4", mapped, r4},
		{"an IPv6 destination on a udp6 socket", "udp6", v6, r6},
		{"an IPv4 destination on a dual-stack socket is sent as IPv4-mapped", "udp", v4, r4},
		{"an IPv6 destination on a dual-stack socket", "udp", v6, r6},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c := listen(t, tt.network)
			tt.r.Reset()
			msgs := messages(tt.dst, 3, 100)
			mustSend(t, c, msgs)
			expectDatagrams(t, tt.r, msgs)
		})
	}

	bad := []struct {
		name    string
		network string
		dst     netip.AddrPort
		errno   syscall.Errno
	}{
		// Messages 0 and 2 go to a receiver the socket can reach; message 1 to dst.
		{"an IPv6 destination on a udp4 socket", "udp4", v6, syscall.EAFNOSUPPORT},
		{"an IPv4 destination on an IPv6-only socket", "udp6", v4, syscall.ENETUNREACH},
		{"an IPv4-mapped destination on an IPv6-only socket", "udp6", mapped, syscall.ENETUNREACH},
		{"an invalid address with a port", "udp4", netip.AddrPortFrom(netip.Addr{}, 53), syscall.EINVAL},
		{"port 0", "udp4", netip.AddrPortFrom(v4.Addr(), 0), syscall.EINVAL},
		{"the zero address on an unconnected socket", "udp4", netip.AddrPort{}, syscall.EDESTADDRREQ},
	}
	for _, tt := range bad {
		t.Run(tt.name+" fails that message", func(t *testing.T) {
			c := listen(t, tt.network)
			r := r4
			if tt.network == "udp6" {
				r = r6
			}
			r.Reset()
			msgs := messages(r.Addr(), 3, 100)
			msgs[1].Addr = tt.dst
			n, err := c.WriteMessages(context.Background(), msgs, 0)
			if n != 1 || err != nil {
				t.Fatalf("WriteMessages = %d, %v; want 1, nil", n, err)
			}
			n, err = c.WriteMessages(context.Background(), msgs[1:], 0)
			if n != 0 || errnoOf(err) != tt.errno {
				t.Fatalf("retry = %d, %v; want 0 and %v", n, err, tt.errno)
			}
			if len(err.Error()) < 20 {
				t.Errorf("error %q does not explain itself", err)
			}
			expectDatagrams(t, r, msgs[:1])
		})
	}

	t.Run("the zero address on a connected socket is the peer", func(t *testing.T) {
		r4.Reset()
		udp, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(v4))
		if err != nil {
			t.Fatal(err)
		}
		c, err := batchconn.New(udp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msgs := messages(netip.AddrPort{}, 70, 500)
		mustSend(t, c, msgs)
		expectDatagrams(t, r4, msgs)
	})
}

// TestContractC8IPv4OnIPv6OnlyIsUnreachable checks that an IPv4 or
// IPv4-mapped destination on an IPv6-only socket fails with the errno a
// bare sendto(2) gets for it on this kernel, and the UDPConn's
// WriteToUDPAddrPort, on every write path of the Conn.
func TestContractC8IPv4OnIPv6OnlyIsUnreachable(t *testing.T) {
	udp := testnet.ListenUDP(t, "udp6") // [::1]: the net package makes it IPv6-only
	c, err := batchconn.New(udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := receiver(t, "udp4")
	v4 := r.Addr()
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), v4.Port())
	for _, dst := range []netip.AddrPort{v4, mapped} {
		t.Run(dst.String(), func(t *testing.T) {
			// What the kernel says, from a socket of its own.
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
				t.Fatal(err)
			}
			want := errnoOf(unix.Sendto(fd, []byte{1}, 0, &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}))
			if want == 0 {
				t.Fatal("a bare sendto to an IPv4 destination on an IPv6-only socket succeeded")
			}
			_, err = udp.WriteToUDPAddrPort([]byte{1}, dst)
			if got := errnoOf(err); got != want {
				t.Errorf("the UDPConn's WriteToUDPAddrPort: %v (errno %d); sendto gives %v", err, got, want)
			}
			_, err = c.WriteMessages(context.Background(), messages(dst, 2, 100), 0)
			if got := errnoOf(err); got != want {
				t.Errorf("WriteMessages: %v; sendto gives %v", err, want)
			}
			_, err = c.WriteBuffersTo(context.Background(), [][]byte{{1}, {2}}, nil, dst, 0)
			if got := errnoOf(err); got != want {
				t.Errorf("WriteBuffersTo: %v; sendto gives %v", err, want)
			}
			_, err = c.WriteToUDPAddrPort([]byte{1}, dst)
			if got := errnoOf(err); got != want {
				t.Errorf("WriteToUDPAddrPort: %v; sendto gives %v", err, want)
			}
		})
	}
	if got := r.Quiet(100 * time.Millisecond); len(got) != 0 {
		t.Errorf("the IPv4 receiver got %d datagrams", len(got))
	}
}

func TestContractC9Buffers(t *testing.T) {
	c := listen(t, "udp4")
	r := receiver(t, "udp4")
	// GLib's test layout: a 36-byte string in vectors of 3,5,0,6,2,1,19 bytes.
	s := []byte("abcdefghijklmnopqrstuvwxyz0123456789")
	vec := [][]byte{s[0:3], s[3:8], s[8:8], s[8:14], s[14:16], s[16:17], s[17:36]}
	keep := bytes.Clone(s)

	msgs := []batchconn.Message{
		{Addr: r.Addr(), Buffers: vec[0:1]},     // 3 bytes
		{Addr: r.Addr(), Buffers: vec[0:6]},     // 17 bytes, with an empty vector
		{Addr: r.Addr(), Buffers: vec[6:7]},     // 19 bytes
		{Addr: r.Addr(), Buffers: nil},          // no buffers: an empty datagram
		{Addr: r.Addr(), Buffers: vec[2:3]},     // only an empty buffer: an empty datagram
		{Addr: r.Addr(), Buffers: [][]byte{{}}}, // the same, spelled differently
	}
	n, err := c.WriteMessages(context.Background(), msgs, 0)
	if n != len(msgs) || err != nil {
		t.Fatalf("WriteMessages = %d, %v", n, err)
	}
	for i, want := range []int{3, 17, 19, 0, 0, 0} {
		if msgs[i].N != want {
			t.Errorf("msgs[%d].N = %d, want %d", i, msgs[i].N, want)
		}
	}
	expectDatagrams(t, r, msgs)
	if !bytes.Equal(s, keep) {
		t.Error("WriteMessages modified a buffer")
	}
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

// tosOOB is an IP_TOS control message carrying tos.
func tosOOB(tos byte) []byte {
	b := make([]byte, unix.CmsgSpace(1))
	h := (*unix.Cmsghdr)(unsafePointer(b))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TOS
	h.SetLen(unix.CmsgLen(1))
	b[unix.CmsgLen(0)] = tos
	return b
}

// segmentOOB is a caller's own UDP_SEGMENT control message.
func segmentOOB(seg uint16) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafePointer(b))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], seg)
	return b
}

func TestContractC10OOB(t *testing.T) {
	t.Run("IP_TOS applies to its own datagram only", func(t *testing.T) {
		c := listen(t, "udp4")
		ru := testnet.ListenUDP(t, "udp4")
		rc, _ := ru.SyscallConn()
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1) })
		dst := ru.LocalAddr().(*net.UDPAddr).AddrPort()
		tos := []byte{0x00, 0x28, 0x28, 0x00, 0xb8, 0x00}
		msgs := messages(dst, len(tos), 300)
		for i, v := range tos {
			if v != 0 {
				msgs[i].OOB = tosOOB(v)
			}
		}
		mustSend(t, c, msgs)
		ru.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf, oob := make([]byte, 2000), make([]byte, 256)
		for i, want := range tos {
			n, oobn, _, _, err := ru.ReadMsgUDP(buf, oob)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], flat(msgs[i])) {
				t.Fatalf("datagram %d out of order", i)
			}
			cms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil || len(cms) != 1 || cms[0].Header.Type != unix.IP_TOS {
				t.Fatalf("datagram %d: control messages %v, %v", i, cms, err)
			}
			if got := cms[0].Data[0]; got != want {
				t.Errorf("datagram %d arrived with TOS %#x, want %#x", i, got, want)
			}
		}
	})
	t.Run("a caller's own UDP_SEGMENT is passed on: the kernel segments it", func(t *testing.T) {
		for _, gso := range []bool{false, true} {
			c := listen(t, "udp4", batchconn.WithGSO(gso))
			if !supportsGSO(t) {
				t.Skip("the kernel lacks UDP GSO")
			}
			r := receiver(t, "udp4")
			whole := payload(1, 3*500+200)
			msgs := []batchconn.Message{
				{Addr: r.Addr(), Buffers: [][]byte{whole}, OOB: segmentOOB(500)},
				{Addr: r.Addr(), Buffers: [][]byte{whole}, OOB: segmentOOB(500)},
			}
			mustSend(t, c, msgs)
			if msgs[0].N != len(whole) || msgs[1].N != len(whole) {
				t.Fatalf("N = %d, %d; want the whole length %d", msgs[0].N, msgs[1].N, len(whole))
			}
			var want []batchconn.Message
			for range 2 {
				for off := 0; off < len(whole); off += 500 {
					want = append(want, batchconn.Message{Buffers: [][]byte{whole[off:min(off+500, len(whole))]}})
				}
			}
			expectDatagrams(t, r, want)
		}
	})
	t.Run("malformed OOB fails that message and never panics", func(t *testing.T) {
		c := listen(t, "udp4")
		r := receiver(t, "udp4")
		hdr := unix.CmsgLen(0)
		huge := make([]byte, hdr)
		for i := range huge {
			huge[i] = 0xff
		}
		overlong := tosOOB(0x28)[:hdr]
		unknown := tosOOB(0x28)
		(*unix.Cmsghdr)(unsafePointer(unknown)).Type = 9999
		bad := map[string][]byte{
			"a zero cmsg_len":             make([]byte, hdr),
			"a cmsg_len past the buffer":  huge,
			"a cmsg cut short":            overlong,
			"an unknown IPPROTO_IP type":  unknown,
			"a good cmsg then a zero one": append(tosOOB(0x28), make([]byte, hdr)...),
		}
		for name, oob := range bad {
			msgs := messages(r.Addr(), 2, 10)
			msgs[1].OOB = oob
			n, err := c.WriteMessages(context.Background(), msgs, 0)
			if n != 1 || err != nil {
				t.Errorf("%s: WriteMessages = %d, %v; want 1, nil", name, n, err)
			}
			n, err = c.WriteMessages(context.Background(), msgs[1:], 0)
			if n != 0 || errnoOf(err) != syscall.EINVAL {
				t.Errorf("%s: retry = %d, %v; want 0, EINVAL", name, n, err)
			}
		}
		// What the kernel would silently ignore is refused too (C10): less
		// than a cmsghdr, or bytes left over after the last message.
		for name, oob := range map[string][]byte{
			"one byte":                          {1},
			"a cmsghdr less one byte":           make([]byte, hdr-1),
			"a good cmsg then 3 bytes":          append(tosOOB(0x28), 1, 2, 3),
			"a good cmsg then a header but one": append(tosOOB(0x28), make([]byte, hdr-1)...),
		} {
			msgs := messages(r.Addr(), 2, 10)
			msgs[1].OOB = oob
			if n, err := c.WriteMessages(context.Background(), msgs, 0); n != 1 || err != nil {
				t.Errorf("%s: WriteMessages = %d, %v; want 1, nil", name, n, err)
			}
			if n, err := c.WriteMessages(context.Background(), msgs[1:], 0); n != 0 || errnoOf(err) != syscall.EINVAL {
				t.Errorf("%s: retry = %d, %v; want 0, EINVAL", name, n, err)
			}
		}
	})
}

// supportsGSO reports whether the kernel has UDP GSO on a loopback socket.
func supportsGSO(t *testing.T) bool {
	return listen(t, "udp4").GSOEnabled()
}

func TestContractC11FlagsPassedToKernel(t *testing.T) {
	c := listen(t, "udp4")
	r := receiver(t, "udp4")
	t.Run("MSG_CONFIRM and MSG_DONTROUTE are accepted", func(t *testing.T) {
		r.Reset()
		msgs := messages(r.Addr(), 4, 100)
		n, err := c.WriteMessages(context.Background(), msgs, unix.MSG_CONFIRM|unix.MSG_DONTROUTE)
		if n != 4 || err != nil {
			t.Fatalf("WriteMessages = %d, %v", n, err)
		}
		expectDatagrams(t, r, msgs)
	})
	t.Run("a flag UDP does not support comes back as the kernel's error", func(t *testing.T) {
		n, err := c.WriteMessages(context.Background(), messages(r.Addr(), 2, 10), unix.MSG_OOB)
		if n != 0 || errnoOf(err) != syscall.EOPNOTSUPP {
			t.Fatalf("WriteMessages(MSG_OOB) = %d, %v; want 0, EOPNOTSUPP", n, err)
		}
	})
}

func TestContractC12Concurrency(t *testing.T) {
	const writers, calls, per = 8, 20, 40
	c := listen(t, "udp4")
	rs := make([]*testnet.Receiver, writers)
	for i := range rs {
		rs[i] = receiver(t, "udp4")
	}
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			for k := range calls {
				msgs := messages(rs[w].Addr(), per, 200+w)
				for i := range msgs {
					binary.BigEndian.PutUint32(msgs[i].Buffers[0], uint32(k*per+i))
				}
				for len(msgs) > 0 {
					n, err := c.WriteMessages(context.Background(), msgs, 0)
					if err != nil {
						done <- err
						return
					}
					msgs = msgs[n:]
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for w, r := range rs {
		got := r.Collect(calls*per, 5*time.Second)
		if len(got) != calls*per {
			t.Fatalf("writer %d: %d datagrams arrived, want %d", w, len(got), calls*per)
		}
		for i, d := range got {
			if seq := binary.BigEndian.Uint32(d.Payload); seq != uint32(i) {
				t.Fatalf("writer %d: datagram %d carries sequence %d: out of order", w, i, seq)
			}
		}
	}
	s := c.Stats()
	if s.Messages != writers*calls*per {
		t.Errorf("Stats().Messages = %d, want %d", s.Messages, writers*calls*per)
	}
}

func TestContractC12CloseWhileWriting(t *testing.T) {
	for round := range 20 {
		c := listen(t, "udp4")
		r := receiver(t, "udp4")
		msgs := messages(r.Addr(), 256, 1000)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				local := append([]batchconn.Message(nil), msgs...)
				for {
					n, err := c.WriteMessages(context.Background(), local, 0)
					if err != nil {
						if !errors.Is(err, net.ErrClosed) {
							errs <- err
							return
						}
						errs <- nil
						return
					}
					if n < 1 {
						errs <- errors.New("no progress and no error")
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%4) * time.Millisecond)
		c.Close()
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: a writer ended with %v, want net.ErrClosed", round, err)
			}
		}
	}
}

// sink is a loopback address nobody reads: the kernel drops what overflows
// it, so tests that count allocations see only the sender's.
func sink(t *testing.T) netip.AddrPort {
	return testnet.ListenUDP(t, "udp4").LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestContractC13NoAllocation(t *testing.T) {
	r := struct{ Addr func() netip.AddrPort }{func() netip.AddrPort { return sink(t) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := []struct {
		name string
		msgs []batchconn.Message
		ctx  context.Context
	}{
		{"64 messages to one destination", messages(r.Addr(), 64, 1200), context.Background()},
		{"64 messages with a cancellable context", messages(r.Addr(), 64, 1200), ctx},
		{"1024 small messages", messages(r.Addr(), 1024, 40), context.Background()},
		{"64 messages to 4 destinations in runs of 16", interleaved(t, 4, 16, 1200), ctx},
		{"64 messages with two buffers and OOB each", withOOB(messages(r.Addr(), 64, 1200)), context.Background()},
	}
	for _, gso := range []bool{false, true} {
		c := listen(t, "udp4", batchconn.WithGSO(gso))
		for _, tc := range cases {
			t.Run(gsoName(gso)+"/"+tc.name, func(t *testing.T) {
				send := func() {
					if n, err := c.WriteMessages(tc.ctx, tc.msgs, 0); err != nil || n != len(tc.msgs) {
						t.Fatalf("WriteMessages = %d, %v", n, err)
					}
				}
				send() // warm the Conn's reusable storage
				if a := testing.AllocsPerRun(50, send); a != 0 {
					t.Errorf("WriteMessages allocates %.1f times per call, want 0", a)
				}
			})
		}
	}
}

// interleaved returns n messages to dests receivers, in runs of run.
func interleaved(t *testing.T, dests, run, size int) []batchconn.Message {
	addrs := make([]netip.AddrPort, dests)
	for i := range addrs {
		addrs[i] = sink(t)
	}
	msgs := make([]batchconn.Message, 64)
	for i := range msgs {
		msgs[i] = batchconn.Message{Addr: addrs[(i/run)%dests], Buffers: [][]byte{payload(i, size)}}
	}
	return msgs
}

func withOOB(msgs []batchconn.Message) []batchconn.Message {
	oob := tosOOB(0x28)
	for i := range msgs {
		b := msgs[i].Buffers[0]
		msgs[i].Buffers = [][]byte{b[:100], b[100:]}
		msgs[i].OOB = oob
	}
	return msgs
}

func TestContractC14GSOUsedAndInvisible(t *testing.T) {
	if !supportsGSO(t) {
		t.Skip("the kernel lacks UDP GSO on loopback (or this build sends one message per call)")
	}
	on := listen(t, "udp4")
	off := listen(t, "udp4", batchconn.WithGSO(false))
	r := receiver(t, "udp4")
	for _, c := range []*batchconn.Conn{on, off} {
		r.Reset()
		msgs := messages(r.Addr(), 200, 1200)
		msgs[63].Buffers[0] = msgs[63].Buffers[0][:900] // a short tail ends a run
		mustSend(t, c, msgs)
		expectDatagrams(t, r, msgs)
	}
	if s := on.Stats(); s.GSOBatches == 0 || s.Syscalls != 1 {
		t.Errorf("GSO conn: %+v; want GSO batches in one system call", s)
	}
	if s := off.Stats(); s.GSOBatches != 0 || s.GSOOff == "" {
		t.Errorf("GSO-off conn: %+v; want no GSO batches and a reason", s)
	}
}

func TestContractC14KillSwitch(t *testing.T) {
	t.Setenv("BATCHCONN_DISABLE_GSO", "1")
	c := listen(t, "udp4")
	if c.GSOEnabled() {
		t.Fatal("GSOEnabled() with BATCHCONN_DISABLE_GSO=1")
	}
	if s := c.Stats(); s.GSOOff == "" {
		t.Error("Stats().GSOOff gives no reason")
	}
	if c := listen(t, "udp4", batchconn.WithGSO(false)); c.GSOEnabled() {
		t.Fatal("GSOEnabled() after WithGSO(false)")
	}
}

// TestContractErrorsShape checks that WriteMessages reports a datagram's
// failure as the *net.UDPConn would report the same write: *net.OpError with
// Op "write", the network the socket was opened with ("udp4", "udp6" or
// "udp", not LocalAddr's "udp"), the destination, and the *os.SyscallError.
func TestContractErrorsShape(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			uc := testnet.ListenUDP(t, network)
			ref := testnet.ListenUDP(t, network) // written to directly
			c, err := batchconn.New(uc)
			if err != nil {
				t.Fatal(err)
			}
			// An IPv4 destination for the dual-stack "udp" socket too: it
			// has a route where IPv6 is turned off but sockets still open.
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 9)
			if network == "udp6" {
				dst = netip.AddrPortFrom(netip.IPv6Loopback(), 9)
			}
			big := make([]byte, 70000)
			_, err = c.WriteMessages(context.Background(), []batchconn.Message{{Addr: dst, Buffers: [][]byte{big}}}, 0)
			_, want := ref.WriteToUDPAddrPort(big, dst)
			var oe, we *net.OpError
			var se *os.SyscallError
			if !errors.As(err, &oe) || oe.Op != "write" || !errors.As(err, &se) || !errors.Is(err, syscall.EMSGSIZE) {
				t.Fatalf("error %#v: want *net.OpError{Op: write} holding *os.SyscallError and EMSGSIZE", err)
			}
			if !errors.As(want, &we) {
				t.Fatalf("the UDPConn's error %#v is no *net.OpError", want)
			}
			if oe.Net != we.Net {
				t.Errorf("OpError.Net = %q; the UDPConn says %q", oe.Net, we.Net)
			}
			if oe.Addr == nil || oe.Addr.String() != we.Addr.String() {
				t.Errorf("OpError.Addr = %v, want the destination %v", oe.Addr, we.Addr)
			}
			if oe.Source != c.LocalAddr() {
				t.Errorf("OpError.Source = %v, want the Conn's LocalAddr %v", oe.Source, c.LocalAddr())
			}
			// A closed Conn names the same network. The call fails at its
			// entry check (C2), before any datagram is charged, so the
			// error names no destination.
			c.Close()
			ref.Close()
			_, err = c.WriteMessages(context.Background(), []batchconn.Message{{Addr: dst, Buffers: [][]byte{[]byte("x")}}}, 0)
			_, want = ref.WriteToUDPAddrPort([]byte("x"), dst)
			if !errors.As(err, &oe) || !errors.As(want, &we) || oe.Net != we.Net || oe.Op != we.Op || !errors.Is(err, net.ErrClosed) || oe.Addr != nil {
				t.Errorf("after Close: %#v; want Op %q, Net %q, net.ErrClosed, no Addr", err, we.Op, we.Net)
			}
		})
	}
}

func TestNewBadInput(t *testing.T) {
	if _, err := batchconn.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	udp := testnet.ListenUDP(t, "udp4")
	udp.Close()
	if _, err := batchconn.New(udp); err == nil {
		t.Error("New(closed conn) succeeded")
	}
	if _, err := batchconn.New(testnet.ListenUDP(t, "udp4"), nil); err != nil {
		t.Errorf("New with a nil Option: %v", err)
	}
	if _, err := batchconn.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error(`Listen("tcp") succeeded`)
	}
	if _, err := batchconn.Listen("udp4", "no such host:x"); err == nil {
		t.Error("Listen with a bad address succeeded")
	}
	c, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.WriteTo([]byte{1}, c.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close = %v, want net.ErrClosed", err)
	}
	if _, _, err := c.WriteMsgUDP([]byte{1}, nil, c.LocalAddr().(*net.UDPAddr)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteMsgUDP after Close = %v, want net.ErrClosed", err)
	}
	if err := c.WaitWritable(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WaitWritable after Close = %v, want net.ErrClosed", err)
	}
}

func TestDelegatingMethods(t *testing.T) {
	a := listen(t, "udp4")
	b := listen(t, "udp4")
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.WriteMsgUDP([]byte("world"), nil, b.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := b.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.String() != a.LocalAddr().String() {
		t.Fatalf("ReadFrom = %q, %v, %v", buf[:n], from, err)
	}
	n, _, _, _, err = b.ReadMsgUDP(buf, nil)
	if err != nil || string(buf[:n]) != "world" {
		t.Fatalf("ReadMsgUDP = %q, %v", buf[:n], err)
	}
	if err := a.SetReadBuffer(1 << 20); err != nil {
		t.Error(err)
	}
	if err := a.SetWriteBuffer(1 << 20); err != nil {
		t.Error(err)
	}
	if a.RemoteAddr() != nil {
		t.Errorf("RemoteAddr = %v on an unconnected socket", a.RemoteAddr())
	}
	if a.UDPConn() == nil {
		t.Error("UDPConn() = nil")
	}
	if _, err := a.SyscallConn(); err != nil {
		t.Error(err)
	}
	if !a.Blocking() {
		t.Error("a new Conn is not blocking")
	}
	a.SetBlocking(false)
	if a.Blocking() {
		t.Error("SetBlocking(false) did not stick")
	}
	if err := a.SetDeadline(time.Time{}); err != nil {
		t.Error(err)
	}
}
