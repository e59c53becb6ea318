//go:build linux

package batchconn_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// Tests of group commit: the single-datagram write methods of a Conn,
// combined across concurrent writers (group.go).

// A writeCall is one single-datagram write, made the same way on a
// *net.UDPConn and on a Conn.
type writeCall struct {
	name string
	do   func(w udpWriter) (n, oobn int, err error)
}

// udpWriter is the write half of *net.UDPConn's method set, which a Conn has
// too.
type udpWriter interface {
	WriteTo(p []byte, addr net.Addr) (int, error)
	WriteToUDP(b []byte, addr *net.UDPAddr) (int, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
	Write(b []byte) (int, error)
	LocalAddr() net.Addr
}

var (
	_ udpWriter = (*net.UDPConn)(nil)
	_ udpWriter = (*batchconn.Conn)(nil)
)

func writeTo(b []byte, a net.Addr) writeCall {
	return writeCall{fmt.Sprintf("WriteTo %d bytes to %T %v", len(b), a, a), func(w udpWriter) (int, int, error) {
		n, err := w.WriteTo(b, a)
		return n, 0, err
	}}
}

func writeToUDP(b []byte, a *net.UDPAddr) writeCall {
	return writeCall{fmt.Sprintf("WriteToUDP %d bytes to %v", len(b), a), func(w udpWriter) (int, int, error) {
		n, err := w.WriteToUDP(b, a)
		return n, 0, err
	}}
}

func writeToAddrPort(b []byte, a netip.AddrPort) writeCall {
	return writeCall{fmt.Sprintf("WriteToUDPAddrPort %d bytes to %v", len(b), a), func(w udpWriter) (int, int, error) {
		n, err := w.WriteToUDPAddrPort(b, a)
		return n, 0, err
	}}
}

func writeMsgUDP(b, oob []byte, a *net.UDPAddr) writeCall {
	return writeCall{fmt.Sprintf("WriteMsgUDP %d bytes, %d oob to %v", len(b), len(oob), a), func(w udpWriter) (int, int, error) {
		return w.WriteMsgUDP(b, oob, a)
	}}
}

func writeMsgAddrPort(b, oob []byte, a netip.AddrPort) writeCall {
	return writeCall{fmt.Sprintf("WriteMsgUDPAddrPort %d bytes, %d oob to %v", len(b), len(oob), a), func(w udpWriter) (int, int, error) {
		return w.WriteMsgUDPAddrPort(b, oob, a)
	}}
}

func write(b []byte) writeCall {
	return writeCall{fmt.Sprintf("Write %d bytes", len(b)), func(w udpWriter) (int, int, error) {
		n, err := w.Write(b)
		return n, 0, err
	}}
}

// sameResult fails the test unless a Conn's result for a call (got) is the
// one the *net.UDPConn gave (want): the same n and oobn, and an error of the
// same shape: *net.OpError with the same Op, Net, an Addr that prints and
// names its network alike, Source the writer's own local address, and an
// Err of the same type, text and errno.
func sameResult(t *testing.T, call string, conn, ref udpWriter, gn, goobn int, got error, wn, woobn int, want error) {
	t.Helper()
	if gn != wn || goobn != woobn {
		t.Errorf("%s: n, oobn = %d, %d; the UDPConn gave %d, %d", call, gn, goobn, wn, woobn)
	}
	if (got == nil) != (want == nil) {
		t.Errorf("%s: error %v; the UDPConn gave %v", call, got, want)
		return
	}
	if got == nil {
		return
	}
	g, ok1 := got.(*net.OpError)
	w, ok2 := want.(*net.OpError)
	if !ok1 || !ok2 {
		t.Errorf("%s: error %T %v; the UDPConn gave %T %v", call, got, got, want, want)
		return
	}
	if g.Op != w.Op || g.Net != w.Net {
		t.Errorf("%s: Op, Net = %q, %q; the UDPConn gave %q, %q", call, g.Op, g.Net, w.Op, w.Net)
	}
	if g.Source != conn.LocalAddr() || w.Source != ref.LocalAddr() {
		t.Errorf("%s: Source %v; want the writer's LocalAddr %v", call, g.Source, conn.LocalAddr())
	}
	if addrString(g.Addr) != addrString(w.Addr) {
		t.Errorf("%s: Addr %s; the UDPConn gave %s", call, addrString(g.Addr), addrString(w.Addr))
	}
	if reflect.TypeOf(g.Err) != reflect.TypeOf(w.Err) || g.Err.Error() != w.Err.Error() || errnoOf(g.Err) != errnoOf(w.Err) {
		t.Errorf("%s: Err %T %q; the UDPConn gave %T %q", call, g.Err, g.Err, w.Err, w.Err)
	}
	if sg, ok := g.Err.(*os.SyscallError); ok {
		if sw := w.Err.(*os.SyscallError); sg.Syscall != sw.Syscall {
			t.Errorf("%s: system call %q; the UDPConn named %q", call, sg.Syscall, sw.Syscall)
		}
	}
}

// addrString describes a net.Addr as an error shows it, telling a nil
// interface from a typed nil.
func addrString(a net.Addr) string {
	if a == nil {
		return "<nil interface>"
	}
	if v := reflect.ValueOf(a); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Sprintf("%T(nil)", a)
	}
	return a.Network() + " " + a.String()
}

// queuedCall runs call on c while the gate is held, so that it queues as a
// writer arriving during a send does, then releases the gate: the call is
// sent by the group commit path. It returns the call's result.
func queuedCall(t *testing.T, c *batchconn.Conn, call writeCall) (n, oobn int, err error) {
	t.Helper()
	res := queueCalls(t, c, []writeCall{call}, nil)
	return res[0].n, res[0].oobn, res[0].err
}

type result struct {
	n, oobn int
	err     error
}

// queueCalls makes calls from one goroutine each while the gate is held,
// waits until all of them are queued, runs between (if not nil), then
// releases the gate and returns their results in order.
func queueCalls(t *testing.T, c *batchconn.Conn, calls []writeCall, between func()) []result {
	t.Helper()
	c.HoldGate()
	res := make([]result, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, oobn, err := call.do(c)
			res[i] = result{n, oobn, err}
		}()
		// Queue them in order, so that the batch's order is the calls'.
		for deadline := time.Now().Add(5 * time.Second); c.QueuedWriters() != i+1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d writers queued, want %d", c.QueuedWriters(), i+1)
			}
		}
	}
	if between != nil {
		between()
	}
	c.ReleaseGate()
	wg.Wait()
	return res
}

// closedPort returns a loopback address of the family of network where
// nothing listens.
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	u := testnet.ListenUDP(t, network)
	ap := u.LocalAddr().(*net.UDPAddr).AddrPort()
	u.Close()
	if network == "udp" {
		ap = netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
	}
	return ap
}

// singleWrites returns single-datagram writes, good and bad, for a socket
// of network: each with a result the UDPConn decides in its own way (an
// address of another type, nil, port 0 or 70000, another family, a zone, an
// oversized datagram, malformed control data) or that goes out.
func singleWrites(t *testing.T, network string) []writeCall {
	t.Helper()
	r := receiver(t, "udp")
	dst := r.Addr()
	dst4 := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port())
	dst6 := netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port())
	to := dst4
	if network == "udp6" {
		to = dst6
	}
	ok := []byte("datagram")
	huge := make([]byte, 70000)
	tos := tosOOB(0x10)
	if network != "udp4" {
		tos = tclassOOB(0x10)
	}
	calls := []writeCall{
		writeTo(ok, net.UDPAddrFromAddrPort(to)),
		writeTo(ok, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}),
		writeTo(ok, nil),
		writeTo(ok, (*net.UDPAddr)(nil)),
		writeTo(ok, &net.UDPAddr{IP: to.Addr().AsSlice(), Port: 0}),
		writeTo(ok, &net.UDPAddr{IP: to.Addr().AsSlice(), Port: 70000}),
		writeTo(ok, &net.UDPAddr{Port: int(to.Port())}),
		writeTo(huge, net.UDPAddrFromAddrPort(to)),
		writeTo([]byte{}, net.UDPAddrFromAddrPort(to)),
		writeToUDP(ok, net.UDPAddrFromAddrPort(to)),
		writeToUDP(ok, nil),
		writeToUDP(ok, &net.UDPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: int(dst.Port())}),
		writeToUDP(ok, &net.UDPAddr{IP: net.IPv6loopback, Port: int(dst.Port())}),
		writeToUDP(ok, &net.UDPAddr{IP: net.ParseIP("fe80::1"), Port: int(dst.Port()), Zone: "nosuchif0"}),
		writeToUDP(huge, net.UDPAddrFromAddrPort(to)),
		writeToAddrPort(ok, to),
		writeToAddrPort(ok, netip.AddrPort{}),
		writeToAddrPort(ok, netip.AddrPortFrom(to.Addr(), 0)),
		writeToAddrPort(ok, dst6),
		writeToAddrPort(ok, dst4),
		writeToAddrPort(ok, netip.AddrPortFrom(netip.AddrFrom16(dst4.Addr().As16()), dst.Port())),
		writeToAddrPort(huge, to),
		writeMsgUDP(ok, nil, net.UDPAddrFromAddrPort(to)),
		writeMsgUDP(ok, tos, net.UDPAddrFromAddrPort(to)),
		writeMsgUDP(ok, []byte{1, 2, 3}, net.UDPAddrFromAddrPort(to)),
		writeMsgUDP(ok, append(tos[:len(tos):len(tos)], 0, 0, 0), net.UDPAddrFromAddrPort(to)), // bytes left over
		writeMsgUDP(ok, badCmsgLen(tos), net.UDPAddrFromAddrPort(to)),
		writeMsgUDP(ok, nil, nil),
		writeMsgUDP(ok, nil, &net.UDPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: int(dst.Port())}),
		writeMsgUDP(ok, nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1).To4(), Port: int(dst.Port())}),
		writeMsgUDP(ok, nil, &net.UDPAddr{IP: net.IPv6loopback, Port: int(dst.Port())}),
		writeMsgUDP(huge, tos, net.UDPAddrFromAddrPort(to)),
		writeMsgAddrPort(ok, tos, to),
		writeMsgAddrPort(ok, nil, netip.AddrPort{}),
		writeMsgAddrPort(huge, nil, to),
		write(ok),
	}
	return calls
}

// TestGroupResultsMatchUDPConn makes each call on a *net.UDPConn and on a
// Conn, both alone (the Conn sends at once) and queued behind a send in
// flight (the Conn's group commit sends it), and requires the UDPConn's
// result: n, oobn and the error's shape.
func TestGroupResultsMatchUDPConn(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			calls := singleWrites(t, network)
			ref := testnet.ListenUDP(t, network)
			c := listen(t, network)
			for _, call := range calls {
				wn, woobn, want := call.do(ref)
				gn, goobn, got := call.do(c)
				sameResult(t, call.name+" (alone)", c, ref, gn, goobn, got, wn, woobn, want)
				gn, goobn, got = queuedCall(t, c, call)
				sameResult(t, call.name+" (queued)", c, ref, gn, goobn, got, wn, woobn, want)
			}
		})
	}
}

// badCmsgLen returns a copy of oob whose first cmsg_len points past its end.
func badCmsgLen(oob []byte) []byte {
	b := append([]byte(nil), oob...)
	h := (*unix.Cmsghdr)(unsafePointer(b))
	h.SetLen(len(b) + 8)
	return b
}

// tclassOOB is an IPV6_TCLASS control message.
func tclassOOB(tc int32) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafePointer(b))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_TCLASS
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(tc))
	return b
}

// TestGroupConnectedMatchesUDPConn compares the methods on connected
// sockets, including the ECONNREFUSED a connected socket reports after its
// peer's port answered a datagram with ICMP port unreachable.
func TestGroupConnectedMatchesUDPConn(t *testing.T) {
	r := receiver(t, "udp4")
	dial := func(to netip.AddrPort) *net.UDPConn {
		u, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	}
	ok := []byte("datagram")
	calls := []writeCall{
		write(ok),
		write(make([]byte, 70000)),
		writeTo(ok, net.UDPAddrFromAddrPort(r.Addr())),
		writeToAddrPort(ok, r.Addr()),
		writeMsgUDP(ok, tosOOB(0x10), nil),
		writeMsgUDP(ok, nil, net.UDPAddrFromAddrPort(r.Addr())),
		writeMsgAddrPort(ok, nil, netip.AddrPort{}),
	}
	ref := dial(r.Addr())
	c, err := batchconn.New(dial(r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range calls {
		wn, woobn, want := call.do(ref)
		gn, goobn, got := call.do(c)
		sameResult(t, call.name+" (alone)", c, ref, gn, goobn, got, wn, woobn, want)
		gn, goobn, got = queuedCall(t, c, call)
		sameResult(t, call.name+" (queued)", c, ref, gn, goobn, got, wn, woobn, want)
	}

	t.Run("ECONNREFUSED", func(t *testing.T) {
		refused := closedPort(t, "udp4")
		ref := dial(refused)
		c, err := batchconn.New(dial(refused))
		if err != nil {
			t.Fatal(err)
		}
		// On loopback the ICMP error comes back within the first send, so
		// the second one reports it.
		for _, w := range []udpWriter{ref, c} {
			if _, err := w.Write(ok); err != nil {
				t.Fatalf("first Write: %v", err)
			}
		}
		wn, _, want := write(ok).do(ref)
		if !errors.Is(want, syscall.ECONNREFUSED) {
			t.Skipf("the UDPConn's second Write gave %v, not ECONNREFUSED: no ICMP on this host", want)
		}
		gn, _, got := write(ok).do(c)
		sameResult(t, "Write after ICMP (alone)", c, ref, gn, 0, got, wn, 0, want)

		// Queued: three writers in one batch, with no error pending. On
		// loopback each datagram's ICMP error is back before the next
		// datagram leaves, so the UDPConn's three Writes give ok,
		// ECONNREFUSED, ok. sendmmsg would drop the error it meets at its
		// second message; the batch must not lose it. (GSO off: a GSO run
		// leaves before any error comes back, as concurrent writes do.)
		c, err = batchconn.New(dial(refused), batchconn.WithGSO(false))
		if err != nil {
			t.Fatal(err)
		}
		var want3, got3 []string
		for range 3 {
			_, err := ref.Write(ok)
			want3 = append(want3, fmt.Sprint(errnoOf(err)))
		}
		for _, r := range queueCalls(t, c, []writeCall{write(ok), write(ok), write(ok)}, nil) {
			got3 = append(got3, fmt.Sprint(errnoOf(r.err)))
			if r.err != nil {
				sameResult(t, "queued Write after ICMP", c, ref, r.n, r.oobn, r.err, wn, 0, want)
			}
		}
		if fmt.Sprint(got3) != fmt.Sprint(want3) {
			t.Errorf("three queued Writes gave errnos %q; three Writes on the UDPConn gave %q", got3, want3)
		}
	})
}

// TestGroupMixedBatch queues good datagrams with failing ones in one batch:
// each failing writer gets its own error, and every other datagram is
// sent, in order, with fewer system calls than datagrams.
func TestGroupMixedBatch(t *testing.T) {
	for _, gso := range []bool{false, true} {
		t.Run(gsoName(gso), func(t *testing.T) {
			r := receiver(t, "udp4")
			c := listen(t, "udp4", batchconn.WithGSO(gso))
			dst := r.Addr()
			var calls []writeCall
			var want [][]byte
			bad := map[int]syscall.Errno{}
			for i := range 12 {
				switch i {
				case 3, 7:
					calls = append(calls, writeToAddrPort(make([]byte, 70000), dst))
					bad[i] = syscall.EMSGSIZE
				case 9:
					calls = append(calls, writeToAddrPort([]byte("x"), netip.AddrPortFrom(dst.Addr(), 0)))
					bad[i] = syscall.EINVAL
				default:
					p := payload(i, 100)
					calls = append(calls, writeToAddrPort(p, dst))
					want = append(want, p)
				}
			}
			before := c.Stats()
			res := queueCalls(t, c, calls, nil)
			for i, r := range res {
				if errno, ok := bad[i]; ok {
					if r.n != 0 || errnoOf(r.err) != errno {
						t.Errorf("writer %d: %d, %v; want 0 and %v", i, r.n, r.err, errno)
					}
					continue
				}
				if r.err != nil || r.n != 100 {
					t.Errorf("writer %d: %d, %v; want 100, nil", i, r.n, r.err)
				}
			}
			got := r.Collect(len(want), 5*time.Second)
			if len(got) == len(want) {
				got = r.Quiet(100 * time.Millisecond)
			}
			if len(got) != len(want) {
				t.Fatalf("receiver got %d datagrams, want %d", len(got), len(want))
			}
			for i := range want {
				if string(got[i].Payload) != string(want[i]) {
					t.Fatalf("datagram %d differs", i)
				}
			}
			after := c.Stats()
			if sc, msgs := after.Syscalls-before.Syscalls, after.Messages-before.Messages; msgs != uint64(len(want)) || (sc >= msgs && !oneSyscallPerMessage) {
				t.Errorf("batched %d datagrams in %d system calls; want %d in fewer", msgs, sc, len(want))
			}
		})
	}
}

// TestGroupDeadlineWhileQueued: a write deadline that passes while writers
// are queued fails each of them with os.ErrDeadlineExceeded, as the
// UDPConn's writers waiting for its write lock would fail, and none of
// their datagrams is sent later.
func TestGroupDeadlineWhileQueued(t *testing.T) {
	r := receiver(t, "udp4")
	c := listen(t, "udp4")
	ref := testnet.ListenUDP(t, "udp4")
	ref.SetWriteDeadline(time.Now().Add(-time.Second))
	call := writeToAddrPort([]byte("late"), r.Addr())
	wn, _, want := call.do(ref)
	if !errors.Is(want, os.ErrDeadlineExceeded) {
		t.Fatalf("UDPConn past its deadline: %v", want)
	}
	calls := []writeCall{call, call, writeTo([]byte("late"), net.UDPAddrFromAddrPort(r.Addr())), write([]byte("late"))}
	res := queueCalls(t, c, calls, func() { c.SetWriteDeadline(time.Now().Add(-time.Second)) })
	for i, got := range res[:2] {
		sameResult(t, fmt.Sprintf("writer %d", i), c, ref, got.n, 0, got.err, wn, 0, want)
	}
	if !errors.Is(res[2].err, os.ErrDeadlineExceeded) {
		t.Errorf("WriteTo: %v, want os.ErrDeadlineExceeded", res[2].err)
	}
	if !errors.Is(res[3].err, syscall.EDESTADDRREQ) && !errors.Is(res[3].err, os.ErrDeadlineExceeded) {
		t.Errorf("Write on an unconnected socket: %v", res[3].err)
	}
	c.SetWriteDeadline(time.Time{})
	if got := r.Quiet(200 * time.Millisecond); len(got) != 0 {
		t.Errorf("%d datagrams arrived after their writers timed out", len(got))
	}
	if _, err := c.WriteToUDPAddrPort([]byte("on time"), r.Addr()); err != nil {
		t.Errorf("after the deadline was cleared: %v", err)
	}
}

// TestGroupCloseWhileQueued: Close while writers are queued fails each of
// them with net.ErrClosed, shaped as the UDPConn's, and sends nothing.
func TestGroupCloseWhileQueued(t *testing.T) {
	r := receiver(t, "udp4")
	c := listen(t, "udp4")
	ref := testnet.ListenUDP(t, "udp4")
	ref.Close()
	calls := []writeCall{
		writeToAddrPort([]byte("x"), r.Addr()),
		writeToUDP([]byte("x"), net.UDPAddrFromAddrPort(r.Addr())),
		writeMsgAddrPort([]byte("x"), nil, r.Addr()),
		writeTo([]byte("x"), &net.IPAddr{}),
	}
	res := queueCalls(t, c, calls, func() { c.Close() })
	for i, got := range res {
		wn, woobn, want := calls[i].do(ref)
		sameResult(t, calls[i].name, c, ref, got.n, got.oobn, got.err, wn, woobn, want)
	}
	if got := r.Quiet(200 * time.Millisecond); len(got) != 0 {
		t.Errorf("%d datagrams sent after Close", len(got))
	}
}

// TestGroupCoexistsWithWriteMessages runs single-datagram writers and
// WriteMessages callers on one Conn; everything arrives.
func TestGroupCoexistsWithWriteMessages(t *testing.T) {
	r := receiver(t, "udp4")
	c := listen(t, "udp4")
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w%2 == 0 {
				for i := range each {
					if _, err := c.WriteToUDPAddrPort(payload(w*each+i, 64), r.Addr()); err != nil {
						t.Error(err)
						return
					}
				}
				return
			}
			msgs := make([]batchconn.Message, 10)
			for i := 0; i < each; i += len(msgs) {
				for k := range msgs {
					msgs[k] = batchconn.Message{Addr: r.Addr(), Buffers: [][]byte{payload(w*each+i+k, 64)}}
				}
				mustSendAll(t, c, msgs)
			}
		}()
		if w == 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					if err := c.WaitWritable(t.Context()); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
	got := r.Collect(writers*each, 10*time.Second)
	if len(got) != writers*each {
		t.Fatalf("received %d datagrams, want %d", len(got), writers*each)
	}
}

func mustSendAll(t *testing.T, c *batchconn.Conn, msgs []batchconn.Message) {
	for len(msgs) > 0 {
		n, err := c.WriteMessages(t.Context(), msgs, 0)
		if err != nil {
			t.Error(err)
			return
		}
		msgs = msgs[n:]
	}
}

// TestGroupEveryDatagramOnce: many writers, each told its datagrams were
// sent, and every one of them arrives exactly once and intact. Each
// datagram carries its writer, its number and a SHA-256 of both. The
// sender may run at most window datagrams ahead of the receiver, so that
// the receive buffer cannot overflow; SO_RXQ_OVFL counts any drop at the
// socket, and a drop fails the test rather than passing as a loss.
func TestGroupEveryDatagramOnce(t *testing.T) {
	writers, each := 64, 10000
	if testing.Short() || raceEnabled {
		writers, each = 16, 500
	}
	for _, gso := range []bool{false, true} {
		t.Run(gsoName(gso), func(t *testing.T) {
			everyDatagramOnce(t, writers, each, gso)
		})
	}
}

func everyDatagramOnce(t *testing.T, writers, each int, gso bool) {
	rx := testnet.ListenUDP(t, "udp4")
	rc, _ := rx.SyscallConn()
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1) })
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	c := listen(t, "udp4", batchconn.WithGSO(gso))

	const size, window = 64, 512
	credit := make(chan struct{}, window)
	seen := make([][]bool, writers)
	for w := range seen {
		seen[w] = make([]bool, each)
	}
	total := writers * each
	rxDone := make(chan error, 1)
	go func() {
		b := make([]byte, 2048)
		oob := make([]byte, 128)
		for got := 0; got < total; got++ {
			rx.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, oobn, _, _, err := rx.ReadMsgUDPAddrPort(b, oob)
			if err != nil {
				rxDone <- fmt.Errorf("after %d of %d datagrams: %w", got, total, err)
				return
			}
			if d := dropped(oob[:oobn]); d != 0 {
				rxDone <- fmt.Errorf("the socket dropped %d datagrams (SO_RXQ_OVFL)", d)
				return
			}
			if n != size {
				rxDone <- fmt.Errorf("a datagram of %d bytes, want %d", n, size)
				return
			}
			w, i := int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
			if sum := sha256.Sum256(b[:8]); string(sum[:]) != string(b[8:40]) || w >= writers || i >= each {
				rxDone <- fmt.Errorf("a corrupt datagram: %x", b[:n])
				return
			}
			if seen[w][i] {
				rxDone <- fmt.Errorf("writer %d's datagram %d arrived twice", w, i)
				return
			}
			seen[w][i] = true
			<-credit
		}
		rxDone <- nil
	}()

	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, size)
			for i := range each {
				binary.BigEndian.PutUint32(p, uint32(w))
				binary.BigEndian.PutUint32(p[4:], uint32(i))
				sum := sha256.Sum256(p[:8])
				copy(p[8:], sum[:])
				credit <- struct{}{}
				var err error
				switch i % 3 {
				case 0:
					_, err = c.WriteToUDPAddrPort(p, dst)
				case 1:
					_, err = c.WriteTo(p, net.UDPAddrFromAddrPort(dst))
				default:
					_, _, err = c.WriteMsgUDPAddrPort(p, nil, dst)
				}
				if err != nil {
					failed.Add(1)
					t.Errorf("writer %d, datagram %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		return
	}
	if err := <-rxDone; err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	t.Logf("%d writers × %d datagrams: %d batched in %d system calls (%d GSO sends), the rest sent alone",
		writers, each, st.Messages, st.Syscalls, st.GSOBatches)
	if st.Messages == 0 {
		t.Errorf("no datagram was batched: the writers never met")
	}
}

// dropped returns the SO_RXQ_OVFL count in oob, or 0.
func dropped(oob []byte) uint32 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data)
		}
	}
	return 0
}

// TestGroupNoAllocation: a write allocates nothing, alone or combined with
// concurrent writers.
func TestGroupNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	dst := sink(t)
	c := listen(t, "udp4")
	p := make([]byte, 100)
	ua := net.UDPAddrFromAddrPort(dst)
	alone := map[string]func(){
		"WriteTo":             func() { c.WriteTo(p, ua) },
		"WriteToUDP":          func() { c.WriteToUDP(p, ua) },
		"WriteToUDPAddrPort":  func() { c.WriteToUDPAddrPort(p, dst) },
		"WriteMsgUDP":         func() { c.WriteMsgUDP(p, nil, ua) },
		"WriteMsgUDPAddrPort": func() { c.WriteMsgUDPAddrPort(p, nil, dst) },
	}
	for name, f := range alone {
		if a := testing.AllocsPerRun(200, f); a != 0 {
			t.Errorf("%s alone: %v allocations per write", name, a)
		}
	}

	// Queued: eight writers arrive while a send is in flight and leave in
	// one batch. The writers are goroutines started once, so that
	// AllocsPerRun counts only what the writes allocate.
	const writers = 8
	start, done := make(chan struct{}), make(chan struct{})
	for w := range writers {
		go func() {
			q := make([]byte, 100)
			for range start {
				if w%2 == 0 {
					c.WriteToUDPAddrPort(q, dst)
				} else {
					c.WriteTo(q, ua)
				}
				done <- struct{}{}
			}
		}()
	}
	defer close(start)
	batch := func() {
		c.HoldGate()
		for range writers {
			start <- struct{}{}
		}
		for c.QueuedWriters() != writers {
			runtime.Gosched()
		}
		c.ReleaseGate()
		for range writers {
			<-done
		}
	}
	batch() // grow the queue's entries and the leader's scratch
	before := c.Stats()
	if a := testing.AllocsPerRun(200, batch); a != 0 {
		t.Errorf("queued: %v allocations per batch of %d writes", a, writers)
	}
	if after := c.Stats(); after.Messages-before.Messages != 201*writers {
		t.Errorf("%d datagrams were batched, want %d", after.Messages-before.Messages, 201*writers)
	}
}

// TestGroupSyscallsPerDatagram: writers that queue behind a send leave
// together, in one system call (one GSO send, here).
func TestGroupSyscallsPerDatagram(t *testing.T) {
	r := receiver(t, "udp4")
	c := listen(t, "udp4", batchconn.WithGSO(false))
	var calls []writeCall
	for i := range 32 {
		calls = append(calls, writeToAddrPort(payload(i, 200), r.Addr()))
	}
	before := c.Stats()
	for i, res := range queueCalls(t, c, calls, nil) {
		if res.err != nil || res.n != 200 {
			t.Fatalf("writer %d: %d, %v", i, res.n, res.err)
		}
	}
	after := c.Stats()
	want := uint64(1)
	if oneSyscallPerMessage {
		want = 32
	}
	if sc, msgs := after.Syscalls-before.Syscalls, after.Messages-before.Messages; sc != want || msgs != 32 {
		t.Errorf("32 queued writers took %d system calls for %d datagrams; want %d for 32", sc, msgs, want)
	}
	if got := r.Collect(32, 5*time.Second); len(got) != 32 {
		t.Fatalf("received %d datagrams, want 32", len(got))
	}
}
