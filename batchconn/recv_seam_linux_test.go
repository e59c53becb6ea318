//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/internal/testnet"
)

// fakeRecvmmsg replaces the recvmmsg seam for one test.
func fakeRecvmmsg(t *testing.T, fake func(real recvmmsgFunc, fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno)) {
	real := recvmmsg
	recvmmsg = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
		return fake(real, fd, hdrs, flags)
	}
	t.Cleanup(func() { recvmmsg = real })
}

// seamPair returns a Conn (GRO as asked) and a GSO sender to it.
func seamPair(t *testing.T, gro bool) (*Conn, *Conn) {
	t.Helper()
	c, err := New(testnet.ListenUDP(t, "udp4"), WithGRO(gro))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if gro && !c.GROEnabled() {
		t.Skip("no UDP GRO")
	}
	tx, err := New(testnet.ListenUDP(t, "udp4"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return c, tx
}

func recvSeamSend(t *testing.T, tx, to *Conn, n int) {
	t.Helper()
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Addr: to.LocalAddr().(*net.UDPAddr).AddrPort(), Buffers: [][]byte{make([]byte, 1000)}}
		msgs[i].Buffers[0][0] = byte(i)
	}
	if k, err := tx.WriteMessages(context.Background(), msgs, 0); k != n || err != nil {
		t.Fatalf("WriteMessages = %d, %v", k, err)
	}
}

func seamMsgs(n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	return msgs
}

// TestContractR9InjectedErrors checks the shape of a kernel error, and that
// EINTR is retried.
func TestContractR9InjectedErrors(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(map[bool]string{false: "GRO off", true: "GRO on"}[gro], func(t *testing.T) {
			c, tx := seamPair(t, gro)
			orig := recvmmsg
			fakeRecvmmsg(t, func(recvmmsgFunc, uintptr, []unix.Mmsghdr, int) (int, syscall.Errno) { return 0, unix.ENOMEM })
			n, err := c.ReadMessages(context.Background(), seamMsgs(4), 0)
			var oe *net.OpError
			var se *os.SyscallError
			if n != 0 || !errors.Is(err, unix.ENOMEM) || !errors.As(err, &oe) || oe.Op != "read" ||
				!errors.As(err, &se) || se.Syscall != "recvmmsg" {
				t.Fatalf("ReadMessages = %d, %v; want ENOMEM in *net.OpError read / *os.SyscallError recvmmsg", n, err)
			}
			eintr := 1
			recvmmsg = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
				if eintr > 0 {
					eintr--
					return 0, unix.EINTR
				}
				return orig(fd, hdrs, flags)
			}
			recvSeamSend(t, tx, c, 5)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got := 0
			for got < 5 {
				n, err := c.ReadMessages(context.Background(), seamMsgs(8), 0)
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
			if eintr != 0 {
				t.Error("the fake never returned EINTR")
			}
		})
	}
}

// TestContractR9ErrorAfterLeftovers: a call that served datagrams queued in
// the Conn and then met a kernel error returns the datagrams; the next call
// reports the error, once.
func TestContractR9ErrorAfterLeftovers(t *testing.T) {
	c, tx := seamPair(t, true)
	if !tx.GSOEnabled() {
		t.Skip("no GSO: nothing coalesces")
	}
	recvSeamSend(t, tx, c, 14)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.ReadMessages(context.Background(), seamMsgs(3), 0)
	if n != 3 || err != nil || c.rd.q.empty() {
		t.Fatalf("ReadMessages = %d, %v; want 3 and leftovers", n, err)
	}
	fakeRecvmmsg(t, func(recvmmsgFunc, uintptr, []unix.Mmsghdr, int) (int, syscall.Errno) { return 0, unix.ECONNREFUSED })
	if n, err := c.ReadMessages(context.Background(), seamMsgs(64), 0); n != 11 || err != nil {
		t.Fatalf("ReadMessages = %d, %v; want the 11 left over", n, err)
	}
	recvmmsg = func(uintptr, []unix.Mmsghdr, int) (int, syscall.Errno) { return 0, unix.EAGAIN }
	if n, err := c.ReadMessages(context.Background(), seamMsgs(64), 0); n != 0 || !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("next ReadMessages = %d, %v; want ECONNREFUSED", n, err)
	}
	if n, err := c.ReadMessages(context.Background(), seamMsgs(64), unix.MSG_DONTWAIT); n != 0 || !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("then ReadMessages = %d, %v; want ErrWouldBlock", n, err)
	}
}

// TestRecvmmsgGetsAtMostMaxMessages checks what the kernel is handed.
func TestRecvmmsgGetsAtMostMaxMessages(t *testing.T) {
	for _, gro := range []bool{false, true} {
		c, _ := seamPair(t, gro)
		var most int
		fakeRecvmmsg(t, func(_ recvmmsgFunc, _ uintptr, hdrs []unix.Mmsghdr, _ int) (int, syscall.Errno) {
			most = max(most, len(hdrs))
			return 0, unix.EAGAIN
		})
		c.ReadMessages(context.Background(), seamMsgs(1500), unix.MSG_DONTWAIT)
		want := MaxMessages
		if gro {
			want = groSlots
		}
		if most != want {
			t.Errorf("%v: recvmmsg got %d headers, want %d", gro, most, want)
		}
	}
}

// TestContractR5GROSlotGrowthLeavesNothingToAllocate checks R5 across the
// one-time growth of the GRO slots: once plain datagrams have grown them to
// their most, reading allocates nothing, neither the first read through the
// grown slots nor the first read straight into the messages (readDirect),
// which needs an iovec per buffer and per slot. AllocsPerRun's own warm-up
// call would hide a first read's allocation, so every read is counted.
//
// The count is the process's: what the runtime does beside the test (a
// finalizer or cleanup run after a collection, on a loaded machine) lands
// in it too. So the collector is held off while reads are counted, and the
// whole check is made on up to three fresh Conns: an allocation of the read
// path happens on each of them, and fails the test; one from elsewhere
// does not come back three times.
func TestContractR5GROSlotGrowthLeavesNothingToAllocate(t *testing.T) {
	var tries []string
	for range 3 {
		mallocs, reads, direct := groGrowthAllocs(t)
		if mallocs == 0 {
			return
		}
		tries = append(tries, fmt.Sprintf("%d allocations in the %d reads (%d of them straight into the messages)", mallocs, reads, direct))
	}
	t.Errorf("after the slots grew to %d, on each of three Conns: %s", groMaxSlots, strings.Join(tries, "; "))
}

// groGrowthAllocs grows a fresh GRO Conn's slots to their most with plain
// datagrams and counts the allocations of the reads after that.
func groGrowthAllocs(t *testing.T) (mallocs uint64, reads, direct int) {
	t.Helper()
	c, _ := seamPair(t, true)
	tx, err := New(testnet.ListenUDP(t, "udp4"), WithGSO(false)) // plain datagrams: none coalesced
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const n = groMaxSlots
	out := make([]Message, n)
	for i := range out {
		out[i] = Message{Addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), Buffers: [][]byte{make([]byte, 1000)}}
	}
	msgs := seamMsgs(n)
	ctx := context.Background()
	var ms runtime.MemStats
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	grown := false
	for range 6 {
		if k, err := tx.WriteMessages(ctx, out, 0); k != n || err != nil {
			t.Fatalf("WriteMessages = %d, %v", k, err)
		}
		for got := 0; got < n; {
			wasDirect := c.rx.direct && len(c.rx.slotv) == n
			runtime.ReadMemStats(&ms)
			m0 := ms.Mallocs
			k, err := c.ReadMessages(ctx, msgs, 0)
			runtime.ReadMemStats(&ms)
			if err != nil {
				t.Fatalf("ReadMessages: %v", err)
			}
			got += k
			if grown {
				mallocs += ms.Mallocs - m0
				reads++
				if wasDirect {
					direct++
				}
			}
			grown = len(c.rx.slotv) == groMaxSlots
		}
	}
	if !grown {
		t.Fatalf("the slots did not grow to %d (%d): plain datagrams did not fill them", groMaxSlots, len(c.rx.slotv))
	}
	if direct == 0 {
		t.Fatalf("none of the %d reads after the growth read straight into the messages", reads)
	}
	return mallocs, reads, direct
}
