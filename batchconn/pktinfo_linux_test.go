package batchconn_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// TestPacketInfoRoundTrip builds packet-info control messages for IPv4,
// IPv6 and IPv4-mapped sources and reads them back, alone and after another
// control message, within PacketInfoSpace and without allocating.
func TestPacketInfoRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		ifindex uint32
	}{
		{"127.0.0.2", 0},
		{"10.1.2.3", 7},
		{"::1", 0},
		{"fe80::1", 3},
		{"::ffff:127.0.0.2", 1},
	} {
		src := netip.MustParseAddr(tc.addr)
		oob := batchconn.AppendPacketInfo(nil, src, tc.ifindex)
		if len(oob) == 0 || len(oob) > batchconn.PacketInfoSpace {
			t.Errorf("%v: %d bytes, want 1 to PacketInfoSpace (%d)", src, len(oob), batchconn.PacketInfoSpace)
		}
		if src.Is6() && len(oob) != batchconn.PacketInfoSpace {
			t.Errorf("%v: %d bytes, want PacketInfoSpace (%d): IPV6_PKTINFO is the larger", src, len(oob), batchconn.PacketInfoSpace)
		}
		cms, err := unix.ParseSocketControlMessage(oob)
		if err != nil || len(cms) != 1 {
			t.Fatalf("%v: %d control messages, %v; want 1", src, len(cms), err)
		}
		if got, ifindex, ok := batchconn.ParsePacketInfo(oob); !ok || got != src || ifindex != tc.ifindex {
			t.Errorf("%v: ParsePacketInfo = %v, %d, %v; want %v, %d, true", src, got, ifindex, ok, src, tc.ifindex)
		}
		// After another control message, and appended to it.
		tos := make([]byte, unix.CmsgSpace(4))
		h := (*unix.Cmsghdr)(unsafeCmsg(tos))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TOS
		h.SetLen(unix.CmsgLen(4))
		both := batchconn.AppendPacketInfo(tos, src, tc.ifindex)
		if got, _, ok := batchconn.ParsePacketInfo(both); !ok || got != src {
			t.Errorf("%v after IP_TOS: ParsePacketInfo = %v, %v", src, got, ok)
		}
	}
	// An invalid address appends nothing; appending into room allocates nothing.
	if b := batchconn.AppendPacketInfo([]byte{1}, netip.Addr{}, 1); len(b) != 1 {
		t.Errorf("invalid address appended %d bytes", len(b)-1)
	}
	room := make([]byte, 0, batchconn.PacketInfoSpace)
	src := netip.MustParseAddr("2001:db8::1")
	if a := testing.AllocsPerRun(100, func() { batchconn.AppendPacketInfo(room, src, 1) }); a != 0 {
		t.Errorf("AppendPacketInfo into room allocates %v times", a)
	}
	if a := testing.AllocsPerRun(100, func() { batchconn.ParsePacketInfo(room[:batchconn.PacketInfoSpace]) }); a != 0 {
		t.Errorf("ParsePacketInfo allocates %v times", a)
	}
}

// TestParsePacketInfoBadInput feeds ParsePacketInfo what a kernel never
// writes: it finds nothing and never panics.
func TestParsePacketInfoBadInput(t *testing.T) {
	good := batchconn.AppendPacketInfo(nil, netip.MustParseAddr("::1"), 1)
	short := batchconn.AppendPacketInfo(nil, netip.MustParseAddr("127.0.0.1"), 1)
	lying := append([]byte(nil), good...)
	(*unix.Cmsghdr)(unsafeCmsg(lying)).SetLen(1 << 20) // longer than the buffer
	trimmed := append([]byte(nil), short...)
	(*unix.Cmsghdr)(unsafeCmsg(trimmed)).SetLen(unix.CmsgLen(4)) // too short for the struct
	for name, oob := range map[string][]byte{
		"nil":             nil,
		"short":           {1, 2, 3},
		"cut":             good[:unix.CmsgLen(0)+4],
		"length too big":  lying,
		"data too short":  trimmed,
		"header only":     make([]byte, unix.SizeofCmsghdr),
		"all ones":        bytesOf(0xff, 64),
		"other level":     append(append([]byte(nil), good[:8]...), bytesOf(0, len(good)-8)...),
		"zero cmsg_len":   bytesOf(0, 64),
		"ipv4 header cut": short[:unix.SizeofCmsghdr+2],
	} {
		if a, i, ok := batchconn.ParsePacketInfo(oob); ok {
			t.Errorf("%s: ParsePacketInfo = %v, %d, true; want nothing", name, a, i)
		}
	}
}

func bytesOf(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

// setsockoptConn sets an int socket option on c's socket.
func setsockoptConn(t *testing.T, c *batchconn.Conn, level, opt int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, 1) }); err != nil || serr != nil {
		t.Fatalf("setsockopt: %v, %v", err, serr)
	}
}

// TestPacketInfoStickySource answers a peer from the address its datagrams
// arrived on, on a socket bound to the wildcard address: ParsePacketInfo
// reads the local address of each received datagram, AppendPacketInfo
// makes the reply leave from it, and a source the host lacks fails that
// send alone.
func TestPacketInfoStickySource(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface named lo: %v", err)
	}
	for _, tc := range []struct {
		network, wildcard, local, stale string
		level, opt                      int
	}{
		{"udp4", "0.0.0.0:0", "127.0.0.2", "192.0.2.1", unix.IPPROTO_IP, unix.IP_PKTINFO},
		{"udp6", "[::]:0", "::1", "2001:db8::1", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO},
	} {
		t.Run(tc.network, func(t *testing.T) {
			peer := testnet.ListenUDP(t, tc.network) // skips without IPv6
			c, err := batchconn.Listen(tc.network, tc.wildcard, batchconn.WithGRO(true))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			setsockoptConn(t, c, tc.level, tc.opt)
			local := netip.MustParseAddr(tc.local)
			to := netip.AddrPortFrom(local, addrOf(c).Port())
			for range 3 {
				if _, err := peer.WriteToUDPAddrPort([]byte("hello"), to); err != nil {
					t.Fatal(err)
				}
			}
			msgs := recvMsgs(3, 100, batchconn.PacketInfoSpace)
			n := 0
			for n < 3 {
				c.SetReadDeadline(time.Now().Add(recvWait))
				k, err := c.ReadMessages(context.Background(), msgs[n:], 0)
				if err != nil {
					t.Fatal(err)
				}
				n += k
			}
			for i, m := range msgs {
				got, ifindex, ok := batchconn.ParsePacketInfo(m.OOB[:m.NN])
				if !ok || got != local || ifindex != uint32(lo.Index) {
					t.Fatalf("datagram %d: ParsePacketInfo = %v, %d, %v; want %v, %d (lo), true", i, got, ifindex, ok, local, lo.Index)
				}
			}
			src := msgs[0].Addr
			oob := batchconn.AppendPacketInfo(nil, local, 0)
			if n, err := c.WriteBuffersTo(context.Background(), buffersOf(10, 10, 10), oob, src, 0); n != 3 || err != nil {
				t.Fatalf("reply from %v: %d, %v", local, n, err)
			}
			buf := make([]byte, 100)
			for i := range 3 {
				peer.SetReadDeadline(time.Now().Add(recvWait))
				_, from, err := peer.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
				if from != to {
					t.Errorf("reply %d came from %v, want %v", i, from, to)
				}
			}
			// A source the host lacks fails that send, and the next one goes.
			stale := batchconn.AppendPacketInfo(nil, netip.MustParseAddr(tc.stale), 0)
			_, err = c.WriteBuffersTo(context.Background(), buffersOf(10), stale, src, 0)
			if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Errorf("from %s, an address the host lacks: %v; want EINVAL, ENETUNREACH or EADDRNOTAVAIL", tc.stale, err)
			}
			if n, err := c.WriteBuffersTo(context.Background(), buffersOf(10), oob, src, 0); n != 1 || err != nil {
				t.Errorf("after the refused source: %d, %v; want 1, nil", n, err)
			}
		})
	}
}

func unsafeCmsg(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
