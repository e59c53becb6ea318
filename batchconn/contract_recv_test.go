//go:build linux

package batchconn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// Tests named TestContractRn check rule Rn of the ReadMessages contract
// (shared/contract.md, part 2) on the real kernel, with GRO off and on.

// recvWait bounds every wait for datagrams that were sent; loopback delivers
// within the sending system call, so it matters only when a test fails.
const recvWait = 10 * time.Second

// groName names a subtest's GRO mode.
func groName(gro bool) string {
	if gro {
		return "GRO on"
	}
	return "GRO off"
}

// reader returns a Conn on a loopback socket with GRO as asked. With GRO
// asked for where the kernel lacks it, the test is skipped.
func reader(t *testing.T, network string, gro bool) *batchconn.Conn {
	t.Helper()
	c := listen(t, network, batchconn.WithGRO(gro))
	if gro && !c.GROEnabled() {
		t.Skipf("no UDP GRO here: %s", c.Stats().GROOff)
	}
	return c
}

// addrOf returns c's local address.
func addrOf(c *batchconn.Conn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// recvMsgs returns n receive messages, each with one buffer of size bytes
// and oob bytes of control room.
func recvMsgs(n, size, oob int) []batchconn.Message {
	msgs := make([]batchconn.Message, n)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, size)}
		if oob > 0 {
			msgs[i].OOB = make([]byte, oob)
		}
	}
	return msgs
}

// A got is what one Message reported.
type got struct {
	Addr         netip.AddrPort
	Data, OOB    string
	N, NN, Flags int
}

func gotOf(m batchconn.Message) got {
	var d []byte
	left := m.N
	for _, b := range m.Buffers {
		k := min(left, len(b))
		d = append(d, b[:k]...)
		left -= k
	}
	return got{m.Addr, string(d), string(m.OOB[:m.NN]), m.N, m.NN, m.Flags}
}

// readN reads until want datagrams came, in calls of at most batch messages
// shaped by mk, and returns what each message reported.
func readN(t *testing.T, c *batchconn.Conn, want int, mk func(n int) []batchconn.Message, batch, flags int) []got {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(recvWait))
	defer c.SetReadDeadline(time.Time{})
	var out []got
	for len(out) < want {
		msgs := mk(min(batch, want-len(out)))
		n, err := c.ReadMessages(context.Background(), msgs, flags)
		if err != nil {
			t.Fatalf("ReadMessages after %d of %d datagrams: %v", len(out), want, err)
		}
		for _, m := range msgs[:n] {
			out = append(out, gotOf(m))
		}
	}
	return out
}

// sendFrom sends msgs from a plain Conn (GSO as asked) and checks they went.
func sendFrom(t *testing.T, from *batchconn.Conn, msgs []batchconn.Message) {
	t.Helper()
	for len(msgs) > 0 {
		n, err := from.WriteMessages(context.Background(), msgs, 0)
		if err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
		msgs = msgs[n:]
	}
}

// expectNumbered checks that gots are datagrams 0, 1, ... of the given size
// from src, as payload() built them.
func expectNumbered(t *testing.T, gots []got, size int, src netip.AddrPort) {
	t.Helper()
	for i, g := range gots {
		if g.Data != string(payload(i, size)) || g.N != size || g.Addr != src || g.Flags != 0 {
			t.Fatalf("datagram %d: N=%d Flags=%#x from %v, %d bytes starting %x; want payload %d of %d bytes from %v",
				i, g.N, g.Flags, g.Addr, len(g.Data), head([]byte(g.Data)), i, size, src)
		}
	}
}

func TestContractR1CountNotError(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			tx := listen(t, "udp4", batchconn.WithGSO(gro))
			sendFrom(t, tx, messages(addrOf(c), 40, 1000))
			// Calls of 64 messages take what is queued; the tail of each
			// call's messages is left as it was.
			var all []got
			c.SetReadDeadline(time.Now().Add(recvWait))
			for len(all) < 40 {
				msgs := recvMsgs(64, 2000, 0)
				for i := range msgs {
					msgs[i].N, msgs[i].Flags, msgs[i].NN = -1, -2, -3
				}
				n, err := c.ReadMessages(context.Background(), msgs, 0)
				if err != nil || n < 1 || n > 40-len(all) {
					t.Fatalf("ReadMessages = %d, %v; want 1..%d, nil", n, err, 40-len(all))
				}
				for _, m := range msgs[n:] {
					if m.N != -1 || m.Flags != -2 || m.NN != -3 || m.Addr.IsValid() {
						t.Fatalf("message past n=%d was written: %+v", n, m)
					}
				}
				for _, m := range msgs[:n] {
					all = append(all, gotOf(m))
				}
			}
			expectNumbered(t, all, 1000, addrOf(tx))
		})
	}
}

// TestContractR1AtMostMaxMessages checks the 1024 cap: a call with more
// messages reads at most MaxMessages and leaves the rest untouched.
func TestContractR1AtMostMaxMessages(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			tx := listen(t, "udp4", batchconn.WithGSO(false))
			sendFrom(t, tx, messages(addrOf(c), 1100, 20))
			total := 0
			c.SetReadDeadline(time.Now().Add(recvWait))
			for total < 1100 {
				msgs := recvMsgs(1500, 64, 0)
				n, err := c.ReadMessages(context.Background(), msgs, 0)
				if err != nil || n > batchconn.MaxMessages {
					t.Fatalf("ReadMessages = %d, %v; want at most %d", n, err, batchconn.MaxMessages)
				}
				for i, m := range msgs[n:] {
					if m.N != 0 || m.Addr.IsValid() || m.Buffers[0][0] != 0 {
						t.Fatalf("message %d past n=%d was written", n+i, n)
					}
				}
				for i, m := range msgs[:n] {
					if want := payload(total+i, 20); string(m.Buffers[0][:m.N]) != string(want) {
						t.Fatalf("datagram %d out of order", total+i)
					}
				}
				total += n
			}
		})
	}
}

func TestContractR2EntryChecks(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			closed := reader(t, "udp4", gro)
			closed.Close()
			cases := []struct {
				name string
				c    *batchconn.Conn
				ctx  context.Context
				msgs []batchconn.Message
				want error
			}{
				{"closed Conn, no messages", closed, context.Background(), nil, net.ErrClosed},
				{"closed Conn and a cancelled context", closed, cancelled, recvMsgs(1, 10, 0), net.ErrClosed},
				{"cancelled context, no messages", c, cancelled, nil, context.Canceled},
				{"nil context", c, nil, recvMsgs(1, 10, 0), nil},
				{"no messages", c, context.Background(), nil, nil},
				{"empty messages", c, context.Background(), []batchconn.Message{}, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					n, err := tc.c.ReadMessages(tc.ctx, tc.msgs, 0)
					switch {
					case n != 0:
						t.Fatalf("n = %d", n)
					case tc.name == "nil context":
						if err == nil {
							t.Fatal("nil context accepted")
						}
					case tc.want == nil && err != nil, tc.want != nil && !errors.Is(err, tc.want):
						t.Fatalf("err = %v, want %v", err, tc.want)
					}
					if err != nil {
						var oe *net.OpError
						if !errors.As(err, &oe) || oe.Op != "read" {
							t.Errorf("err = %#v, want a *net.OpError with Op read", err)
						}
					}
				})
			}
			if s := c.Stats(); s.RecvSyscalls != 0 {
				t.Errorf("entry checks made %d system calls", s.RecvSyscalls)
			}
		})
	}
}

// after runs f after d, in its own goroutine, and waits for it at cleanup.
func afterDelay(t *testing.T, d time.Duration, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(d)
		f()
	}()
	t.Cleanup(func() { <-done })
}

func TestContractR3BlockingWaitsForTheFirstOnly(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ends := []struct {
				name  string
				set   func(c *batchconn.Conn)
				end   func(c *batchconn.Conn)
				want  error
				after bool // the Conn still reads afterwards
			}{
				{"a datagram arrives", nil, func(c *batchconn.Conn) {
					tx := listen(t, "udp4")
					sendFrom(t, tx, messages(addrOf(c), 1, 10))
				}, nil, true},
				{"the context is cancelled", nil, func(*batchconn.Conn) { cancel() }, context.Canceled, true},
				{"the read deadline passes", func(c *batchconn.Conn) {
					c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				}, nil, os.ErrDeadlineExceeded, false},
				{"the Conn is closed", nil, func(c *batchconn.Conn) { c.Close() }, net.ErrClosed, false},
			}
			for _, e := range ends {
				t.Run(e.name, func(t *testing.T) {
					c := reader(t, "udp4", gro)
					rctx := context.Background()
					if e.want == context.Canceled {
						rctx = ctx
					}
					if e.set != nil {
						e.set(c)
					}
					if e.end != nil {
						afterDelay(t, 100*time.Millisecond, func() { e.end(c) })
					}
					msgs := recvMsgs(8, 100, 0)
					n, err := c.ReadMessages(rctx, msgs, 0)
					if e.want == nil {
						if n != 1 || err != nil || msgs[0].N != 10 {
							t.Fatalf("ReadMessages = %d, %v; want the one datagram", n, err)
						}
					} else if n != 0 || !errors.Is(err, e.want) {
						t.Fatalf("ReadMessages = %d, %v; want 0, %v", n, err, e.want)
					}
					if errors.Is(e.want, os.ErrDeadlineExceeded) {
						var ne net.Error
						if !errors.As(err, &ne) || !ne.Timeout() {
							t.Errorf("err %v is not a timeout", err)
						}
					}
					if !e.after {
						return
					}
					// The Conn's read deadline is the user's again (none):
					// the next read waits and gets the next datagram.
					afterDelay(t, 50*time.Millisecond, func() {
						sendFrom(t, listen(t, "udp4"), messages(addrOf(c), 1, 20))
					})
					if n, err := c.ReadMessages(context.Background(), msgs, 0); n != 1 || err != nil || msgs[0].N != 20 {
						t.Fatalf("next ReadMessages = %d, %v", n, err)
					}
				})
			}
		})
	}
}

func TestContractR3ReturnsWhatIsQueued(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			tx := listen(t, "udp4", batchconn.WithGSO(false))
			sendFrom(t, tx, messages(addrOf(c), 5, 100))
			// 64 messages, 5 datagrams sent: the call returns without
			// waiting for more (it would hang otherwise; no deadline set).
			total := 0
			for total < 5 {
				n, err := c.ReadMessages(context.Background(), recvMsgs(64, 200, 0), 0)
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			if total != 5 {
				t.Fatalf("read %d datagrams, want 5", total)
			}
		})
	}
}

func TestContractR3NonBlocking(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			for _, mode := range []string{"SetBlocking(false)", "MSG_DONTWAIT"} {
				t.Run(mode, func(t *testing.T) {
					c := reader(t, "udp4", gro)
					flags := 0
					if mode == "MSG_DONTWAIT" {
						flags = unix.MSG_DONTWAIT
					} else {
						c.SetBlocking(false)
					}
					n, err := c.ReadMessages(context.Background(), recvMsgs(4, 100, 0), flags)
					if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) || !errors.Is(err, syscall.EAGAIN) {
						t.Fatalf("ReadMessages on an empty socket = %d, %v; want ErrWouldBlock", n, err)
					}
					tx := listen(t, "udp4")
					sendFrom(t, tx, messages(addrOf(c), 3, 100))
					got := readN(t, c, 3, func(n int) []batchconn.Message { return recvMsgs(n, 200, 0) }, 4, flags)
					expectNumbered(t, got, 100, addrOf(tx))
				})
			}
		})
	}
}

// TestContractR3NonBlockingBesideAWaitingReader checks that a non-blocking
// read is not held up by a blocking one waiting in the poller.
func TestContractR3NonBlockingBesideAWaitingReader(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			done := make(chan error, 1)
			go func() {
				_, err := c.ReadMessages(context.Background(), recvMsgs(1, 10, 0), 0)
				done <- err
			}()
			deadline := time.Now().Add(recvWait)
			for {
				n, err := c.ReadMessages(context.Background(), recvMsgs(1, 10, 0), unix.MSG_DONTWAIT)
				if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) {
					t.Fatalf("non-blocking ReadMessages = %d, %v", n, err)
				}
				if time.Now().After(deadline) {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("the blocking read ended: %v", err)
				default:
				}
				if c.Stats().RecvSyscalls > 0 {
					break // the blocking reader has looked at the socket
				}
				time.Sleep(time.Millisecond)
			}
			// Once the waiting reader is parked, a non-blocking read
			// returns at once (the test would hang otherwise).
			time.Sleep(20 * time.Millisecond)
			n, err := c.ReadMessages(context.Background(), recvMsgs(1, 10, 0), unix.MSG_DONTWAIT)
			if n != 0 || !errors.Is(err, batchconn.ErrWouldBlock) {
				t.Fatalf("non-blocking ReadMessages = %d, %v", n, err)
			}
			c.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("blocking read after Close: %v", err)
			}
		})
	}
}

func TestContractR4Truncation(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			tx := listen(t, "udp4", batchconn.WithGSO(true))
			// Two GSO runs of 4 × 100 bytes (coalesced with GRO on).
			for _, flags := range []int{0, unix.MSG_TRUNC} {
				sendFrom(t, tx, messages(addrOf(c), 4, 100))
				gots := readN(t, c, 4, func(n int) []batchconn.Message { return recvMsgs(n, 30, 0) }, 4, flags)
				for i, g := range gots {
					wantN := 30
					if flags != 0 {
						wantN = 100
					}
					if g.N != wantN || g.Flags&unix.MSG_TRUNC == 0 || g.Data != string(payload(i, 100)[:min(30, wantN)]) {
						t.Errorf("flags %#x: datagram %d: N=%d Flags=%#x data %x; want N=%d, MSG_TRUNC, the first 30 bytes",
							flags, i, g.N, g.Flags, head([]byte(g.Data)), wantN)
					}
				}
			}
		})
	}
}

func TestContractR4ScatterAndEmpty(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			tx := listen(t, "udp4")
			msgs := messages(addrOf(c), 3, 17)
			msgs[1].Buffers = nil // a 0-byte datagram
			sendFrom(t, tx, msgs)
			in := make([]batchconn.Message, 3)
			for i := range in {
				in[i].Buffers = [][]byte{make([]byte, 3), {}, make([]byte, 5), make([]byte, 20)}
			}
			c.SetReadDeadline(time.Now().Add(recvWait))
			total := 0
			for total < 3 {
				n, err := c.ReadMessages(context.Background(), in[total:], 0)
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			for i, m := range in {
				want := flat(msgs[i])
				g := gotOf(m)
				if g.N != len(want) || g.Data != string(want) || g.Flags != 0 {
					t.Errorf("message %d: N=%d data %x flags %#x; want %x", i, g.N, g.Data, g.Flags, want)
				}
			}
			if b := in[0].Buffers; string(b[0]) != string(msgs[0].Buffers[0][:3]) || string(b[2]) != string(msgs[0].Buffers[0][3:8]) {
				t.Errorf("scatter: %x %x", b[0], b[2])
			}
		})
	}
}

// setRecvTOS turns IP_RECVTOS on for c's socket.
func setRecvTOS(t *testing.T, c *batchconn.Conn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestContractR4ControlTruncation(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			setRecvTOS(t, c)
			tx := listen(t, "udp4")
			space := unix.CmsgSpace(1) // IP_TOS: one byte
			for _, room := range []int{0, 8, unix.CmsgLen(1) - 1, unix.CmsgLen(1), space, 200} {
				sendFrom(t, tx, withTOS(messages(addrOf(c), 2, 50), 0x28))
				gots := readN(t, c, 2, func(n int) []batchconn.Message { return recvMsgs(n, 100, room) }, 2, 0)
				for i, g := range gots {
					fits := room >= unix.CmsgLen(1)
					if fits != (g.Flags&unix.MSG_CTRUNC == 0) {
						t.Errorf("room %d, datagram %d: Flags %#x", room, i, g.Flags)
					}
					if fits {
						if g.NN != min(space, room) || g.OOB[unix.CmsgLen(0)] != 0x28 {
							t.Errorf("room %d, datagram %d: NN=%d OOB %x; want the TOS cmsg", room, i, g.NN, g.OOB)
						}
					}
				}
			}
		})
	}
}

// withTOS gives every message an IP_TOS control message.
func withTOS(msgs []batchconn.Message, tos byte) []batchconn.Message {
	for i := range msgs {
		msgs[i].OOB = tosOOB(tos)
	}
	return msgs
}

func TestContractR9ConnectionRefused(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			gone := listen(t, "udp4")
			dst := addrOf(gone)
			gone.Close()
			uc, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
			if err != nil {
				t.Fatal(err)
			}
			c, err := batchconn.New(uc, batchconn.WithGRO(gro))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if gro && !c.GROEnabled() {
				t.Skip("no GRO")
			}
			if _, err := c.WriteMessages(context.Background(), []batchconn.Message{{Buffers: [][]byte{{1}}}}, 0); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(recvWait))
			n, err := c.ReadMessages(context.Background(), recvMsgs(4, 10, 0), 0)
			var oe *net.OpError
			var se *os.SyscallError
			if n != 0 || !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "read" || !errors.As(err, &se) {
				t.Fatalf("ReadMessages = %d, %v; want ECONNREFUSED in a *net.OpError read holding an *os.SyscallError", n, err)
			}
			if oe.Addr == nil || oe.Addr.String() != dst.String() {
				t.Errorf("OpError.Addr = %v, want the peer %v", oe.Addr, dst)
			}
		})
	}
}

var _ = binary.BigEndian

func TestContractR5NoAllocation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := []struct {
		name       string
		count, len int
		msgs       []batchconn.Message
		ctx        context.Context
		plain      bool // sent without GSO: nothing to coalesce
	}{
		{"64 × 1400 bytes into 64 messages", 64, 1400, recvMsgs(64, 1500, 0), context.Background(), false},
		{"64 × 1400 bytes with a cancellable context", 64, 1400, recvMsgs(64, 1500, 0), ctx, false},
		{"64 × 1400 bytes into 8 messages with OOB", 64, 1400, recvMsgs(8, 1500, 64), context.Background(), false},
		{"1024 × 40 bytes into 1024 messages", 1024, 40, recvMsgs(1024, 64, 0), context.Background(), false},
		// With GRO on, plain datagrams go straight into the messages.
		{"64 × 1400 plain datagrams into 64 messages with OOB", 64, 1400, recvMsgs(64, 1500, 64), context.Background(), true},
		{"64 × 1400 plain datagrams into 8 messages", 64, 1400, recvMsgs(8, 1500, 0), context.Background(), true},
	}
	for _, gro := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(groName(gro)+"/"+tc.name, func(t *testing.T) {
				c := reader(t, "udp4", gro)
				setRecvTOS(t, c)
				tx := listen(t, "udp4", batchconn.WithGSO(!tc.plain))
				out := messages(addrOf(c), tc.count, tc.len)
				c.SetReadDeadline(time.Now().Add(time.Minute))
				run := func() {
					sendFrom(t, tx, out)
					for got := 0; got < tc.count; {
						n, err := c.ReadMessages(tc.ctx, tc.msgs[:min(len(tc.msgs), tc.count-got)], 0)
						if err != nil {
							t.Fatalf("ReadMessages: %v", err)
						}
						got += n
					}
				}
				run() // warm the Conn's reusable storage
				if a := testing.AllocsPerRun(20, run); a != 0 {
					t.Errorf("sending and reading %d datagrams allocates %.1f times, want 0", tc.count, a)
				}
			})
		}
	}
}

// TestContractR5LeftoversThenAnEmptySocket checks the steady state of a
// reader that asks for more than is left: a GRO read serves the leftovers of
// a coalesced buffer, finds the socket empty (EAGAIN), and returns what it
// served. The would-block it met and dropped must cost no allocation.
func TestContractR5LeftoversThenAnEmptySocket(t *testing.T) {
	c := reader(t, "udp4", true)
	tx := listen(t, "udp4")
	out := messages(addrOf(c), 14, 1400) // one GSO send of 14
	msgs := recvMsgs(8, 1500, 0)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	run := func() {
		sendFrom(t, tx, out)
		for got := 0; got < len(out); {
			n, err := c.ReadMessages(context.Background(), msgs, 0)
			if err != nil {
				t.Fatalf("ReadMessages: %v", err)
			}
			got += n
		}
	}
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("reading 14 datagrams 8 at a time allocates %.2f times, want 0", a)
	}
}

// TestContractR10SingleReadsAllocateNoMoreThanTheUDPConn checks that no
// single-datagram read method of a Conn allocates more than the
// *net.UDPConn's, GRO and reply sources on or off.
func TestContractR10SingleReadsAllocateNoMoreThanTheUDPConn(t *testing.T) {
	// A read method allocates no more than the *net.UDPConn's: the
	// AddrPort ones nothing, the others the *net.UDPAddr each returns (a
	// fresh one per datagram, as the UDPConn's). Measured on a UDPConn
	// and on Conns with GRO and reply sources (a wildcard address) off
	// and on, 14 datagrams per run.
	type udpReader = interface {
		Read(b []byte) (int, error)
		ReadFrom(b []byte) (int, net.Addr, error)
		ReadFromUDP(b []byte) (int, *net.UDPAddr, error)
		ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
		ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error)
		ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
		LocalAddr() net.Addr
		SetReadDeadline(time.Time) error
	}
	buf, oob := make([]byte, 1500), make([]byte, 64)
	reads := []struct {
		name string
		read func(r udpReader) error
	}{
		{"Read", func(r udpReader) error { _, err := r.Read(buf); return err }},
		{"ReadFrom", func(r udpReader) error { _, _, err := r.ReadFrom(buf); return err }},
		{"ReadFromUDP", func(r udpReader) error { _, _, err := r.ReadFromUDP(buf); return err }},
		{"ReadFromUDPAddrPort", func(r udpReader) error { _, _, err := r.ReadFromUDPAddrPort(buf); return err }},
		{"ReadMsgUDP", func(r udpReader) error { _, _, _, _, err := r.ReadMsgUDP(buf, oob); return err }},
		{"ReadMsgUDPAddrPort", func(r udpReader) error { _, _, _, _, err := r.ReadMsgUDPAddrPort(buf, oob); return err }},
	}
	tx := listen(t, "udp4")
	allocs := func(t *testing.T, r udpReader, read func(udpReader) error) float64 {
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(r.LocalAddr().(*net.UDPAddr).Port))
		out := messages(to, 14, 1400)
		r.SetReadDeadline(time.Now().Add(time.Minute))
		run := func() {
			sendFrom(t, tx, out)
			for range len(out) {
				if err := read(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		run()
		return testing.AllocsPerRun(20, run)
	}
	wildcard := func(t *testing.T, gro bool) *batchconn.Conn {
		c, err := batchconn.Listen("udp4", "0.0.0.0:0", batchconn.WithGRO(gro))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, rd := range reads {
		t.Run(rd.name, func(t *testing.T) {
			ref := allocs(t, testnet.ListenUDP(t, "udp4"), rd.read)
			if strings.HasSuffix(rd.name, "AddrPort") || rd.name == "Read" {
				if ref != 0 {
					t.Fatalf("the UDPConn's %s allocates %v times: the test measures the wrong thing", rd.name, ref)
				}
			}
			for _, gro := range []bool{false, true} {
				for _, wild := range []bool{false, true} {
					var c *batchconn.Conn
					if wild {
						c = wildcard(t, gro)
					} else {
						c = reader(t, "udp4", gro)
					}
					if gro && !c.GROEnabled() {
						t.Skipf("no UDP GRO here: %s", c.Stats().GROOff)
					}
					a := allocs(t, c, rd.read)
					t.Logf("%s, wildcard %v: %.0f allocations per 14 datagrams; the UDPConn: %.0f", groName(gro), wild, a, ref)
					if a > ref {
						t.Errorf("%s, wildcard %v: %s allocates %.0f times per 14 datagrams; the UDPConn's %.0f", groName(gro), wild, rd.name, a, ref)
					}
				}
			}
		})
	}
}

// TestContractR10ReadFromUDPLetsTheCallerKeepTheAddress: called directly
// (not through an interface, which hides it), the UDPConn's ReadFromUDP is
// inlined, so the *net.UDPAddr it returns stays on the caller's stack and
// a read allocates only the address's bytes; the Conn's is too.
func TestContractR10ReadFromUDPLetsTheCallerKeepTheAddress(t *testing.T) {
	tx := listen(t, "udp4")
	buf := make([]byte, 1500)
	u := testnet.ListenUDP(t, "udp4")
	var port int
	refRead := func() {
		tx.WriteToUDPAddrPort(buf[:100], u.LocalAddr().(*net.UDPAddr).AddrPort())
		_, a, err := u.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		port += a.Port
	}
	ref := testing.AllocsPerRun(100, refRead)
	for _, gro := range []bool{false, true} {
		c := reader(t, "udp4", gro)
		read := func() {
			tx.WriteToUDPAddrPort(buf[:100], addrOf(c))
			_, a, err := c.ReadFromUDP(buf)
			if err != nil {
				t.Fatal(err)
			}
			port += a.Port
		}
		if got := testing.AllocsPerRun(100, read); got > ref {
			t.Errorf("%s: ReadFromUDP allocates %v times per read; the UDPConn's %v", groName(gro), got, ref)
		}
	}
	if ref != 1 {
		t.Errorf("the UDPConn's ReadFromUDP allocates %v times per read, not 1: the test measures the wrong thing", ref)
	}
}

// TestContractR7ConcurrentReaders has readers of every kind share one Conn
// while a sender writes numbered datagrams: each must arrive exactly once.
func TestContractR7ConcurrentReaders(t *testing.T) {
	const total, chunk = 4200, 140 // 300 GSO sends of 14
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			tx := listen(t, "udp4")
			seen := make([]atomic.Int32, total)
			var count atomic.Int64
			record := func(b []byte) {
				if len(b) != 1200 {
					t.Errorf("datagram of %d bytes", len(b))
					return
				}
				seen[binary.BigEndian.Uint32(b)].Add(1)
				count.Add(1)
			}
			readers := []func() error{
				func() error {
					msgs := recvMsgs(8, 1500, 0)
					n, err := c.ReadMessages(context.Background(), msgs, 0)
					for _, m := range msgs[:n] {
						record(m.Buffers[0][:m.N])
					}
					return err
				},
				func() error {
					msgs := recvMsgs(64, 1500, 0)
					n, err := c.ReadMessages(context.Background(), msgs, 0)
					for _, m := range msgs[:n] {
						record(m.Buffers[0][:m.N])
					}
					return err
				},
				func() error {
					buf := make([]byte, 1500)
					n, _, err := c.ReadFrom(buf)
					if err == nil {
						record(buf[:n])
					}
					return err
				},
				func() error {
					buf := make([]byte, 1500)
					n, _, _, _, err := c.ReadMsgUDPAddrPort(buf, nil)
					if err == nil {
						record(buf[:n])
					}
					return err
				},
			}
			var wg sync.WaitGroup
			for _, read := range readers {
				wg.Go(func() {
					for {
						if err := read(); err != nil {
							if !errors.Is(err, net.ErrClosed) {
								t.Errorf("read: %v", err)
							}
							return
						}
					}
				})
			}
			for sent := 0; sent < total; sent += chunk {
				msgs := messages(addrOf(c), chunk, 1200)
				for i := range msgs {
					msgs[i].Buffers[0] = payload(sent+i, 1200)
				}
				sendFrom(t, tx, msgs)
				// Keep the socket's queue short: nothing may be dropped.
				for deadline := time.Now().Add(recvWait); count.Load() < int64(sent) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			for deadline := time.Now().Add(recvWait); count.Load() < total && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			c.Close()
			wg.Wait()
			for i := range seen {
				if k := seen[i].Load(); k != 1 {
					t.Errorf("datagram %d delivered %d times", i, k)
				}
			}
		})
	}
}

// TestContractR7ReadsNeverDelayWrites writes while a reader waits.
func TestContractR7ReadsNeverDelayWrites(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			r := reader(t, "udp4", false)
			done := make(chan error, 1)
			go func() {
				_, err := c.ReadMessages(context.Background(), recvMsgs(8, 100, 0), 0)
				done <- err
			}()
			for c.Stats().RecvSyscalls == 0 {
				time.Sleep(time.Millisecond)
			}
			sendFrom(t, c, messages(addrOf(r), 10, 100))
			if _, err := c.WriteTo([]byte{1}, r.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			readN(t, r, 11, func(n int) []batchconn.Message { return recvMsgs(n, 200, 0) }, 16, 0)
			c.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("the waiting read ended with %v, want net.ErrClosed", err)
			}
		})
	}
}
