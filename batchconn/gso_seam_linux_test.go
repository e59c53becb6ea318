//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/batchconn/batchconn/internal/testnet"
	"golang.org/x/sys/unix"
)

// These tests replace the sendmmsg seam to get what a loopback kernel will
// not give on demand: EIO for GSO sends, EINTR, short counts. The fakes keep
// the kernel's shapes: sendmmsg returns an error only when it sent nothing,
// and otherwise the count of headers sent, the error being lost. Everything
// a fake lets through goes to the real system call and a real receiver.
// They change a package variable, so none of them runs in parallel.

type sendmmsgFunc = func(fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno)

// fakeSendmmsg installs fake, which gets the real sendmmsg to call, for the
// rest of the test.
func fakeSendmmsg(t *testing.T, fake func(real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno)) {
	t.Helper()
	real := sendmmsg
	t.Cleanup(func() { sendmmsg = real })
	sendmmsg = func(fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
		return fake(real, fd, hdrs, flags)
	}
}

// hasSegment reports whether h carries a UDP_SEGMENT control message.
func hasSegment(h *mmsghdr) bool {
	if h.hdr.Control == nil {
		return false
	}
	found, _ := findCmsg(unsafe.Slice(h.hdr.Control, h.hdr.Controllen), solUDP, udpSegment)
	return found
}

// seamSentinel ends every receiver's datagrams; see gsoSentinel in gso_test.go.
var seamSentinel = []byte("batchconn seam test: end of datagrams")

// seamSetup returns a Conn with GSO in use and two receivers on loopback.
func seamSetup(t *testing.T) (*Conn, []*testnet.Receiver, []netip.AddrPort) {
	t.Helper()
	c, err := New(testnet.ListenUDP(t, "udp4"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !c.GSOEnabled() {
		t.Skipf("UDP GSO is not in use: %s", c.Stats().GSOOff)
	}
	rxs := []*testnet.Receiver{
		testnet.NewReceiver(t, testnet.ListenUDP(t, "udp4")),
		testnet.NewReceiver(t, testnet.ListenUDP(t, "udp4")),
	}
	return c, rxs, []netip.AddrPort{rxs[0].Addr(), rxs[1].Addr()}
}

// seamMessages makes runs GSO runs of 4 × 1000 bytes, alternating between
// dst[0] and dst[1], with a plain 300-byte message to dst[1] before every
// third run. Every datagram is stamped with its index.
func seamMessages(dst []netip.AddrPort, runs int) []Message {
	var msgs []Message
	add := func(d, size int) {
		p := make([]byte, size)
		for j := range p {
			p[j] = byte(len(msgs) + j*3)
		}
		binary.BigEndian.PutUint16(p, uint16(len(msgs)))
		msgs = append(msgs, Message{Addr: dst[d], Buffers: [][]byte{p[:size/3], p[size/3:]}, N: -1})
	}
	for r := range runs {
		if r%3 == 2 {
			add(1, 300)
		}
		for range 4 {
			add(r%2, 1000)
		}
	}
	return msgs
}

// seamSend sends msgs in one call and checks that all were accepted with
// the right N.
func seamSend(t *testing.T, c *Conn, msgs []Message) {
	t.Helper()
	n, err := c.WriteMessages(context.Background(), msgs, 0)
	if n != len(msgs) || err != nil {
		t.Fatalf("WriteMessages of %d messages = (%d, %v), want all sent", len(msgs), n, err)
	}
	for k := range msgs {
		if want := msgLen(&msgs[k]); msgs[k].N != want {
			t.Errorf("msgs[%d].N = %d, want %d", k, msgs[k].N, want)
		}
	}
}

// seamArrivals checks that each receiver got exactly its datagrams of msgs,
// once each and in order.
func seamArrivals(t *testing.T, c *Conn, rxs []*testnet.Receiver, dst []netip.AddrPort, msgs []Message) {
	t.Helper()
	for i, rx := range rxs {
		var want [][]byte
		for k := range msgs {
			if msgs[k].Addr == dst[i] {
				want = append(want, bytes.Join(msgs[k].Buffers, nil))
			}
		}
		want = append(want, seamSentinel)
		if _, err := c.UDPConn().WriteToUDPAddrPort(seamSentinel, dst[i]); err != nil {
			t.Fatal(err)
		}
		got := rx.Collect(len(want), 10*time.Second)
		if len(got) != len(want) {
			t.Errorf("receiver %d got %d datagrams, want %d and the sentinel", i, len(got), len(want)-1)
		}
		for k := range min(len(got), len(want)) {
			if !bytes.Equal(got[k].Payload, want[k]) {
				t.Errorf("receiver %d: datagram %d is %d bytes (% x...), want %d bytes (% x...)", i, k,
					len(got[k].Payload), got[k].Payload[:min(4, len(got[k].Payload))], len(want[k]), want[k][:min(4, len(want[k]))])
				break
			}
		}
	}
}

// refuseGSO is a kernel that refuses the n-th GSO send it is offered (0, 1,
// ...) with errno when refuse(n) says so, and sends everything else.
func refuseGSO(errno syscall.Errno, refuse func(n int) bool, offered *int) func(sendmmsgFunc, uintptr, []mmsghdr, int) (int, syscall.Errno) {
	return func(real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
		for k := range hdrs {
			if !hasSegment(&hdrs[k]) {
				continue
			}
			if k > 0 {
				return real(fd, hdrs[:k], flags) // the headers before it; its error would be lost
			}
			n := *offered
			*offered++
			if refuse(n) {
				return 0, errno
			}
			return real(fd, hdrs[:1], flags)
		}
		return real(fd, hdrs, flags)
	}
}

func TestContractC14FallbackLadder(t *testing.T) {
	always := func(int) bool { return true }
	tests := []struct {
		name          string
		errno         syscall.Errno
		refuse        func(n int) bool
		runs          int
		wantFallbacks uint64
		wantBatches   uint64
		wantOff       string // part of Stats().GSOOff; "" = GSO stays on
	}{
		{"EIO resends the run plain and turns GSO off for good", unix.EIO, always, 6, 1, 0, "EIO"},
		{"EIO after accepted runs still loses nothing", unix.EIO, func(n int) bool { return n == 2 }, 6, 1, 2, "EIO"},
		{"EINVAL resends each run plain and leaves GSO on", unix.EINVAL, always, 5, 5, 0, ""},
		{"EMSGSIZE resends each run plain and leaves GSO on", unix.EMSGSIZE, always, 5, 5, 0, ""},
		{"EINVAL on 16 GSO sends in a row turns GSO off", unix.EINVAL, always, 20, 16, 0, "EINVAL"},
		{"EINVAL on 15 in a row leaves GSO on", unix.EINVAL, func(n int) bool { return n < 15 }, 17, 15, 2, ""},
		{"an accepted GSO send restarts the EINVAL count", unix.EINVAL, func(n int) bool { return n != 15 }, 31, 30, 1, ""},
		{"EMSGSIZE on 16 GSO sends in a row turns GSO off", unix.EMSGSIZE, func(n int) bool { return n < 16 }, 18, 16, 0, "EMSGSIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rxs, dst := seamSetup(t)
			offered := 0
			fakeSendmmsg(t, refuseGSO(tt.errno, tt.refuse, &offered))
			msgs := seamMessages(dst, tt.runs)
			seamSend(t, c, msgs)

			st := c.Stats()
			if st.GSOFallbacks != tt.wantFallbacks || st.GSOBatches != tt.wantBatches {
				t.Errorf("GSOFallbacks %d, GSOBatches %d; want %d, %d", st.GSOFallbacks, st.GSOBatches, tt.wantFallbacks, tt.wantBatches)
			}
			if got := c.GSOEnabled(); got != (tt.wantOff == "") || !strings.Contains(st.GSOOff, tt.wantOff) {
				t.Errorf("GSOEnabled() = %v, GSOOff = %q; want off %v, naming %q", got, st.GSOOff, tt.wantOff != "", tt.wantOff)
			}
			if tt.wantOff != "" {
				// Off for good: the next call offers the kernel no GSO send.
				before := offered
				more := seamMessages(dst, 4)
				seamSend(t, c, more)
				if offered != before {
					t.Errorf("after GSO was turned off, %d more GSO sends were made", offered-before)
				}
				msgs = append(msgs, more...)
			}
			seamArrivals(t, c, rxs, dst, msgs)
		})
	}
}

func TestContractC14EINVALStreakSpansCalls(t *testing.T) {
	c, rxs, dst := seamSetup(t)
	offered := 0
	fakeSendmmsg(t, refuseGSO(unix.EINVAL, func(int) bool { return true }, &offered))
	var all []Message
	for call := 1; call <= maxEINVALStreak; call++ {
		msgs := seamMessages(dst, 1)
		seamSend(t, c, msgs)
		all = append(all, msgs...)
		if on := c.GSOEnabled(); on != (call < maxEINVALStreak) {
			t.Fatalf("after %d calls with one refused run each, GSOEnabled() = %v", call, on)
		}
	}
	seamArrivals(t, c, rxs, dst, all)
}

func TestContractC14ShortCountsAndEINTR(t *testing.T) {
	tests := []struct {
		name string
		// fake is the kernel; call counts its invocations from 0.
		fake func(call int, real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno)
	}{
		{"EINTR before anything was sent is retried", func(call int, real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
			if call == 0 {
				return 0, unix.EINTR
			}
			return real(fd, hdrs, flags)
		}},
		{"one header per system call sends each message once", func(call int, real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
			return real(fd, hdrs[:1], flags)
		}},
		{"half the headers per system call sends each message once", func(call int, real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
			return real(fd, hdrs[:(len(hdrs)+1)/2], flags)
		}},
		{"EINTR between short counts sends each message once", func(call int, real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
			if call%2 == 1 {
				return 0, unix.EINTR
			}
			return real(fd, hdrs[:min(len(hdrs), 3)], flags)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rxs, dst := seamSetup(t)
			call := 0
			fakeSendmmsg(t, func(real sendmmsgFunc, fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
				defer func() { call++ }()
				return tt.fake(call, real, fd, hdrs, flags)
			})
			const runs = 10
			msgs := seamMessages(dst, runs)
			seamSend(t, c, msgs)
			if st := c.Stats(); st.GSOBatches != runs || st.GSOFallbacks != 0 || st.Syscalls != uint64(call) {
				t.Errorf("Stats: GSOBatches %d, GSOFallbacks %d, Syscalls %d; want %d, 0, %d", st.GSOBatches, st.GSOFallbacks, st.Syscalls, runs, call)
			}
			seamArrivals(t, c, rxs, dst, msgs)
		})
	}
}
