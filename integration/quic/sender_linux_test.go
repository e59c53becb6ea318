package quicbatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
)

// kernelErr is the shape of a batchconn error: the kernel's errno from
// sendmmsg, wrapped once per layer.
func kernelErr(errno syscall.Errno) error {
	return &net.OpError{Op: "write", Net: "udp", Err: &os.SyscallError{Syscall: "sendmmsg", Err: errno}}
}

// segmentOOB returns a UDP_SEGMENT control message, as quic-go builds it.
func segmentOOB(seg uint16) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], seg)
	return b
}

// rig is a wrapped sender whose send path is a fake in front of the real
// one, and a plain receiver.
type rig struct {
	t    *testing.T
	c    *Conn
	dst  *net.UDPAddr
	rx   *net.UDPConn
	real func(context.Context, []batchconn.Message, int) (int, error)
	// realOne is batchconn's WriteMsgUDPAddrPort, the uncopied path.
	realOne func(b, oob []byte, addr netip.AddrPort) error

	mu   sync.Mutex
	fail func(m *batchconn.Message) error // per-message fault; nil passes
	gate chan struct{}                    // when set, the next send blocks until it is closed
	in   chan struct{}                    // signalled when a send blocks on gate
}

func newRig(t *testing.T, opts ...Option) *rig {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// The rig's tests are about the queue (copies sent by the helper
	// behind a send held in flight, under the error policy); tests of
	// uncopied writes ask for WithAsync(false) or use long headers.
	c, err := Wrap(udp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, c: c, rx: rx, dst: rx.LocalAddr().(*net.UDPAddr), real: c.s.send, realOne: c.s.sendOne, in: make(chan struct{}, 1)}
	c.s.send = r.send
	c.s.sendOne = r.sendOne
	t.Cleanup(func() { c.Close(); rx.Close() })
	return r
}

// send behaves like batchconn: it sends up to the first failing message and
// reports that message's error on the call that starts with it.
func (r *rig) send(ctx context.Context, msgs []batchconn.Message, flags int) (int, error) {
	r.mu.Lock()
	gate, fail := r.gate, r.fail
	r.gate = nil
	r.mu.Unlock()
	if gate != nil {
		r.in <- struct{}{}
		<-gate
	}
	k := len(msgs)
	var kerr error
	if fail != nil {
		for i := range msgs {
			if err := fail(&msgs[i]); err != nil {
				k, kerr = i, err
				break
			}
		}
	}
	if k == 0 && kerr != nil {
		return 0, kerr
	}
	return r.real(ctx, msgs[:k], flags)
}

// sendOne is send for one uncopied packet: the hold and the fault, then
// batchconn's WriteMsgUDPAddrPort.
func (r *rig) sendOne(b, oob []byte, addr netip.AddrPort) error {
	r.mu.Lock()
	gate, fail := r.gate, r.fail
	r.gate = nil
	r.mu.Unlock()
	if gate != nil {
		r.in <- struct{}{}
		<-gate
	}
	if fail != nil {
		if err := fail(&batchconn.Message{Addr: addr, Buffers: [][]byte{b}, OOB: oob}); err != nil {
			return err
		}
	}
	return r.realOne(b, oob, addr)
}

// hold makes the next send block, writes b from another goroutine so that
// it becomes the leader and blocks inside the send, and returns a function
// that releases it and returns its WriteMsgUDP error.
func (r *rig) hold(b []byte) (release func() error) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		_, _, err := r.c.WriteMsgUDP(b, nil, r.dst)
		errc <- err
	}()
	<-r.in
	return func() error { close(gate); return <-errc }
}

func (r *rig) setFail(f func(m *batchconn.Message) error) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *rig) write(b, oob []byte) error {
	_, _, err := r.c.WriteMsgUDP(b, oob, r.dst)
	return err
}

// recv returns the next datagram, or nil after a quiet 200 ms.
func (r *rig) recv() []byte {
	buf := make([]byte, 65536)
	r.rx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, _, err := r.rx.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func (r *rig) expect(want ...[]byte) {
	r.t.Helper()
	for i, w := range want {
		if got := r.recv(); !bytes.Equal(got, w) {
			r.t.Fatalf("datagram %d = %q, want %q", i, trunc(got), trunc(w))
		}
	}
	if got := r.recv(); got != nil {
		r.t.Fatalf("unexpected datagram %q", trunc(got))
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 24)] }

func isGSO(m *batchconn.Message) bool {
	seg, _, _ := udpSegment(m.OOB)
	return seg > 0 && len(m.Buffers[0]) > seg
}

func pkt(tag byte, n int) []byte { return bytes.Repeat([]byte{tag}, n) }

func TestQueuedPacketIsCopiedAndSentInOrder(t *testing.T) {
	r := newRig(t)
	release := r.hold(pkt('L', 10))
	buf, oob := make([]byte, 20), segmentOOB(1000)
	var want [][]byte
	for i := range 50 {
		buf[0] = byte(i) // short header: bit 7 clear
		copy(buf[1:], pkt('q', 19))
		if err := r.write(buf, oob); err != nil {
			t.Fatal(err)
		}
		want = append(want, bytes.Clone(buf))
		clear(buf) // quic-go reuses b at once
		clear(oob) // and rewrites its oob
		oob = segmentOOB(1000)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Flush(); err != nil {
		t.Fatal(err)
	}
	r.expect(append([][]byte{pkt('L', 10)}, want...)...)
	if st := r.c.Stats(); st.Queued != 51 || st.Messages != 51 || st.MaxBatch != 50 {
		t.Errorf("Stats = %+v, want 51 queued, 51 messages, a batch of 50", st)
	}
}

func TestQueuedGSOBufferGettingEIOIsSplitAndResent(t *testing.T) {
	r := newRig(t)
	r.setFail(func(m *batchconn.Message) error {
		if isGSO(m) {
			return kernelErr(syscall.EIO) // a device without TX checksum offload
		}
		return nil
	})
	release := r.hold(pkt('L', 10))
	gsoBuf := append(append(pkt('a', 100), pkt('b', 100)...), pkt('c', 50)...)
	if err := r.write(gsoBuf, segmentOOB(100)); err != nil {
		t.Fatal(err)
	}
	if err := r.write(pkt('d', 30), nil); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	r.c.Flush()
	r.expect(pkt('L', 10), pkt('a', 100), pkt('b', 100), pkt('c', 50), pkt('d', 30))
	if st := r.c.Stats(); st.GSOSplits != 1 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 1 split, 0 dropped", st)
	}

	t.Run("later queued GSO buffers to that address are split before sending", func(t *testing.T) {
		release := r.hold(pkt('L', 10))
		if err := r.write(gsoBuf, segmentOOB(100)); err != nil {
			t.Fatal(err)
		}
		release()
		r.c.Flush()
		r.expect(pkt('L', 10), pkt('a', 100), pkt('b', 100), pkt('c', 50))
		if st := r.c.Stats(); st.GSOSplits != 1 {
			t.Errorf("GSOSplits = %d, want 1 (split before sending, no new EIO)", st.GSOSplits)
		}
	})
	t.Run("the writer's own GSO buffer gets EIO back, shaped for quic-go", func(t *testing.T) {
		long := append([]byte{0xc0}, gsoBuf[1:]...) // a long header: not copied
		err := r.write(long, segmentOOB(100))
		checkQuicGoShape(t, err, syscall.EIO)
	})
}

func TestQueuedPacketGettingEMSGSIZEIsDroppedAndCounted(t *testing.T) {
	r := newRig(t)
	r.setFail(func(m *batchconn.Message) error {
		if len(m.Buffers[0]) > 1000 {
			return kernelErr(syscall.EMSGSIZE) // a DPLPMTUD probe too big for the path
		}
		return nil
	})
	release := r.hold(pkt('L', 10))
	r.write(pkt('p', 1400), nil)
	r.write(pkt('s', 100), nil)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	r.c.Flush()
	r.expect(pkt('L', 10), pkt('s', 100))
	if st := r.c.Stats(); st.DropMsgSize != 1 {
		t.Errorf("DropMsgSize = %d, want 1", st.DropMsgSize)
	}
	if err := r.write(pkt('n', 10), nil); err != nil {
		t.Errorf("write after a dropped packet: %v", err)
	}
	r.expect(pkt('n', 10))
	t.Run("the writer's own packet gets EMSGSIZE back", func(t *testing.T) {
		checkQuicGoShape(t, r.write(pkt(0xc0, 1400), nil), syscall.EMSGSIZE) // a long header: not copied
	})
}

func TestQueuedPacketGettingEPERMIsRetriedOnce(t *testing.T) {
	r := newRig(t)
	var once sync.Once
	r.setFail(func(m *batchconn.Message) error {
		var err error
		if m.Buffers[0][0] == 'e' {
			once.Do(func() { err = kernelErr(syscall.EPERM) })
		}
		return err
	})
	release := r.hold(pkt('L', 10))
	r.write(pkt('e', 10), nil)
	release()
	r.c.Flush()
	r.expect(pkt('L', 10), pkt('e', 10))
}

// Issue 8, item 1: only a closed socket stops every later write.
func TestOnlyAClosedSocketIsSticky(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"net.ErrClosed", &net.OpError{Op: "write", Net: "udp", Err: net.ErrClosed}},
		{"EBADF", kernelErr(syscall.EBADF)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.setFail(func(m *batchconn.Message) error {
				if m.Buffers[0][0] == 'x' {
					return tc.err
				}
				return nil
			})
			release := r.hold(pkt('L', 10))
			r.write(pkt('x', 10), nil)
			release()
			if err := r.c.Flush(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Flush = %v, want net.ErrClosed", err)
			}
			r.setFail(nil)
			err := r.write(pkt('n', 10), nil)
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after the failure: %v, want net.ErrClosed", err)
			}
			if _, ok := errors.AsType[*net.OpError](err); !ok {
				t.Errorf("error %T is not a *net.OpError", err)
			}
		})
	}
}

// Issue 8, item 1: an error that belongs to one packet or one destination is
// charged to that packet: a queued one is dropped and counted, and the
// packets queued after it in the same batch still leave, in order. The
// fake send ends a call at the failing message, as batchconn does (C6).
func TestQueuedPacketErrorIsChargedToThatPacketAlone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		msgSize bool // counted in DropMsgSize rather than Dropped
	}{
		{"EINVAL (a refused address)", kernelErr(syscall.EINVAL), false},
		{"EACCES (a broadcast address)", kernelErr(syscall.EACCES), false},
		{"EPERM twice (a firewall)", kernelErr(syscall.EPERM), false},
		{"EMSGSIZE", kernelErr(syscall.EMSGSIZE), true},
		{"ENETUNREACH", kernelErr(syscall.ENETUNREACH), false},
		{"EHOSTUNREACH", kernelErr(syscall.EHOSTUNREACH), false},
		{"ECONNREFUSED", kernelErr(syscall.ECONNREFUSED), false},
		{"EAFNOSUPPORT", kernelErr(syscall.EAFNOSUPPORT), false},
		{"EADDRNOTAVAIL", kernelErr(syscall.EADDRNOTAVAIL), false},
		{"ENOBUFS", kernelErr(syscall.ENOBUFS), false},
		{"ENOMEM", kernelErr(syscall.ENOMEM), false},
		{"EIO on a plain packet", kernelErr(syscall.EIO), false},
		{"an errno unknown to the policy", kernelErr(syscall.ENOTUNIQ), false},
		{"an error that is no errno", &net.OpError{Op: "write", Net: "udp", Err: errors.New("something new")}, false},
		{"a passed write deadline", &net.OpError{Op: "write", Net: "udp", Err: os.ErrDeadlineExceeded}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.setFail(func(m *batchconn.Message) error {
				if m.Buffers[0][0] == 'x' {
					return tc.err
				}
				return nil
			})
			release := r.hold(pkt('L', 10))
			for _, tag := range []byte{'a', 'x', 'b'} {
				if err := r.write(pkt(tag, 10), nil); err != nil {
					t.Fatalf("write %c: %v", tag, err)
				}
			}
			if err := release(); err != nil {
				t.Fatal(err)
			}
			if err := r.c.Flush(); err != nil {
				t.Fatalf("Flush = %v, want nil: the error belongs to one packet", err)
			}
			st := r.c.Stats()
			if got := st.Dropped + st.DropMsgSize; got != 1 || (st.DropMsgSize == 1) != tc.msgSize {
				t.Errorf("Dropped = %d, DropMsgSize = %d; want the one packet counted once", st.Dropped, st.DropMsgSize)
			}
			if err := r.write(pkt('n', 10), nil); err != nil {
				t.Fatalf("write after the failure: %v", err)
			}
			r.expect(pkt('L', 10), pkt('a', 10), pkt('b', 10), pkt('n', 10))
		})
	}
}

// Issue 8, item 1, through the real batchconn (no fakes): it refuses port 0
// with EINVAL, which quic-go meets when a peer's packet arrives from port 0.
func TestQueuedWriteToPortZeroIsChargedToItAlone(t *testing.T) {
	port0 := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}
	t.Run("async, then writes to a good address", func(t *testing.T) {
		r := newRig(t, WithAsync(true))
		if _, _, err := r.c.WriteMsgUDP(pkt('x', 10), nil, port0); err != nil {
			t.Fatalf("queued write to port 0: %v, want nil (its error comes later)", err)
		}
		for _, tag := range []byte{'a', 'b'} {
			if err := r.write(pkt(tag, 10), nil); err != nil {
				t.Fatalf("write %c after the write to port 0: %v", tag, err)
			}
		}
		if err := r.c.Flush(); err != nil {
			t.Fatalf("Flush = %v", err)
		}
		r.expect(pkt('a', 10), pkt('b', 10))
		if st := r.c.Stats(); st.Dropped != 1 {
			t.Errorf("Dropped = %d, want 1", st.Dropped)
		}
	})
	t.Run("in the middle of a batch", func(t *testing.T) {
		r := newRig(t)
		release := r.hold(pkt('L', 10))
		r.write(pkt('a', 10), nil)
		if _, _, err := r.c.WriteMsgUDP(pkt('x', 10), nil, port0); err != nil {
			t.Fatalf("queued write to port 0: %v", err)
		}
		r.write(pkt('b', 10), nil)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := r.c.Flush(); err != nil {
			t.Fatalf("Flush = %v", err)
		}
		r.expect(pkt('L', 10), pkt('a', 10), pkt('b', 10))
		if st := r.c.Stats(); st.Dropped != 1 || st.MaxBatch != 3 {
			t.Errorf("Dropped = %d, MaxBatch = %d; want 1 dropped from a batch of 3", st.Dropped, st.MaxBatch)
		}
		if err := r.write(pkt('n', 10), nil); err != nil {
			t.Fatal(err)
		}
		r.expect(pkt('n', 10))
	})
}

// Issue 8, item 1: a writer that waits for its own packet (WithAsync(false)
// with no send in flight, or any long-header packet) gets that packet's
// error, and the packets around it are sent.
func TestUncopiedWriteToPortZeroGetsItsOwnError(t *testing.T) {
	port0 := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}
	t.Run("combining, alone", func(t *testing.T) {
		r := newRig(t, WithAsync(false))
		_, _, err := r.c.WriteMsgUDP(pkt('x', 10), nil, port0)
		if !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("write to port 0 = %v, want EINVAL", err)
		}
		if op, ok := errors.AsType[*net.OpError](err); !ok || op.Op != "write" {
			t.Errorf("error %#v is not a *net.OpError{Op: \"write\"}", err)
		}
		if err := r.write(pkt('a', 10), nil); err != nil {
			t.Fatalf("write after it: %v", err)
		}
		r.expect(pkt('a', 10))
	})
	t.Run("long header, between queued packets", func(t *testing.T) {
		r := newRig(t, WithAsync(true))
		release := r.hold(pkt('L', 10))
		r.write(pkt('a', 10), nil)
		done := make(chan error, 1)
		go func() {
			_, _, err := r.c.WriteMsgUDP(pkt(0xc0, 1200), nil, port0)
			done <- err
		}()
		// Queue 'b' behind the long-header packet.
		for r.c.Stats().Writes < 3 {
			time.Sleep(time.Millisecond)
		}
		r.write(pkt('b', 10), nil)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("long-header write to port 0 = %v, want EINVAL", err)
		}
		if err := r.c.Flush(); err != nil {
			t.Fatalf("Flush = %v", err)
		}
		r.expect(pkt('L', 10), pkt('a', 10), pkt('b', 10))
		if st := r.c.Stats(); st.Dropped != 0 {
			t.Errorf("Dropped = %d: the writer got its error, nothing queued was lost", st.Dropped)
		}
	})
}

func TestFullQueueBlocksUntilWriteDeadline(t *testing.T) {
	r := newRig(t, WithQueueDepth(3)) // 'L', 'a' and 'b'
	release := r.hold(pkt('L', 10))
	r.write(pkt('a', 10), nil)
	r.write(pkt('b', 10), nil)
	r.c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	err := r.write(pkt('c', 10), nil)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a full queue: %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("write to a full queue returned after %v, before the deadline", d)
	}
	r.c.SetWriteDeadline(time.Time{})
	if st := r.c.Stats(); st.QueueWaits == 0 {
		t.Error("QueueWaits = 0")
	}
	done := make(chan error)
	go func() { done <- r.write(pkt('d', 10), nil) }()
	select {
	case err := <-done:
		t.Fatalf("write to a full queue returned %v while the send was in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.c.Flush()
	r.expect(pkt('L', 10), pkt('a', 10), pkt('b', 10), pkt('d', 10))
}

func TestLongHeaderPacketWaitsForItsOwnResult(t *testing.T) {
	r := newRig(t)
	r.setFail(func(m *batchconn.Message) error {
		if m.Buffers[0][0] == 0xc0 {
			return kernelErr(syscall.EMSGSIZE) // an Initial too big for the path
		}
		return nil
	})
	release := r.hold(pkt('L', 10))
	done := make(chan error)
	go func() { done <- r.write(pkt(0xc0, 1200), nil) }()
	select {
	case err := <-done:
		t.Fatalf("long-header write returned %v before it was sent", err)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	checkQuicGoShape(t, <-done, syscall.EMSGSIZE)
	if st := r.c.Stats(); st.Queued != 1 || st.DropMsgSize != 0 {
		t.Errorf("Stats = %+v: a long-header packet was copied, or dropped", st)
	}
}

func TestCloseFlushesTheQueue(t *testing.T) {
	r := newRig(t)
	release := r.hold(pkt('L', 10))
	r.write(pkt('a', 10), nil)
	r.write(pkt('b', 10), nil)
	closed := make(chan error)
	go func() { closed <- r.c.Close() }()
	time.Sleep(10 * time.Millisecond)
	if err := r.write(pkt('c', 10), nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write during Close: %v, want net.ErrClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	r.expect(pkt('L', 10), pkt('a', 10), pkt('b', 10))
	if err := r.write(pkt('d', 10), nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
}

func TestCloseGivesUpFlushingAfterABoundedTime(t *testing.T) {
	r := newRig(t)
	r.setFail(func(m *batchconn.Message) error {
		return nil
	})
	// The held send never finishes on its own: Close must still return.
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	go r.write(pkt('L', 10), nil)
	<-r.in
	r.write(pkt('a', 10), nil)
	start := time.Now()
	go func() { time.Sleep(2 * time.Second); close(gate) }()
	r.c.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestUDPSegmentIsFoundAmongQuicGoControlMessages(t *testing.T) {
	pktinfo := (&ipv4.ControlMessage{Src: net.IPv4(127, 0, 0, 1), IfIndex: 1}).Marshal()
	tos := make([]byte, unix.CmsgSpace(1))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&tos[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TOS
	h.SetLen(unix.CmsgLen(1))
	tos[unix.CmsgLen(0)] = 2 // ECT(0)
	seg := segmentOOB(1452)
	oob := append(append(append([]byte{}, pktinfo...), seg...), tos...)

	got, start, end := udpSegment(oob)
	if got != 1452 || start != len(pktinfo) || end != len(pktinfo)+len(seg) {
		t.Fatalf("udpSegment = %d, %d, %d; want 1452, %d, %d", got, start, end, len(pktinfo), len(pktinfo)+len(seg))
	}
	for _, bad := range [][]byte{nil, pktinfo, tos, seg[:len(seg)-8], {0xff, 0xff}} {
		if got, _, _ := udpSegment(bad); got != 0 {
			t.Errorf("udpSegment(%x) = %d, want 0", bad, got)
		}
	}
}

func TestSendAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops entries at random under the race detector")
	}
	r := newRig(t, WithAsync(false)) // uncopied: batchconn's group commit
	b, oob := pkt('z', 1200), segmentOOB(1200)
	r.write(b, oob)
	if n := testing.AllocsPerRun(100, func() { r.write(b, oob) }); n != 0 {
		t.Errorf("WriteMsgUDP allocates %v times per call", n)
	}
}

// checkQuicGoShape fails unless err is what quic-go's send-error predicates
// (udp.IsGSOError, IsPermissionError, IsSendMsgSizeErr in v0.66) recognise.
func checkQuicGoShape(t *testing.T, err error, errno syscall.Errno) {
	t.Helper()
	op, ok := errors.AsType[*net.OpError](err)
	if !ok || op.Op != "write" {
		t.Fatalf("error %#v is not a *net.OpError{Op: \"write\"}", err)
	}
	se, ok := errors.AsType[*os.SyscallError](err)
	if !ok || se.Syscall != "sendmsg" || se.Err != errno {
		t.Fatalf("error %v: want *os.SyscallError{Syscall: \"sendmsg\", Err: %v} in its chain", err, errno)
	}
	if !errors.Is(err, errno) {
		t.Fatalf("errors.Is(%v, %v) = false", err, errno)
	}
}

func TestAsyncWritesReturnBeforeTheirSend(t *testing.T) {
	r := newRig(t, WithAsync(true))
	r.mu.Lock()
	gate := make(chan struct{})
	r.gate = gate
	r.mu.Unlock()
	// Each write returns while the send of the first is still blocked.
	for _, tag := range []byte{'a', 'b', 'c'} {
		if err := r.write(pkt(tag, 10), nil); err != nil {
			t.Fatalf("write %c: %v", tag, err)
		}
	}
	<-r.in // the helper goroutine is inside the send
	close(gate)
	if err := r.c.Flush(); err != nil {
		t.Fatal(err)
	}
	r.expect(pkt('a', 10), pkt('b', 10), pkt('c', 10))
	if st := r.c.Stats(); st.Queued != 3 || st.Messages != 3 {
		t.Errorf("Stats = %+v; want 3 queued and 3 sent", st)
	}
}

func TestAsyncLongHeaderPacketWaitsForItsOwnResult(t *testing.T) {
	r := newRig(t, WithAsync(true))
	r.setFail(func(m *batchconn.Message) error {
		if m.Buffers[0][0] == 0xc0 {
			return kernelErr(syscall.EMSGSIZE)
		}
		return nil
	})
	release := r.hold(pkt('a', 10)) // the helper is busy sending 'a'
	done := make(chan error, 1)
	go func() { done <- r.write(pkt(0xc0, 1200), nil) }()
	select {
	case err := <-done:
		t.Fatalf("a long-header write returned %v while the send before it was in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("long-header write = %v, want its own EMSGSIZE", err)
	}
	r.expect(pkt('a', 10))
}

func TestAsyncQueuedErrorsFollowThePolicy(t *testing.T) {
	r := newRig(t, WithAsync(true))
	r.setFail(func(m *batchconn.Message) error {
		if m.Buffers[0][0] == 'x' {
			return kernelErr(syscall.EMSGSIZE) // a DPLPMTUD probe too big for the path
		}
		return nil
	})
	for _, tag := range []byte{'a', 'x', 'b'} {
		if err := r.write(pkt(tag, 10), nil); err != nil {
			t.Fatalf("write %c: %v", tag, err)
		}
	}
	if err := r.c.Flush(); err != nil {
		t.Fatal(err)
	}
	r.expect(pkt('a', 10), pkt('b', 10))
	if st := r.c.Stats(); st.DropMsgSize != 1 {
		t.Errorf("DropMsgSize = %d, want 1", st.DropMsgSize)
	}
	if err := r.write(pkt('c', 10), nil); err != nil {
		t.Fatalf("a write after a dropped packet: %v", err)
	}
}
