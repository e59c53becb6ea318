//go:build linux

package batchconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"weak"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// These tests run on both Linux paths: sendmmsg (the default) and one
// sendmsg per message (-tags batchconn_sendmsg).

// bigBuffer is a buffer far larger than what is sent from it, so that
// keeping it alive would matter.
type bigBuffer [16 << 20]byte

// sendFromBig sends from fresh big arrays, with the call shape build gives,
// and returns weak pointers to the arrays holding the payload and the
// control data, and the call's result. Nothing here keeps them alive after
// it returns.
func sendFromBig(c *batchconn.Conn, build func(payload, oob []byte) []batchconn.Message, ctx context.Context, flags int) (weak.Pointer[bigBuffer], weak.Pointer[[4096]byte], int, error) {
	big := new(bigBuffer)
	oob := new([4096]byte)
	tos := tosOOB(0x28)
	copy(oob[:], tos)
	msgs := build(big[:], oob[:len(tos)])
	n, err := c.WriteMessages(ctx, msgs, flags)
	return weak.Make(big), weak.Make(oob), n, err
}

// collected reports whether a weakly held object has been freed.
func collected[T any](p weak.Pointer[T]) bool {
	for range 3 {
		runtime.GC()
		if p.Value() == nil {
			return true
		}
	}
	return false
}

func TestContractC9C10NothingRetainedAfterTheCall(t *testing.T) {
	r := receiver(t, "udp4")
	dst := r.Addr()
	// runAndTail: a GSO run of 4 with control data, a plain message with
	// control data, then what the case appends.
	runAndTail := func(tail func(payload []byte) []batchconn.Message) func(payload, oob []byte) []batchconn.Message {
		return func(payload, oob []byte) []batchconn.Message {
			var msgs []batchconn.Message
			for i := range 4 {
				msgs = append(msgs, batchconn.Message{Addr: dst, Buffers: [][]byte{payload[i*1000 : (i+1)*1000]}, OOB: oob})
			}
			msgs = append(msgs, batchconn.Message{Addr: dst, Buffers: [][]byte{payload[5000:5300], payload[6000:6100]}, OOB: oob})
			msgs = append(msgs, batchconn.Message{Addr: dst, Buffers: [][]byte{payload[7000:7010]}})
			if tail != nil {
				msgs = append(msgs, tail(payload)...)
			}
			return msgs
		}
	}
	tests := []struct {
		name  string
		tail  func(payload []byte) []batchconn.Message
		wantN int
	}{
		{"all messages sent", nil, 6},
		{"a message the kernel refuses (EMSGSIZE) ends the call", func(p []byte) []batchconn.Message {
			return []batchconn.Message{{Addr: dst, Buffers: [][]byte{p[:70000]}}}
		}, 6},
		{"a bad destination ends the call", func(p []byte) []batchconn.Message {
			return []batchconn.Message{{Addr: netip.AddrPortFrom(dst.Addr(), 0), Buffers: [][]byte{p[:10]}}}
		}, 6},
		{"malformed control data ends the call", func(p []byte) []batchconn.Message {
			return []batchconn.Message{{Addr: dst, Buffers: [][]byte{p[:10]}, OOB: p[:3]}}
		}, 6},
	}
	for _, gso := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %s", tt.name, gsoName(gso)), func(t *testing.T) {
				c := listen(t, "udp4", batchconn.WithGSO(gso))
				payload, oob, n, err := sendFromBig(c, runAndTail(tt.tail), context.Background(), 0)
				if n != tt.wantN || err != nil {
					t.Fatalf("WriteMessages = %d, %v; want %d, nil", n, err, tt.wantN)
				}
				if !collected(payload) {
					t.Error("the payload's array is still reachable after WriteMessages returned")
				}
				if !collected(oob) {
					t.Error("the control data's array is still reachable after WriteMessages returned")
				}
			})
		}
	}
	t.Run("the first message failing", func(t *testing.T) {
		c := listen(t, "udp4")
		payload, oob, n, err := sendFromBig(c, func(p, oob []byte) []batchconn.Message {
			return []batchconn.Message{{Addr: dst, Buffers: [][]byte{p[:70000]}, OOB: oob}}
		}, context.Background(), 0)
		if n != 0 || errnoOf(err) != syscall.EMSGSIZE {
			t.Fatalf("WriteMessages = %d, %v; want 0, EMSGSIZE", n, err)
		}
		if !collected(payload) || !collected(oob) {
			t.Error("an array is still reachable after WriteMessages failed")
		}
	})
	t.Run("a full socket: would block, and a cancelled wait", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		build := func(p, oob []byte) []batchconn.Message {
			msgs := s.msgs(4)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{p[i*1200 : (i+1)*1200]}
				msgs[i].OOB = oob
			}
			return msgs
		}
		payload, oob, n, err := sendFromBig(s.c, build, context.Background(), unix.MSG_DONTWAIT)
		if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) {
			t.Fatalf("non-blocking WriteMessages on a full socket = %d, %v; want 0, ErrWouldBlock", n, err)
		}
		if !collected(payload) || !collected(oob) {
			t.Error("an array is still reachable after WriteMessages would have blocked")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		payload, oob, n, err = sendFromBig(s.c, build, ctx, 0)
		if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("blocking WriteMessages on a full socket = %d, %v; want 0, DeadlineExceeded", n, err)
		}
		if !collected(payload) || !collected(oob) {
			t.Error("an array is still reachable after a WriteMessages wait ended")
		}
	})
}

func TestContractC9MoreThan1024BuffersIsEMSGSIZE(t *testing.T) {
	slab := make([]byte, 4096)
	adjacent := func(n int) [][]byte {
		b := make([][]byte, n)
		for i := range b {
			b[i] = slab[i : i+1]
		}
		return b
	}
	scattered := func(n int) [][]byte {
		b := make([][]byte, n)
		for i := range b {
			b[i] = slab[2*i : 2*i+1]
		}
		return b
	}
	empty := func(n int) [][]byte { return make([][]byte, n) }
	for _, gso := range []bool{true, false} {
		c := listen(t, "udp4", batchconn.WithGSO(gso))
		r := receiver(t, "udp4")
		for _, kind := range []struct {
			name string
			bufs func(n int) [][]byte
		}{{"adjacent", adjacent}, {"scattered", scattered}, {"empty", empty}} {
			t.Run(fmt.Sprintf("1025 %s buffers %s", kind.name, gsoName(gso)), func(t *testing.T) {
				msgs := messages(r.Addr(), 1, 100)
				msgs = append(msgs, batchconn.Message{Addr: r.Addr(), Buffers: kind.bufs(1025)})
				if n, err := c.WriteMessages(context.Background(), msgs, 0); n != 1 || err != nil {
					t.Fatalf("WriteMessages = %d, %v; want 1, nil", n, err)
				}
				n, err := c.WriteMessages(context.Background(), msgs[1:], 0)
				var oe *net.OpError
				if n != 0 || !errors.As(err, &oe) || !errors.Is(err, syscall.EMSGSIZE) || !strings.Contains(err.Error(), "1024") {
					t.Fatalf("retry = %d, %v; want 0 and a *net.OpError for EMSGSIZE naming the limit", n, err)
				}
			})
			t.Run(fmt.Sprintf("1024 %s buffers %s are sent", kind.name, gsoName(gso)), func(t *testing.T) {
				r := receiver(t, "udp4")
				msgs := []batchconn.Message{{Addr: r.Addr(), Buffers: kind.bufs(1024)}, {Addr: r.Addr(), Buffers: kind.bufs(1024)}}
				mustSend(t, c, msgs)
				expectDatagrams(t, r, msgs)
			})
		}
	}
}

func TestContractC10MalformedOOBIsEINVAL(t *testing.T) {
	hdr := unix.CmsgLen(0)
	good := tosOOB(0x28)
	overrun := tosOOB(0x28)
	(*unix.Cmsghdr)(unsafePointer(overrun)).SetLen(len(overrun) + 1)
	bad := map[string][]byte{
		"shorter than a cmsghdr":                     make([]byte, hdr-1),
		"bytes left over after the last message":     append(bytes.Clone(good), 1, 2, 3),
		"a cmsghdr less one byte after the last one": append(bytes.Clone(good), make([]byte, hdr-1)...),
		"a cmsg_len past the end":                    overrun,
	}
	for _, gso := range []bool{true, false} {
		c := listen(t, "udp4", batchconn.WithGSO(gso))
		r := receiver(t, "udp4")
		for name, oob := range bad {
			t.Run(fmt.Sprintf("%s %s", name, gsoName(gso)), func(t *testing.T) {
				// Two good messages, then three that would make a GSO run.
				msgs := messages(r.Addr(), 5, 100)
				for i := 2; i < 5; i++ {
					msgs[i].OOB = oob
				}
				if n, err := c.WriteMessages(context.Background(), msgs, 0); n != 2 || err != nil {
					t.Fatalf("WriteMessages = %d, %v; want 2, nil", n, err)
				}
				n, err := c.WriteMessages(context.Background(), msgs[2:], 0)
				var oe *net.OpError
				if n != 0 || !errors.As(err, &oe) || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "OOB") {
					t.Fatalf("retry = %d, %v; want 0 and a *net.OpError for EINVAL naming the OOB", n, err)
				}
				if oe.Addr == nil || oe.Addr.String() != r.Addr().String() {
					t.Errorf("error's Addr = %v, want %v", oe.Addr, r.Addr())
				}
				if st := c.Stats(); st.GSOFallbacks != 0 {
					t.Errorf("Stats().GSOFallbacks = %d: malformed OOB counted against GSO", st.GSOFallbacks)
				}
			})
		}
	}
	t.Run("control data built by x/net is well formed and sent", func(t *testing.T) {
		c := listen(t, "udp4")
		r := receiver(t, "udp4")
		oob := (&ipv4.ControlMessage{Src: net.IPv4(127, 0, 0, 1), IfIndex: 1}).Marshal()
		msgs := messages(r.Addr(), 5, 100)
		for i := range msgs {
			msgs[i].OOB = oob
		}
		mustSend(t, c, msgs)
		expectDatagrams(t, r, msgs)
		if c.GSOEnabled() && c.Stats().GSOBatches != 1 {
			t.Errorf("Stats().GSOBatches = %d, want 1 run", c.Stats().GSOBatches)
		}
	})
	t.Run("control data built by x/net for IPv6 is well formed and sent", func(t *testing.T) {
		uc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		uc.Close()
		c := listen(t, "udp6")
		r := receiver(t, "udp6")
		oob := (&ipv6.ControlMessage{TrafficClass: 0x28, HopLimit: 7}).Marshal()
		msgs := messages(r.Addr(), 5, 100)
		for i := range msgs {
			msgs[i].OOB = oob
		}
		mustSend(t, c, msgs)
		expectDatagrams(t, r, msgs)
	})
}

// sentinel ends what a flag case sends, so the reader knows it has all.
var sentinel = []byte("batchconn flag test: end of datagrams")

// readUntilSentinel reads datagrams from uc until the sentinel.
func readUntilSentinel(t *testing.T, uc *net.UDPConn) []string {
	t.Helper()
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	buf := make([]byte, 1<<16)
	for {
		n, err := uc.Read(buf)
		if err != nil {
			t.Fatalf("reading datagrams: %v (got %d so far)", err, len(got))
		}
		if bytes.Equal(buf[:n], sentinel) {
			return got
		}
		got = append(got, string(buf[:n]))
	}
}

// msgProbe is Linux's MSG_PROBE (include/linux/socket.h), which x/sys lacks.
const msgProbe = 0x10

func TestContractC14FlagsThatChangeDatagramsAreNotCoalesced(t *testing.T) {
	// Every flag the kernel honours for UDP sendmsg, and some it ignores.
	flags := []struct {
		name    string
		flag    int
		gsoRuns bool // GSO may still coalesce under this flag
	}{
		{"no flag", 0, true},
		{"MSG_MORE", unix.MSG_MORE, false},
		{"MSG_CONFIRM", unix.MSG_CONFIRM, true},
		{"MSG_DONTROUTE", unix.MSG_DONTROUTE, true},
		{"MSG_DONTWAIT", unix.MSG_DONTWAIT, true},
		{"MSG_NOSIGNAL", unix.MSG_NOSIGNAL, true},
		{"MSG_PROBE", msgProbe, false},
		{"MSG_EOR", unix.MSG_EOR, false},
		{"MSG_OOB", unix.MSG_OOB, false},
		{"MSG_ZEROCOPY", unix.MSG_ZEROCOPY, false},
		{"MSG_FASTOPEN", unix.MSG_FASTOPEN, false},
		{"MSG_TRUNC", unix.MSG_TRUNC, false},
		{"MSG_MORE and MSG_DONTWAIT", unix.MSG_MORE | unix.MSG_DONTWAIT, false},
		{"MSG_CONFIRM and MSG_DONTROUTE", unix.MSG_CONFIRM | unix.MSG_DONTROUTE, true},
	}
	type outcome struct {
		n1, n2     int
		err1, err2 string
		ns         []int
		got        []string
		gsoBatches uint64
	}
	run := func(t *testing.T, flag int, gso bool) outcome {
		c := listen(t, "udp4", batchconn.WithGSO(gso))
		ru := testnet.ListenUDP(t, "udp4")
		dst := ru.LocalAddr().(*net.UDPAddr).AddrPort()
		// Six equal messages with the flag (a GSO run, were it allowed),
		// then one without, which ends a cork.
		msgs := messages(dst, 6, 100)
		var o outcome
		o.n1, _ = c.WriteMessages(context.Background(), msgs, flag)
		_, err := c.WriteMessages(context.Background(), msgs[o.n1:], flag)
		o.err1 = errText(err)
		for i := range msgs {
			o.ns = append(o.ns, msgs[i].N)
		}
		var err2 error
		o.n2, err2 = c.WriteMessages(context.Background(), messages(dst, 1, 10), 0)
		o.err2 = errText(err2)
		o.gsoBatches = c.Stats().GSOBatches
		if _, err := c.UDPConn().WriteToUDPAddrPort(sentinel, dst); err != nil {
			t.Fatal(err)
		}
		o.got = readUntilSentinel(t, ru)
		return o
	}
	for _, f := range flags {
		t.Run(f.name, func(t *testing.T) {
			on, off := run(t, f.flag, true), run(t, f.flag, false)
			if fmt.Sprint(on.n1, on.ns, on.err1, on.n2, on.err2) != fmt.Sprint(off.n1, off.ns, off.err1, off.n2, off.err2) {
				t.Errorf("GSO on:  n %d, N %v, retry error %s, then %d, %s\nGSO off: n %d, N %v, retry error %s, then %d, %s",
					on.n1, on.ns, on.err1, on.n2, on.err2, off.n1, off.ns, off.err1, off.n2, off.err2)
			}
			if !slicesEqual(on.got, off.got) {
				t.Errorf("the receiver got %d datagrams (sizes %v) with GSO on, %d (sizes %v) with GSO off",
					len(on.got), sizes(on.got), len(off.got), sizes(off.got))
			}
			if f.flag&unix.MSG_MORE != 0 && (len(off.got) != 1 || len(off.got[0]) != 610) {
				t.Errorf("with MSG_MORE the kernel sent sizes %v, want one corked 610-byte datagram", sizes(off.got))
			}
			if gsoOn := supportsGSO(t); gsoOn && f.gsoRuns && on.n1 == 6 && on.gsoBatches != 1 {
				t.Errorf("GSO on: %d GSO sends, want the 6 messages as 1", on.gsoBatches)
			} else if !f.gsoRuns && on.gsoBatches != 0 {
				t.Errorf("GSO on: %d GSO sends under a flag that changes datagrams, want 0", on.gsoBatches)
			}
		})
	}
}

// errText is what an error says apart from the sockets' addresses, which
// differ between the GSO-on and GSO-off runs.
func errText(err error) string {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return fmt.Sprint(err)
	}
	return fmt.Sprintf("%s (errno %d)", oe.Err, errnoOf(err))
}

func slicesEqual(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) && len(a) == len(b) }

func sizes(ds []string) []int {
	var s []int
	for _, d := range ds {
		s = append(s, len(d))
	}
	return s
}
