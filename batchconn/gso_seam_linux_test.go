//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
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

type sendmmsgFunc = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno)

// fakeSendmmsg installs fake, which gets the real sendmmsg to call, for the
// rest of the test.
func fakeSendmmsg(t *testing.T, fake func(real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno)) {
	t.Helper()
	real := sendmmsg
	t.Cleanup(func() { sendmmsg = real })
	sendmmsg = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
		return fake(real, fd, hdrs, flags)
	}
}

// hasSegment reports whether h carries a UDP_SEGMENT control message.
func hasSegment(h *unix.Mmsghdr) bool {
	if h.Hdr.Control == nil {
		return false
	}
	found, _ := findCmsg(unsafe.Slice(h.Hdr.Control, h.Hdr.Controllen), solUDP, udpSegment)
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

// headerPort returns the destination port of an IPv4 header.
func headerPort(h *unix.Mmsghdr) uint16 {
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(h.Hdr.Name))
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
}

// A gsoOffers counts the GSO sends a fake kernel is offered, in all (n) and
// per destination (by index in dst).
type gsoOffers struct {
	dst []netip.AddrPort
	n   int
	per map[int]int
}

func (o *gsoOffers) dest(h *unix.Mmsghdr) int {
	for d, a := range o.dst {
		if a.Port() == headerPort(h) {
			return d
		}
	}
	return -1
}

// refuseGSO is a kernel that refuses a GSO send with errno when refuse(n,
// k, d) says so, n counting all GSO sends offered (0, 1, ...), k those to
// destination d, and sends everything else.
func refuseGSO(errno syscall.Errno, refuse func(n, k, d int) bool, o *gsoOffers) func(sendmmsgFunc, uintptr, []unix.Mmsghdr, int) (int, syscall.Errno) {
	if o.per == nil {
		o.per = map[int]int{}
	}
	return func(real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
		for k := range hdrs {
			if !hasSegment(&hdrs[k]) {
				continue
			}
			if k > 0 {
				return real(fd, hdrs[:k], flags) // the headers before it; its error would be lost
			}
			d := o.dest(&hdrs[0])
			n, kd := o.n, o.per[d]
			o.n++
			o.per[d]++
			if refuse(n, kd, d) {
				return 0, errno
			}
			return real(fd, hdrs[:1], flags)
		}
		return real(fd, hdrs, flags)
	}
}

func TestContractC14FallbackLadder(t *testing.T) {
	always := func(n, k, d int) bool { return true }
	tests := []struct {
		name          string
		errno         syscall.Errno
		refuse        func(n, k, d int) bool
		runs          int // alternating between destinations 0 and 1
		wantFallbacks uint64
		wantBatches   uint64
		wantOff       string // part of Stats().GSOOff; "" = GSO stays on
		offDests      []int  // destinations offered no GSO send afterwards
	}{
		{"EIO resends the run plain and turns GSO off for good", unix.EIO, always, 6, 1, 0, "EIO", []int{0, 1}},
		{"EIO after accepted runs still loses nothing", unix.EIO, func(n, k, d int) bool { return n == 2 }, 6, 1, 2, "EIO", []int{0, 1}},
		{"EINVAL resends each run plain and leaves GSO on", unix.EINVAL, always, 5, 5, 0, "", nil},
		{"EMSGSIZE resends each run plain and leaves GSO on", unix.EMSGSIZE, always, 5, 5, 0, "", nil},
		{"EINVAL 4 times in a row to each destination stops their GSO runs, not the Conn's", unix.EINVAL, always, 20, 8, 0, "", []int{0, 1}},
		{"a destination refusing GSO leaves the other destination's GSO runs", unix.EMSGSIZE, func(n, k, d int) bool { return d == 0 }, 20, 4, 10, "", []int{0}},
		{"3 refusals in a row leave a destination's GSO runs on", unix.EINVAL, func(n, k, d int) bool { return d == 0 && k < 3 }, 20, 3, 17, "", nil},
		{"an accepted GSO send restarts the destination's count", unix.EINVAL, func(n, k, d int) bool { return d == 0 && k != 3 }, 20, 7, 11, "", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rxs, dst := seamSetup(t)
			o := &gsoOffers{dst: dst}
			fakeSendmmsg(t, refuseGSO(tt.errno, tt.refuse, o))
			msgs := seamMessages(dst, tt.runs)
			seamSend(t, c, msgs)

			st := c.Stats()
			if st.GSOFallbacks != tt.wantFallbacks || st.GSOBatches != tt.wantBatches {
				t.Errorf("GSOFallbacks %d, GSOBatches %d; want %d, %d", st.GSOFallbacks, st.GSOBatches, tt.wantFallbacks, tt.wantBatches)
			}
			if got := c.GSOEnabled(); got != (tt.wantOff == "") || !strings.Contains(st.GSOOff, tt.wantOff) {
				t.Errorf("GSOEnabled() = %v, GSOOff = %q; want off %v, naming %q", got, st.GSOOff, tt.wantOff != "", tt.wantOff)
			}
			// The next call offers the kernel GSO sends to exactly the
			// destinations that were not turned off.
			before := maps.Clone(o.per)
			more := seamMessages(dst, 4)
			seamSend(t, c, more)
			for d := range dst {
				got := o.per[d] - before[d]
				if off := slices.Contains(tt.offDests, d); off != (got == 0) {
					t.Errorf("after the first call, destination %d was offered %d GSO sends; want none: %v", d, got, off)
				}
			}
			seamArrivals(t, c, rxs, dst, append(msgs, more...))
		})
	}
}

func TestContractC14DestinationFailuresSpanCalls(t *testing.T) {
	c, rxs, dst := seamSetup(t)
	o := &gsoOffers{dst: dst}
	fakeSendmmsg(t, refuseGSO(unix.EINVAL, func(n, k, d int) bool { return d == 0 }, o))
	var all []Message
	for call := 1; call <= maxDestGSOFailures+1; call++ {
		msgs := seamMessages(dst, 1) // one run, to destination 0
		seamSend(t, c, msgs)
		all = append(all, msgs...)
		if want := min(call, maxDestGSOFailures); o.per[0] != want || !c.GSOEnabled() {
			t.Fatalf("after %d calls with one refused run each: %d GSO sends offered, GSOEnabled() = %v; want %d, true",
				call, o.per[0], c.GSOEnabled(), want)
		}
	}
	// Destination 1 still gets GSO runs.
	msgs := seamMessages(dst, 2)
	seamSend(t, c, msgs)
	all = append(all, msgs...)
	if o.per[1] != 1 || c.Stats().GSOBatches != 1 {
		t.Errorf("destination 1: %d GSO sends offered, %d accepted; want 1, 1", o.per[1], c.Stats().GSOBatches)
	}
	seamArrivals(t, c, rxs, dst, all)
}

func TestContractC14ShortCountsAndEINTR(t *testing.T) {
	tests := []struct {
		name string
		// fake is the kernel; call counts its invocations from 0.
		fake func(call int, real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno)
	}{
		{"EINTR before anything was sent is retried", func(call int, real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
			if call == 0 {
				return 0, unix.EINTR
			}
			return real(fd, hdrs, flags)
		}},
		{"one header per system call sends each message once", func(call int, real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
			return real(fd, hdrs[:1], flags)
		}},
		{"half the headers per system call sends each message once", func(call int, real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
			return real(fd, hdrs[:(len(hdrs)+1)/2], flags)
		}},
		{"EINTR between short counts sends each message once", func(call int, real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
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
			fakeSendmmsg(t, func(real sendmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
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
