//go:build linux

package batchconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// A stalledLink is a sender on one veth test host whose link to the other
// is throttled to 8 bit/s with a deep queue: datagrams stay queued, charged to
// the sender's small send buffer, so the socket really fills and the kernel
// really returns EAGAIN. Lifting the throttle drains it.
type stalledLink struct {
	pair   *testnet.Pair
	c      *batchconn.Conn
	r      *testnet.Receiver
	filled uint64 // datagrams the Conn had sent when its socket was full
}

func newStalledLink(t *testing.T) *stalledLink {
	t.Helper()
	p := testnet.NewPair(t, testnet.LinkConfig{Rate: "8bit", Burst: "1600", Limit: "1mb"})
	udp := p.A.ListenUDP(t, "udp4", 0)
	if err := udp.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c, err := batchconn.New(udp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &stalledLink{pair: p, c: c, r: testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))}
}

func (s *stalledLink) msgs(n int) []batchconn.Message { return messages(s.r.Addr(), n, 1200) }

// fill sends until the socket is full and returns how many it took.
func (s *stalledLink) fill(t *testing.T) int {
	t.Helper()
	s.c.SetBlocking(false)
	defer s.c.SetBlocking(true)
	sent := 0
	for range 10000 {
		n, err := s.c.WriteMessages(context.Background(), s.msgs(8), 0)
		if errors.Is(err, batchconn.ErrWouldBlock) {
			return sent
		}
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	t.Fatal("the send buffer never filled")
	return 0
}

// lift raises the throttle so that queued datagrams drain (removing the
// qdisc would drop them).
func (s *stalledLink) lift(t *testing.T) { s.pair.SetRate(t, "10gbit") }

// after runs f once d has passed, and waits for it at the end of the test.
func after(t *testing.T, d time.Duration, f func()) {
	done := make(chan struct{})
	timer := time.AfterFunc(d, func() { defer close(done); f() })
	t.Cleanup(func() {
		if timer.Stop() {
			close(done)
		}
		<-done
	})
}

// waitEnders are what may end a wait for socket space (C4, C5b), each with
// the error a call that sent nothing reports.
var waitEnders = []struct {
	name string
	arm  func(t *testing.T, s *stalledLink) context.Context
	want error
}{
	{"cancelling the context", func(t *testing.T, s *stalledLink) context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		after(t, 50*time.Millisecond, cancel)
		return ctx
	}, context.Canceled},
	{"the context's deadline", func(t *testing.T, s *stalledLink) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}, context.DeadlineExceeded},
	{"the write deadline", func(t *testing.T, s *stalledLink) context.Context {
		s.c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		return context.Background()
	}, os.ErrDeadlineExceeded},
	{"Close", func(t *testing.T, s *stalledLink) context.Context {
		after(t, 50*time.Millisecond, func() { s.c.Close() })
		return context.Background()
	}, net.ErrClosed},
}

func TestContractC4BlockingWaits(t *testing.T) {
	t.Run("a full socket makes the call wait, then everything is sent", func(t *testing.T) {
		s := newStalledLink(t)
		queued := s.fill(t)
		before := s.c.Stats().Syscalls
		after(t, 50*time.Millisecond, func() { s.lift(t) })
		msgs := s.msgs(100)
		n, err := s.c.WriteMessages(context.Background(), msgs, 0)
		if n != len(msgs) || err != nil {
			t.Fatalf("WriteMessages = %d, %v; want %d, nil", n, err, len(msgs))
		}
		if calls := s.c.Stats().Syscalls - before; calls < 2 {
			t.Errorf("%d system calls: the call never met a full socket", calls)
		}
		if !s.r.Wait(queued+len(msgs), 10*time.Second) {
			t.Errorf("%d datagrams arrived, want %d", s.r.Count(), queued+len(msgs))
		}
	})
	for _, tt := range waitEnders {
		t.Run(tt.name+" ends a wait with nothing sent: the error", func(t *testing.T) {
			s := newStalledLink(t)
			s.fill(t)
			n, err := s.c.WriteMessages(tt.arm(t, s), s.msgs(10), 0)
			if n != 0 || !errors.Is(err, tt.want) {
				t.Fatalf("WriteMessages = %d, %v; want 0, %v", n, err, tt.want)
			}
		})
		t.Run(tt.name+" ends a wait after progress: the count", func(t *testing.T) {
			s := newStalledLink(t)
			msgs := s.msgs(500)
			n, err := s.c.WriteMessages(tt.arm(t, s), msgs, 0)
			if n < 1 || n >= len(msgs) || err != nil {
				t.Fatalf("WriteMessages = %d, %v; want 0 < n < %d and no error", n, err, len(msgs))
			}
		})
	}
	t.Run("a write deadline that has passed fails at once", func(t *testing.T) {
		c := listen(t, "udp4")
		c.SetWriteDeadline(time.Now().Add(-time.Second))
		n, err := c.WriteMessages(context.Background(), messages(sink(t), 3, 10), 0)
		if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteMessages = %d, %v; want 0, os.ErrDeadlineExceeded", n, err)
		}
	})
	t.Run("a cancelled wait leaves no deadline behind", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		ctx, cancel := context.WithCancel(context.Background())
		after(t, 20*time.Millisecond, cancel)
		if _, err := s.c.WriteMessages(ctx, s.msgs(1), 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("first call: %v, want context.Canceled", err)
		}
		after(t, 20*time.Millisecond, func() { s.lift(t) })
		if n, err := s.c.WriteMessages(context.Background(), s.msgs(3), 0); n != 3 || err != nil {
			t.Fatalf("next call = %d, %v; want 3, nil (a past deadline was left set)", n, err)
		}
	})
	t.Run("a cancelled wait restores the user's write deadline", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		s.c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		ctx, cancel := context.WithCancel(context.Background())
		after(t, 20*time.Millisecond, cancel)
		if _, err := s.c.WriteMessages(ctx, s.msgs(1), 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("first call: %v, want context.Canceled", err)
		}
		// With the deadline lost this call would wait forever.
		if _, err := s.c.WriteMessages(context.Background(), s.msgs(1), 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("next call: %v, want os.ErrDeadlineExceeded from the user's deadline", err)
		}
	})
	t.Run("a writer queued behind a waiting one can be cancelled", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		first := make(chan error, 1)
		go func() {
			_, err := s.c.WriteMessages(context.Background(), s.msgs(1), 0)
			first <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if n, err := s.c.WriteMessages(ctx, s.msgs(1), 0); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("queued writer = %d, %v; want 0, context.DeadlineExceeded", n, err)
		}
		s.c.Close()
		if err := <-first; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("waiting writer after Close: %v, want net.ErrClosed", err)
		}
	})
}

func TestContractC5NonBlocking(t *testing.T) {
	t.Run("a full socket gives ErrWouldBlock, which is also EAGAIN", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		s.c.SetBlocking(false)
		n, err := s.c.WriteMessages(context.Background(), s.msgs(4), 0)
		if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) || !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("WriteMessages = %d, %v; want 0, ErrWouldBlock", n, err)
		}
	})
	t.Run("MSG_DONTWAIT makes one call on a blocking conn not wait", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		n, err := s.c.WriteMessages(context.Background(), s.msgs(4), unix.MSG_DONTWAIT)
		if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) {
			t.Fatalf("WriteMessages = %d, %v; want 0, ErrWouldBlock", n, err)
		}
		if !s.c.Blocking() {
			t.Error("MSG_DONTWAIT changed the conn's mode")
		}
	})
	t.Run("it sends what fits and returns the count", func(t *testing.T) {
		s := newStalledLink(t)
		s.c.SetBlocking(false)
		msgs := s.msgs(300)
		n, err := s.c.WriteMessages(context.Background(), msgs, 0)
		if n < 1 || n >= len(msgs) || err != nil {
			t.Fatalf("WriteMessages = %d, %v; want 0 < n < %d and no error", n, err, len(msgs))
		}
		if _, err := s.c.WriteMessages(context.Background(), msgs[n:], 0); !errors.Is(err, batchconn.ErrWouldBlock) {
			t.Fatalf("the rest: %v, want ErrWouldBlock", err)
		}
	})
}

// newStalledConnected is a stalledLink whose Conn is connected to the
// receiver, for Write.
func newStalledConnected(t *testing.T) *stalledLink {
	t.Helper()
	p := testnet.NewPair(t, testnet.LinkConfig{Rate: "8bit", Burst: "1600", Limit: "1mb"})
	r := testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))
	var udp *net.UDPConn
	if err := p.A.Run(func() (err error) {
		udp, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.Addr()))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := udp.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c, err := batchconn.New(udp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &stalledLink{pair: p, c: c, r: r}
}

// inIOWait reports whether a goroutine whose stack holds fn waits in the
// poller ("IO wait"): a writer blocked inside a *net.UDPConn method, which
// the Conn cannot otherwise see.
func inIOWait(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("[IO wait")) && bytes.Contains(g, []byte(fn)) {
			return true
		}
	}
	return false
}

// A blockedWriter is a way for a writer to end up waiting for room on a
// full socket while it holds the write gate: start starts it, and waiting
// reports once it waits.
type blockedWriter struct {
	name      string
	connected bool
	start     func(s *stalledLink, done chan<- error)
	waiting   func(s *stalledLink) bool
	skip      func() string // why this kernel cannot make such a writer; "" when it can
}

func parked(s *stalledLink) bool { return s.c.WriterParked() }

func blockedWriters() []blockedWriter {
	dgram := payload(0, 1200)
	in := func(fn string) func(*stalledLink) bool {
		return func(*stalledLink) bool { return inIOWait("batchconn.(*Conn)." + fn) }
	}
	// Trailing bytes after the last control message: the kernel ignores
	// them and sends, so group commit hands such a datagram to the
	// UDPConn's own method (a "direct" write).
	leftover := append(unix.PktInfo4(&unix.Inet4Pktinfo{}), 0, 0, 0)
	return []blockedWriter{
		{name: "WriteMessages", waiting: parked, start: func(s *stalledLink, done chan<- error) {
			_, err := s.c.WriteMessages(context.Background(), s.msgs(64), 0)
			done <- err
		}},
		{name: "WaitWritable", waiting: parked, start: func(s *stalledLink, done chan<- error) {
			done <- s.c.WaitWritable(context.Background())
		}},
		{name: "WriteTo", waiting: in("WriteTo"), start: func(s *stalledLink, done chan<- error) {
			_, err := s.c.WriteTo(dgram, net.UDPAddrFromAddrPort(s.r.Addr()))
			done <- err
		}},
		{name: "WriteToUDP", waiting: in("WriteToUDP"), start: func(s *stalledLink, done chan<- error) {
			_, err := s.c.WriteToUDP(dgram, net.UDPAddrFromAddrPort(s.r.Addr()))
			done <- err
		}},
		{name: "WriteToUDPAddrPort", waiting: in("WriteToUDPAddrPort"), start: func(s *stalledLink, done chan<- error) {
			_, err := s.c.WriteToUDPAddrPort(dgram, s.r.Addr())
			done <- err
		}},
		{name: "WriteMsgUDP", waiting: in("WriteMsgUDP"), start: func(s *stalledLink, done chan<- error) {
			_, _, err := s.c.WriteMsgUDP(dgram, nil, net.UDPAddrFromAddrPort(s.r.Addr()))
			done <- err
		}},
		{name: "WriteMsgUDPAddrPort", waiting: in("WriteMsgUDPAddrPort"), start: func(s *stalledLink, done chan<- error) {
			_, _, err := s.c.WriteMsgUDPAddrPort(dgram, nil, s.r.Addr())
			done <- err
		}},
		{name: "Write", connected: true, waiting: in("Write"), start: func(s *stalledLink, done chan<- error) {
			_, err := s.c.Write(dgram)
			done <- err
		}},
		{name: "a group-commit leader's batch", waiting: parked, start: func(s *stalledLink, done chan<- error) {
			done <- leadQueued(s, func() error {
				_, err := s.c.WriteToUDPAddrPort(dgram, s.r.Addr())
				return err
			})
		}},
		{name: "a group-commit leader's direct write", waiting: in("writeDirect"), skip: func() string {
			// A 32-bit process's control data goes through the kernel's
			// compat layer, which refuses trailing bytes (EINVAL) where
			// the native one passes over them and sends.
			u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return err.Error()
			}
			defer u.Close()
			if _, _, err := u.WriteMsgUDPAddrPort(dgram, leftover, u.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				return fmt.Sprintf("this kernel refuses control data with bytes left over (%v), so no direct write waits for room", err)
			}
			return ""
		}, start: func(s *stalledLink, done chan<- error) {
			done <- leadQueued(s, func() error {
				_, _, err := s.c.WriteMsgUDPAddrPort(dgram, leftover, s.r.Addr())
				return err
			})
		}},
	}
}

// leadQueued queues two single-datagram writers behind a held gate and
// releases it, so that the first becomes a group-commit leader that sends
// both; it returns the first error, once both have returned.
func leadQueued(s *stalledLink, write func() error) error {
	s.c.HoldGate()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- write() }()
	}
	for s.c.QueuedWriters() < 2 {
		time.Sleep(time.Millisecond)
	}
	s.c.ReleaseGate()
	return errors.Join(<-errs, <-errs)
}

// TestContractC5NonBlockingBesideABlockedWriter: a non-blocking call never
// waits, not even on the write gate behind a writer that waits in the
// poller for room on a choked link (one that, here, never drains until the
// test lifts its throttle), whichever method that writer called: the
// single-datagram methods wait inside the *net.UDPConn's own, where the
// gate cannot see them park. Every non-blocking call must return, with
// ErrWouldBlock, while the blocked writer is still waiting; before the fix
// they queued on the gate until the throttle was lifted (behind
// WriteMessages, before an earlier fix), or yielded in a loop, burning a
// CPU, until it was (behind the others).
func TestContractC5NonBlockingBesideABlockedWriter(t *testing.T) {
	for _, bw := range blockedWriters() {
		t.Run("behind "+bw.name, func(t *testing.T) {
			if bw.skip != nil {
				if why := bw.skip(); why != "" {
					t.Skip(why)
				}
			}
			s := newStalledLink(t)
			if bw.connected {
				s = newStalledConnected(t)
			}
			s.fill(t)
			blocked := make(chan error, 1)
			go bw.start(s, blocked)
			for !bw.waiting(s) {
				select {
				case err := <-blocked:
					t.Fatalf("the blocking writer returned (%v) on a link that does not drain", err)
				case <-time.After(time.Millisecond):
				}
			}
			dst := s.r.Addr()
			if bw.connected {
				dst = netip.AddrPort{}
			}
			nonBlocking := make(chan error, 1)
			go func() {
				bufs := [][]byte{payload(1, 1200), payload(2, 1200)}
				calls := []struct {
					name string
					call func() (int, error)
				}{
					{"WriteMessages with MSG_DONTWAIT", func() (int, error) {
						return s.c.WriteMessages(context.Background(), messages(dst, 4, 1200), unix.MSG_DONTWAIT)
					}},
					{"WriteBuffersTo with MSG_DONTWAIT", func() (int, error) {
						return s.c.WriteBuffersTo(context.Background(), bufs, nil, dst, unix.MSG_DONTWAIT)
					}},
					{"WriteMessages after SetBlocking(false)", func() (int, error) {
						s.c.SetBlocking(false)
						defer s.c.SetBlocking(true)
						return s.c.WriteMessages(context.Background(), messages(dst, 4, 1200), 0)
					}},
				}
				start := time.Now()
				for _, c := range calls {
					for range 5 {
						n, err := c.call()
						if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) || !errors.Is(err, syscall.EAGAIN) {
							nonBlocking <- fmt.Errorf("%s = %d, %v; want 0, ErrWouldBlock", c.name, n, err)
							return
						}
					}
				}
				t.Logf("%d non-blocking calls returned ErrWouldBlock in %v", 5*len(calls), time.Since(start))
				nonBlocking <- nil
			}()
			// A guard, not a measurement: if the calls hang behind the
			// blocked writer, lifting the throttle lets both finish, and
			// the order shows it.
			after(t, 10*time.Second, func() { s.lift(t) })
			select {
			case err := <-nonBlocking:
				if err != nil {
					t.Fatal(err)
				}
			case err := <-blocked:
				t.Fatalf("the blocked writer returned (%v) before the non-blocking calls did: they waited behind it", err)
			}
			select {
			case err := <-blocked:
				t.Fatalf("the blocking writer returned (%v) on a link that does not drain", err)
			default:
			}
			s.lift(t)
			if err := <-blocked; err != nil {
				t.Fatalf("the blocking writer, once the link drains: %v", err)
			}
		})
	}
}

func TestContractC5bWaitWritable(t *testing.T) {
	t.Run("a socket with room is writable at once", func(t *testing.T) {
		if err := listen(t, "udp4").WaitWritable(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a full socket becomes writable when the link drains", func(t *testing.T) {
		s := newStalledLink(t)
		s.fill(t)
		after(t, 50*time.Millisecond, func() { s.lift(t) })
		if err := s.c.WaitWritable(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.c.SetBlocking(false)
		// Space may be taken by others between the two calls; here nobody else writes.
		if n, err := s.c.WriteMessages(context.Background(), s.msgs(1), 0); n != 1 || err != nil {
			t.Fatalf("WriteMessages after WaitWritable = %d, %v", n, err)
		}
	})
	for _, tt := range waitEnders {
		t.Run(tt.name+" ends the wait on a full socket", func(t *testing.T) {
			s := newStalledLink(t)
			s.fill(t)
			if err := s.c.WaitWritable(tt.arm(t, s)); !errors.Is(err, tt.want) {
				t.Fatalf("WaitWritable = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestContractC12CloseWhileWaiting(t *testing.T) {
	s := newStalledLink(t)
	s.fill(t)
	const writers = 4
	errs := make(chan error, writers)
	for range writers {
		go func() {
			n, err := s.c.WriteMessages(context.Background(), s.msgs(50), 0)
			if err == nil && n < 1 {
				err = errors.New("no progress and no error")
			}
			if err != nil && !errors.Is(err, net.ErrClosed) {
				errs <- err
				return
			}
			errs <- nil
		}()
	}
	after(t, 50*time.Millisecond, func() { s.c.Close() })
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("a waiting writer ended with %v, want net.ErrClosed", err)
		}
	}
}
