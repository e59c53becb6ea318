//go:build linux

package batchconn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// Tests of the write queue (WithWriteQueue), rules C16–C22.

// queueConn returns a Conn with a write queue of size bytes on a loopback
// socket of network.
func queueConn(t *testing.T, network string, size int, opts ...batchconn.Option) *batchconn.Conn {
	t.Helper()
	return listen(t, network, append([]batchconn.Option{batchconn.WithWriteQueue(size)}, opts...)...)
}

// numbered returns datagram i of a sequence: its number in the first 4
// bytes, then filler.
func numbered(i, size int) []byte { return payload(i, size) }

func seqOf(b []byte) int { return int(binary.BigEndian.Uint32(b)) }

// expectSequence checks that ds are datagrams 0..n-1 of size bytes, in order.
func expectSequence(t *testing.T, what string, ds []testnet.Datagram, n, size int) {
	t.Helper()
	if len(ds) != n {
		t.Fatalf("%s: received %d datagrams, want %d", what, len(ds), n)
	}
	for i, d := range ds {
		if string(d.Payload) != string(numbered(i, size)) {
			t.Fatalf("%s: datagram %d is #%d (%d bytes), want #%d (%d bytes): out of order or changed", what, i, seqOf(d.Payload), len(d.Payload), i, size)
		}
	}
}

// TestContractC16QueueCopiesAndReturns: with a write queue, every
// single-datagram write method returns what the UDPConn's returns for a
// datagram it sent (n, oobn) at once, having copied the datagram: the
// caller's buffer is free again, and what arrives is what was written.
func TestContractC16QueueCopiesAndReturns(t *testing.T) {
	const n, size = 500, 1200
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			if network == "udp6" {
				requireIPv6(t)
			}
			r := receiver(t, network)
			dst := r.Addr()
			ua := net.UDPAddrFromAddrPort(dst)
			tos := tosOOB(0x10)
			if network == "udp6" {
				tos = tclassOOB(0x10)
			}
			methods := []struct {
				name string
				do   func(c *batchconn.Conn, b []byte) (int, int, error)
				oobn int
			}{
				{"WriteTo", func(c *batchconn.Conn, b []byte) (int, int, error) { n, err := c.WriteTo(b, ua); return n, 0, err }, 0},
				{"WriteToUDP", func(c *batchconn.Conn, b []byte) (int, int, error) { n, err := c.WriteToUDP(b, ua); return n, 0, err }, 0},
				{"WriteToUDPAddrPort", func(c *batchconn.Conn, b []byte) (int, int, error) {
					n, err := c.WriteToUDPAddrPort(b, dst)
					return n, 0, err
				}, 0},
				{"WriteMsgUDP", func(c *batchconn.Conn, b []byte) (int, int, error) { return c.WriteMsgUDP(b, tos, ua) }, len(tos)},
				{"WriteMsgUDPAddrPort", func(c *batchconn.Conn, b []byte) (int, int, error) { return c.WriteMsgUDPAddrPort(b, tos, dst) }, len(tos)},
			}
			for _, m := range methods {
				t.Run(m.name, func(t *testing.T) {
					r.Reset()
					c := queueConn(t, network, 64<<10)
					buf := make([]byte, size)
					for i := range n {
						copy(buf, numbered(i, size))
						gn, goobn, err := m.do(c, buf)
						if gn != size || goobn != m.oobn || err != nil {
							t.Fatalf("write %d = %d, %d, %v; want %d, %d, nil", i, gn, goobn, err, size, m.oobn)
						}
						clear(buf) // the queue holds its own copy
					}
					if err := c.Flush(context.Background()); err != nil {
						t.Fatal(err)
					}
					expectSequence(t, m.name, r.Collect(n, recvWait), n, size)
					if s := c.Stats(); s.QueueWrites != n || s.Messages != n {
						t.Errorf("Stats: QueueWrites %d, Messages %d; want %d each", s.QueueWrites, s.Messages, n)
					}
				})
			}
		})
	}
	t.Run("Write on a connected socket", func(t *testing.T) {
		r := receiver(t, "udp4")
		u, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := batchconn.New(u, batchconn.WithWriteQueue(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range n {
			if k, err := c.Write(numbered(i, size)); k != size || err != nil {
				t.Fatalf("Write %d = %d, %v", i, k, err)
			}
		}
		if err := c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		expectSequence(t, "Write", r.Collect(n, recvWait), n, size)
	})
}

func requireIPv6(t *testing.T) {
	t.Helper()
	u, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	u.Close()
}

// TestContractC17RefusedBeforeQueueing: what the UDPConn refuses without
// sending, or decides in its own way, a queue write refuses or decides the
// same way, with the same n, oobn and error shape; what it sends, a queue
// write takes, with the UDPConn's n and oobn.
func TestContractC17RefusedBeforeQueueing(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			if network != "udp4" {
				requireIPv6(t)
			}
			calls := singleWrites(t, network)
			ref := testnet.ListenUDP(t, network)
			c := queueConn(t, network, 64<<10)
			for _, call := range calls {
				wn, woobn, want := call.do(ref)
				gn, goobn, got := call.do(c)
				sameResult(t, call.name, c, ref, gn, goobn, got, wn, woobn, want)
			}
			if err := c.Flush(context.Background()); err != nil {
				t.Errorf("Flush after the writes the UDPConn sent: %v", err)
			}
			for _, when := range []string{"a write deadline that has passed", "a closed socket"} {
				if when == "a closed socket" {
					ref.Close()
					c.Close()
				} else {
					past := time.Now().Add(-time.Second)
					ref.SetWriteDeadline(past)
					c.SetWriteDeadline(past)
				}
				for _, call := range calls {
					wn, woobn, want := call.do(ref)
					gn, goobn, got := call.do(c)
					sameResult(t, call.name+" with "+when, c, ref, gn, goobn, got, wn, woobn, want)
				}
			}
		})
	}
}

// stalledQueue is a Conn with a small write queue on a veth link that does
// not drain, its socket buffer full and its queue full.
func stalledQueue(t *testing.T, queue int) *stalledLink {
	t.Helper()
	p := testnet.NewPair(t, testnet.LinkConfig{Rate: "8bit", Burst: "1600", Limit: "1mb"})
	udp := p.A.ListenUDP(t, "udp4", 0)
	if err := udp.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c, err := batchconn.New(udp, batchconn.WithWriteQueue(queue))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &stalledLink{pair: p, c: c, r: testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))}
	s.fill(t)
	s.filled = c.Stats().Messages
	// Fill the queue: its goroutine waits for room in the socket, so the
	// queue keeps what it is given until a write finds no room.
	c.SetBlocking(false)
	defer c.SetBlocking(true)
	for i := 0; ; i++ {
		_, err := c.WriteToUDPAddrPort(numbered(i, 1200), s.r.Addr())
		if errors.Is(err, batchconn.ErrWouldBlock) {
			return s
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > queue {
			t.Fatal("the queue never filled")
		}
	}
}

// TestContractC18FullQueue: a write that finds the queue full waits for
// room, until the write deadline or Close ends the wait; a non-blocking one
// (SetBlocking(false)) returns ErrWouldBlock at once.
func TestContractC18FullQueue(t *testing.T) {
	t.Run("non-blocking: ErrWouldBlock at once", func(t *testing.T) {
		s := stalledQueue(t, 8<<10)
		s.c.SetBlocking(false)
		done := make(chan error, 1)
		go func() {
			_, err := s.c.WriteToUDPAddrPort(numbered(0, 1200), s.r.Addr())
			done <- err
		}()
		after(t, 10*time.Second, func() { s.lift(t) }) // a guard: a write that waited would end then
		err := <-done
		var oe *net.OpError
		if !errors.Is(err, batchconn.ErrWouldBlock) || !errors.Is(err, syscall.EAGAIN) || !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("write to a full queue = %v, want a *net.OpError with ErrWouldBlock", err)
		}
		if s.c.Stats().QueueWaits != 0 {
			t.Fatal("a non-blocking write waited for room")
		}
	})
	for _, tt := range []struct {
		name string
		end  func(s *stalledLink)
		want error
	}{
		{"the write deadline ends the wait", func(s *stalledLink) { s.c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)) }, os.ErrDeadlineExceeded},
		{"Close ends the wait", func(s *stalledLink) { after(t, 50*time.Millisecond, func() { s.c.Close() }) }, net.ErrClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := stalledQueue(t, 8<<10)
			tt.end(s)
			_, err := s.c.WriteToUDPAddrPort(numbered(0, 1200), s.r.Addr())
			if !errors.Is(err, tt.want) {
				t.Fatalf("write to a full queue = %v, want %v", err, tt.want)
			}
			if s.c.Stats().QueueWaits == 0 {
				t.Error("Stats.QueueWaits = 0: the write did not wait")
			}
		})
	}
	t.Run("room comes when the link drains", func(t *testing.T) {
		s := stalledQueue(t, 8<<10)
		after(t, 50*time.Millisecond, func() { s.lift(t) })
		if _, err := s.c.WriteToUDPAddrPort(numbered(0, 1200), s.r.Addr()); err != nil {
			t.Fatalf("write to a full queue, then the link drains: %v", err)
		}
		if err := s.c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestContractC19FailureChargedAlone: a queued datagram the kernel refuses
// after its write returned is charged to it alone: counted by cause, the
// first one returned by Flush with its destination, each one told to the
// error function; the datagrams around it are sent.
func TestContractC19FailureChargedAlone(t *testing.T) {
	const n = 100
	r := receiver(t, "udp4")
	// A broadcast without SO_BROADCAST (which the net package turns on):
	// the kernel refuses it with EACCES.
	bad := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 9)
	noBroadcast := func(c *batchconn.Conn) {
		rc, _ := c.SyscallConn()
		rc.Control(func(fd uintptr) {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry %v", retry), func(t *testing.T) {
			r.Reset()
			var mu sync.Mutex
			var told []netip.AddrPort
			var toldSeq []int
			c := queueConn(t, "udp4", 16<<10, batchconn.WithWriteQueueErrors(func(m batchconn.Message, err error) bool {
				mu.Lock()
				defer mu.Unlock()
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Addr.String() != bad.String() || !errors.Is(err, syscall.EACCES) {
					t.Errorf("told %v, want a *net.OpError for %v with EACCES", err, bad)
				}
				told = append(told, m.Addr)
				toldSeq = append(toldSeq, seqOf(m.Buffers[0]))
				return retry
			}))
			noBroadcast(c)
			for i := range n {
				if _, err := c.WriteToUDPAddrPort(numbered(i, 1000), r.Addr()); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WriteToUDPAddrPort(numbered(i, 1000), bad); err != nil {
					t.Fatal(err)
				}
			}
			err := c.Flush(context.Background())
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "write" || oe.Addr.String() != bad.String() || !errors.Is(err, syscall.EACCES) {
				t.Fatalf("Flush = %v, want the first failure: a *net.OpError for %v with EACCES", err, bad)
			}
			if err := c.Flush(context.Background()); err != nil {
				t.Fatalf("a second Flush = %v, want nil: the failure was reported", err)
			}
			expectSequence(t, "the good destination", r.Collect(n, recvWait), n, 1000)
			s := c.Stats()
			if s.QueueFailures.Denied != n || s.QueueFailures.Total() != n {
				t.Errorf("QueueFailures %+v, want %d Denied and nothing else", s.QueueFailures, n)
			}
			want := n
			if retry {
				want = 2 * n
			}
			mu.Lock()
			defer mu.Unlock()
			if len(told) != want {
				t.Fatalf("the error function was told %d times, want %d", len(told), want)
			}
			for i, a := range told {
				k := i
				if retry {
					k = i / 2
				}
				if a != bad || toldSeq[i] != k {
					t.Fatalf("told #%d: datagram %d to %v; want %d to %v", i, toldSeq[i], a, k, bad)
				}
			}
		})
	}
	t.Run("a path MTU smaller than the datagram", func(t *testing.T) {
		p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1280})
		u := p.A.ListenUDP(t, "udp4", 0)
		rc, _ := u.SyscallConn()
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		})
		c, err := batchconn.New(u, batchconn.WithWriteQueue(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))
		for i := range 20 {
			size := 1000
			if i%2 == 1 {
				size = 1400 // over the MTU, and IP_PMTUDISC_DO: EMSGSIZE
			}
			if _, err := c.WriteToUDPAddrPort(numbered(i, size), r.Addr()); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		if err := c.Flush(context.Background()); !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("Flush = %v, want EMSGSIZE", err)
		}
		if got := c.Stats().QueueFailures; got.MessageSize != 10 || got.Total() != 10 {
			t.Errorf("QueueFailures %+v, want 10 MessageSize", got)
		}
		got := r.Collect(10, recvWait)
		if len(got) != 10 {
			t.Fatalf("received %d, want the 10 that fit", len(got))
		}
		for k, d := range got {
			if seqOf(d.Payload) != 2*k {
				t.Fatalf("received #%d in place %d, want #%d", seqOf(d.Payload), k, 2*k)
			}
		}
	})
}

// TestContractC20OrderPerDestination: datagrams to one destination leave in
// the order they were written, through the queue, WriteMessages and
// WriteBuffersTo alike; within a batch the queue groups each destination's
// datagrams, so that a writer that sends packet k to every subscriber, then
// packet k+1, gets GSO runs.
func TestContractC20OrderPerDestination(t *testing.T) {
	t.Run("across the queue, WriteMessages and WriteBuffersTo", func(t *testing.T) {
		const dests, n = 3, 300
		var rs []*testnet.Receiver
		for range dests {
			rs = append(rs, receiver(t, "udp4"))
		}
		c := queueConn(t, "udp4", 8<<10)
		next := make([]int, dests)
		for k := range n * dests {
			d := k % dests
			dst := rs[d].Addr()
			i := next[d]
			var err error
			switch k % 5 {
			case 0, 1, 2:
				_, err = c.WriteToUDPAddrPort(numbered(i, 700), dst)
				next[d]++
			case 3:
				var sent int
				sent, err = c.WriteMessages(context.Background(), []batchconn.Message{
					{Addr: dst, Buffers: [][]byte{numbered(i, 700)}},
					{Addr: dst, Buffers: [][]byte{numbered(i+1, 700)}},
				}, 0)
				if sent != 2 && err == nil {
					err = fmt.Errorf("WriteMessages sent %d of 2", sent)
				}
				next[d] += 2
			case 4:
				var sent int
				sent, err = c.WriteBuffersTo(context.Background(), [][]byte{numbered(i, 700)}, nil, dst, 0)
				if sent != 1 && err == nil {
					err = errors.New("WriteBuffersTo sent nothing")
				}
				next[d]++
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for d, r := range rs {
			expectSequence(t, fmt.Sprintf("destination %d", d), r.Collect(next[d], recvWait), next[d], 700)
		}
	})
	t.Run("a batch groups each destination's datagrams", func(t *testing.T) {
		const dests, packets = 20, 10
		var rs []*testnet.Receiver
		for range dests {
			rs = append(rs, receiver(t, "udp4"))
		}
		c := queueConn(t, "udp4", 1<<20)
		if !c.GSOEnabled() {
			t.Skipf("no GSO here: %s", c.Stats().GSOOff)
		}
		// The writes queue while a send is in flight (the gate held), so
		// they leave in one batch.
		c.HoldGate()
		for k := range packets {
			for _, r := range rs {
				if _, err := c.WriteToUDPAddrPort(numbered(k, 1200), r.Addr()); err != nil {
					t.Fatal(err)
				}
			}
		}
		c.ReleaseGate()
		if err := c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for d, r := range rs {
			expectSequence(t, fmt.Sprintf("destination %d", d), r.Collect(packets, recvWait), packets, 1200)
		}
		if s := c.Stats(); s.GSOBatches != dests || s.Syscalls != 1 {
			t.Errorf("GSOBatches %d, Syscalls %d; want one sendmmsg of %d GSO runs, one per destination", s.GSOBatches, s.Syscalls, dests)
		}
	})
}

// TestContractC21FlushAndClose: Flush returns once what was written has
// reached the kernel; Close sends what is queued, for at most 100 ms, then
// drops and counts the rest.
func TestContractC21FlushAndClose(t *testing.T) {
	t.Run("Flush", func(t *testing.T) {
		r := receiver(t, "udp4")
		c := queueConn(t, "udp4", 1<<20)
		c.HoldGate() // nothing leaves until Flush sends it
		for i := range 200 {
			c.WriteToUDPAddrPort(numbered(i, 500), r.Addr())
		}
		go func() {
			time.Sleep(10 * time.Millisecond)
			c.ReleaseGate()
		}()
		if err := c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Messages != 200 {
			t.Fatalf("Flush returned with %d of 200 datagrams sent", s.Messages)
		}
		expectSequence(t, "after Flush", r.Collect(200, recvWait), 200, 500)
	})
	t.Run("Flush's context ends its wait", func(t *testing.T) {
		c := queueConn(t, "udp4", 1<<20)
		c.HoldGate()
		defer c.ReleaseGate()
		c.WriteToUDPAddrPort(numbered(0, 500), addrOf(listen(t, "udp4")))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := c.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Flush = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		c := queueConn(t, "udp4", 1<<10)
		//lint:ignore SA1012 a nil Context is the bad input under test
		if err := c.Flush(nil); err == nil {
			t.Fatal("Flush(nil) = nil, want an error")
		}
		plain := listen(t, "udp4")
		if err := plain.Flush(context.Background()); err != nil {
			t.Fatalf("Flush without a queue = %v, want nil", err)
		}
		plain.Close()
		if err := plain.Flush(context.Background()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Flush of a closed Conn = %v, want net.ErrClosed", err)
		}
	})
	t.Run("Close sends what is queued", func(t *testing.T) {
		r := receiver(t, "udp4")
		c := queueConn(t, "udp4", 1<<20)
		for i := range 300 {
			c.WriteToUDPAddrPort(numbered(i, 1000), r.Addr())
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		expectSequence(t, "after Close", r.Collect(300, recvWait), 300, 1000)
		if _, err := c.WriteToUDPAddrPort(numbered(0, 10), r.Addr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after Close = %v, want net.ErrClosed", err)
		}
	})
	t.Run("Close gives up on a link that does not drain, and counts what it drops", func(t *testing.T) {
		s := stalledQueue(t, 32<<10)
		queued := s.c.Stats().QueueWrites
		if err := s.c.Close(); err != nil {
			t.Fatal(err)
		}
		st := s.c.Stats()
		if st.QueueFailures.Closed+st.Messages-s.filled != queued || st.QueueFailures.Closed == 0 {
			t.Fatalf("%d queued; after Close %d sent and %d counted as dropped (Closed)", queued, st.Messages-s.filled, st.QueueFailures.Closed)
		}
	})
}

// TestContractC22NoAllocation: a queue write allocates nothing in steady
// state, and the queue's memory is what the option says.
func TestContractC22NoAllocation(t *testing.T) {
	// A destination nobody reads: a reader's allocations would be counted.
	dst := testnet.ListenUDP(t, "udp4").LocalAddr().(*net.UDPAddr).AddrPort()
	ua := net.UDPAddrFromAddrPort(dst)
	tos := tosOOB(0x10)
	b := numbered(0, 1200)
	c := queueConn(t, "udp4", 256<<10)
	for name, write := range map[string]func(){
		"WriteTo":             func() { c.WriteTo(b, ua) },
		"WriteToUDP":          func() { c.WriteToUDP(b, ua) },
		"WriteToUDPAddrPort":  func() { c.WriteToUDPAddrPort(b, dst) },
		"WriteMsgUDP":         func() { c.WriteMsgUDP(b, tos, ua) },
		"WriteMsgUDPAddrPort": func() { c.WriteMsgUDPAddrPort(b, tos, dst) },
	} {
		for range 2000 { // warm up: the queue's scratch, the goroutine
			write()
		}
		if a := testing.AllocsPerRun(2000, write); a != 0 {
			t.Errorf("%s through the queue: %v allocations per write, want 0", name, a)
		}
	}
}

// TestWriteQueueBadInput: a bad size is refused by New with a clear error.
func TestWriteQueueBadInput(t *testing.T) {
	for _, size := range []int{-1, 1<<30 + 1, -1 << 40} {
		u := testnet.ListenUDP(t, "udp4")
		c, err := batchconn.New(u, batchconn.WithWriteQueue(size))
		if err == nil || c != nil {
			t.Errorf("New with WithWriteQueue(%d) = %v, %v; want an error", size, c, err)
		}
	}
	// A nil error function is no error function; a queue smaller than a
	// datagram sends it directly.
	r := receiver(t, "udp4")
	c := queueConn(t, "udp4", 1, batchconn.WithWriteQueueErrors(nil))
	if n, err := c.WriteToUDPAddrPort(numbered(0, 1200), r.Addr()); n != 1200 || err != nil {
		t.Fatalf("write through a 1-byte queue = %d, %v", n, err)
	}
	expectSequence(t, "1-byte queue", r.Collect(1, recvWait), 1, 1200)
}

// TestWriteQueueConcurrent races writers, WriteMessages, Flush and Close:
// every datagram written is received or counted, none twice.
func TestWriteQueueConcurrent(t *testing.T) {
	r := receiver(t, "udp4")
	c := queueConn(t, "udp4", 16<<10)
	var wrote, refused atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch g % 4 {
				case 0:
					_, err = c.WriteToUDPAddrPort(numbered(i, 300), r.Addr())
				case 1:
					_, err = c.WriteTo(numbered(i, 300), net.UDPAddrFromAddrPort(r.Addr()))
				case 2:
					_, err = c.WriteMessages(context.Background(), messages(r.Addr(), 1, 300), 0)
				case 3:
					_, err = c.WriteToUDPAddrPort(numbered(i, 300), r.Addr())
					if i%50 == 0 {
						c.Flush(context.Background())
					}
				}
				wrote.Add(1)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("write: %v", err)
					}
					refused.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	c.Close()
	close(stop)
	wg.Wait()
	s := c.Stats()
	accepted := uint64(wrote.Load() - refused.Load())
	if s.Messages+s.QueueFailures.Total() != accepted {
		t.Fatalf("%d writes accepted; %d sent and %d failed (%+v)", accepted, s.Messages, s.QueueFailures.Total(), s.QueueFailures)
	}
	if got := len(r.Quiet(100 * time.Millisecond)); uint64(got) > s.Messages {
		t.Fatalf("received %d, more than the %d sent", got, s.Messages)
	}
}

// TestContractC19CallersGSOBufferAfterEIO: a caller's GSO buffer (its own
// UDP_SEGMENT) that the kernel fails with EIO after its write returned is
// not lost: it goes out as separate datagrams, and so do later ones, and
// GSO goes off for the Conn (C14).
// loopback4 is 127.0.0.1.
var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

func TestContractC19CallersGSOBufferAfterEIO(t *testing.T) {
	rx := testnet.ListenUDPLite(t, loopback4)
	c, err := batchconn.New(testnet.ListenUDPLite(t, loopback4), batchconn.WithWriteQueue(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	const seg, segs = 100, 10
	gso := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafePointer(gso))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(gso[unix.CmsgLen(0):], seg)
	for k := range 2 {
		buf := make([]byte, 0, seg*segs)
		for i := range segs {
			buf = append(buf, numbered(k*segs+i, seg)...)
		}
		if n, oobn, err := c.WriteMsgUDPAddrPort(buf, gso, dst); n != len(buf) || oobn != len(gso) || err != nil {
			t.Fatalf("GSO buffer %d: %d, %d, %v", k, n, oobn, err)
		}
		if err := c.Flush(context.Background()); err != nil {
			t.Fatalf("Flush after GSO buffer %d: %v", k, err)
		}
	}
	rx.SetReadDeadline(time.Now().Add(recvWait))
	b := make([]byte, 2000)
	for i := range 2 * segs {
		n, err := rx.Read(b)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if string(b[:n]) != string(numbered(i, seg)) {
			t.Fatalf("datagram %d: got #%d, %d bytes", i, seqOf(b[:n]), n)
		}
	}
	s := c.Stats()
	if s.QueueGSOSplits != 2 || s.QueueFailures.Total() != 0 || c.GSOEnabled() {
		t.Errorf("QueueGSOSplits %d, failures %+v, GSOEnabled %v; want 2 splits, none failed, GSO off", s.QueueGSOSplits, s.QueueFailures, c.GSOEnabled())
	}
	// A buffer of one segment carries UDP_SEGMENT too (quic-go writes such
	// ones), and the kernel refuses it with EIO just the same.
	c2, err := batchconn.New(testnet.ListenUDPLite(t, loopback4), batchconn.WithWriteQueue(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, _, err := c2.WriteMsgUDPAddrPort(numbered(0, seg/2), gso, dst); err != nil {
		t.Fatal(err)
	}
	if err := c2.Flush(context.Background()); err != nil {
		t.Fatalf("Flush after a one-segment GSO buffer: %v", err)
	}
	if n, err := rx.Read(b); err != nil || string(b[:n]) != string(numbered(0, seg/2)) {
		t.Fatalf("the one-segment buffer: %q, %v", b[:max(n, 0)], err)
	}
}
