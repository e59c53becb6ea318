package quicbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// The sender's tests: quicbatch's policy on top of batchconn's write queue
// (which packets wait for their own result, what a queued packet's failure
// leads to), on the real kernel. The queue itself is batchconn's, tested
// there rule by rule (C16–C22).

// segmentOOB returns a UDP_SEGMENT control message, as quic-go builds it.
func segmentOOB(seg uint16) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], seg)
	return b
}

// segmentOf returns the segment size of the UDP_SEGMENT control message in
// oob, or 0.
func segmentOf(oob []byte) int {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range cmsgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_SEGMENT && len(m.Data) >= 2 {
			return int(binary.NativeEndian.Uint16(m.Data))
		}
	}
	return 0
}

func isGSO(b, oob []byte) bool {
	seg := segmentOf(oob)
	return seg > 0 && len(b) > seg
}

func pkt(tag byte, n int) []byte { return bytes.Repeat([]byte{tag}, n) }

// rig is a wrapped socket and a plain receiver, on loopback or on a veth
// test host's socket.
type rig struct {
	t   *testing.T
	c   *Conn
	dst *net.UDPAddr
	rx  *net.UDPConn
}

func newRig(t *testing.T, opts ...Option) *rig {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return rigOn(t, udp, rx, opts...)
}

func rigOn(t *testing.T, udp, rx *net.UDPConn, opts ...Option) *rig {
	t.Helper()
	c, err := Wrap(udp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); rx.Close() })
	return &rig{t: t, c: c, rx: rx, dst: rx.LocalAddr().(*net.UDPAddr)}
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

// long is a long-header packet (bit 7 set): its writer waits for its own
// result.
func long(n int) []byte { return pkt(0xc0, n) }

func TestQueuedPacketsAreCopiedAndLeaveInOrderWithLongHeaders(t *testing.T) {
	r := newRig(t)
	buf, oob := make([]byte, 20), segmentOOB(1000)
	var want [][]byte
	for i := range 60 {
		if i%20 == 10 {
			if err := r.write(long(30), nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, long(30))
			continue
		}
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
	if err := r.c.Flush(); err != nil {
		t.Fatal(err)
	}
	r.expect(want...)
	if st := r.c.Stats(); st.Writes != 60 || st.Queued != 57 || st.Messages != 60 {
		t.Errorf("Stats = %+v, want 60 writes, 57 queued (the short headers), 60 sent", st)
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

// A long-header packet, or any packet in combining mode, gets its own
// error, in the shape quic-go looks for: here the kernel's EMSGSIZE for a
// datagram larger than UDP allows.
func TestPacketsThatWaitGetTheirOwnErrorInQuicGosShape(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		b    []byte
	}{
		{"a long header, queue on", nil, long(70000)},
		{"a short header, combining", []Option{WithAsync(false)}, pkt('s', 70000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.opts...)
			r.write(pkt('a', 10), nil)
			checkQuicGoShape(t, r.write(tc.b, nil), syscall.EMSGSIZE)
			r.write(pkt('b', 10), nil)
			r.c.Flush()
			r.expect(pkt('a', 10), pkt('b', 10))
			if st := r.c.Stats(); st.Dropped+st.DropMsgSize != 0 {
				t.Errorf("Stats = %+v: the writer got its error, nothing was dropped", st)
			}
		})
	}
}

// noBroadcast turns SO_BROADCAST (which the net package sets) off, so that
// the kernel refuses a broadcast destination with EACCES after the write.
func noBroadcast(t *testing.T, udp *net.UDPConn) {
	rc, _ := udp.SyscallConn()
	rc.Control(func(fd uintptr) {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// An error that belongs to one packet or one destination is charged to that
// packet: a queued one is dropped and counted, and the packets queued after
// it still leave, in order.
func TestQueuedPacketErrorIsChargedToThatPacketAlone(t *testing.T) {
	r := newRig(t)
	noBroadcast(t, r.c.udp)
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: 9}
	for _, tag := range []byte{'a', 'x', 'b'} {
		var err error
		if tag == 'x' {
			_, _, err = r.c.WriteMsgUDP(pkt(tag, 10), nil, bcast)
		} else {
			err = r.write(pkt(tag, 10), nil)
		}
		if err != nil {
			t.Fatalf("write %c: %v", tag, err)
		}
	}
	if err := r.c.Flush(); err != nil {
		t.Fatalf("Flush = %v, want nil: the error belongs to one packet", err)
	}
	if st := r.c.Stats(); st.Dropped != 1 || st.DropMsgSize != 0 {
		t.Errorf("Dropped = %d, DropMsgSize = %d; want the one packet counted once", st.Dropped, st.DropMsgSize)
	}
	if err := r.write(pkt('n', 10), nil); err != nil {
		t.Fatalf("write after the failure: %v", err)
	}
	r.c.Flush()
	r.expect(pkt('a', 10), pkt('b', 10), pkt('n', 10))
}

// A DPLPMTUD probe too big for the path: the kernel refuses it with
// EMSGSIZE (DF is set, as quic-go sets it); queued, it is dropped and
// counted, and quic-go sees the loss it expects.
func TestQueuedPacketGettingEMSGSIZEIsDroppedAndCounted(t *testing.T) {
	p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1280})
	udp := p.A.ListenUDP(t, "udp4", 0)
	rc, _ := udp.SyscallConn()
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	})
	r := rigOn(t, udp, p.B.ListenUDP(t, "udp4", 0))
	r.write(pkt('p', 1400), nil)
	r.write(pkt('s', 100), nil)
	r.c.Flush()
	r.expect(pkt('s', 100))
	if st := r.c.Stats(); st.DropMsgSize != 1 || st.Dropped != 0 {
		t.Errorf("DropMsgSize = %d, Dropped = %d; want 1, 0", st.DropMsgSize, st.Dropped)
	}
	t.Run("the writer's own packet gets EMSGSIZE back", func(t *testing.T) {
		checkQuicGoShape(t, r.write(long(1400), nil), syscall.EMSGSIZE)
	})
}

// loopback4 is 127.0.0.1.
var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

func TestQueuedGSOBufferGettingEIOIsSplitAndResent(t *testing.T) {
	r := rigOn(t, testnet.ListenUDPLite(t, loopback4), testnet.ListenUDPLite(t, loopback4))
	gsoBuf := append(append(pkt('a', 100), pkt('b', 100)...), pkt('c', 50)...)
	if err := r.write(gsoBuf, segmentOOB(100)); err != nil {
		t.Fatal(err)
	}
	if err := r.write(pkt('d', 30), nil); err != nil {
		t.Fatal(err)
	}
	r.c.Flush()
	r.expect(pkt('a', 100), pkt('b', 100), pkt('c', 50), pkt('d', 30))
	if st := r.c.Stats(); st.GSOSplits != 1 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 1 split, 0 dropped", st)
	}
	t.Run("later queued GSO buffers are split before sending", func(t *testing.T) {
		if err := r.write(gsoBuf, segmentOOB(100)); err != nil {
			t.Fatal(err)
		}
		r.c.Flush()
		r.expect(pkt('a', 100), pkt('b', 100), pkt('c', 50))
		if st := r.c.Stats(); st.GSOSplits != 2 || st.Dropped != 0 {
			t.Errorf("GSOSplits = %d, Dropped %d; want 2 (split before sending, no new EIO), 0", st.GSOSplits, st.Dropped)
		}
	})
	t.Run("the writer's own GSO buffer gets EIO back, shaped for quic-go", func(t *testing.T) {
		long := append([]byte{0xc0}, gsoBuf[1:]...) // a long header: not queued
		checkQuicGoShape(t, r.write(long, segmentOOB(100)), syscall.EIO)
	})
}

// The write queue's error function retries EPERM, the error the first
// sendmsg on a new socket sometimes gets (golang/go#63322), and nothing
// else; batchconn retries at most once (its C19).
func TestQueuedPacketGettingEPERMIsRetried(t *testing.T) {
	shape := func(errno syscall.Errno) error {
		return &net.OpError{Op: "write", Net: "udp4", Err: os.NewSyscallError("sendmmsg", errno)}
	}
	for errno, want := range map[syscall.Errno]bool{
		syscall.EPERM: true, syscall.EACCES: false, syscall.EMSGSIZE: false,
		syscall.EIO: false, syscall.ENETUNREACH: false, syscall.ENOBUFS: false,
	} {
		if got := retryEPERM(batchconn.Message{}, shape(errno)); got != want {
			t.Errorf("retry after %v = %v, want %v", errno, got, want)
		}
	}
	if retryEPERM(batchconn.Message{}, &net.OpError{Op: "write", Err: os.ErrDeadlineExceeded}) {
		t.Error("a passed write deadline is retried")
	}
}

// Only a closed socket stops every later write.
func TestOnlyAClosedSocketIsSticky(t *testing.T) {
	r := newRig(t)
	r.write(pkt('a', 10), nil)
	r.c.udp.Close() // behind the Conn's back
	if err := r.c.Flush(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Flush = %v, want net.ErrClosed", err)
	}
	for _, b := range [][]byte{pkt('n', 10), long(10)} {
		err := r.write(b, nil)
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after the socket closed: %v, want net.ErrClosed", err)
		}
		if _, ok := errors.AsType[*net.OpError](err); !ok {
			t.Errorf("error %T is not a *net.OpError", err)
		}
	}
}

// A peer at port 0 (a forged source port): quic-go's write to it gets the
// kernel's EINVAL, in both modes, and the socket goes on for everyone else.
func TestWriteToPortZeroGetsItsOwnError(t *testing.T) {
	port0 := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"queue on", nil}, {"combining", []Option{WithAsync(false)}}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.opts...)
			r.write(pkt('a', 10), nil)
			_, _, err := r.c.WriteMsgUDP(pkt('x', 10), nil, port0)
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("write to port 0 = %v, want EINVAL", err)
			}
			if op, ok := errors.AsType[*net.OpError](err); !ok || op.Op != "write" {
				t.Errorf("error %#v is not a *net.OpError{Op: \"write\"}", err)
			}
			if err := r.write(pkt('b', 10), nil); err != nil {
				t.Fatalf("write after it: %v", err)
			}
			r.c.Flush()
			r.expect(pkt('a', 10), pkt('b', 10))
		})
	}
}

// stalledRig is a rig on a veth link that does not drain, its socket's
// send buffer full: queued packets stay queued.
func stalledRig(t *testing.T, opts ...Option) (*rig, *testnet.Pair) {
	t.Helper()
	p := testnet.NewPair(t, testnet.LinkConfig{Rate: "8bit", Burst: "1600", Limit: "1mb"})
	udp := p.A.ListenUDP(t, "udp4", 0)
	if err := udp.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	r := rigOn(t, udp, p.B.ListenUDP(t, "udp4", 0), opts...)
	to := &unix.SockaddrInet4{Port: r.dst.Port, Addr: [4]byte(r.dst.IP.To4())}
	rc, _ := udp.SyscallConn()
	for full := false; !full; {
		rc.Control(func(fd uintptr) {
			err := unix.Sendto(int(fd), pkt('f', 1200), unix.MSG_DONTWAIT, to)
			if err != nil && err != unix.EAGAIN {
				t.Fatal(err)
			}
			full = err == unix.EAGAIN
		})
	}
	return r, p
}

func TestAsyncWritesReturnBeforeTheirSend(t *testing.T) {
	r, p := stalledRig(t)
	for _, tag := range []byte{'a', 'b', 'c'} {
		if err := r.write(pkt(tag, 10), nil); err != nil {
			t.Fatalf("write %c on a link that does not drain: %v", tag, err)
		}
	}
	if st := r.c.Stats(); st.Queued != 3 || st.Messages != 0 {
		t.Fatalf("Stats = %+v; want 3 queued, none sent yet", st)
	}
	p.SetRate(t, "10gbit")
	if err := r.c.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := r.c.Stats(); st.Messages != 3 {
		t.Errorf("Stats = %+v; want the 3 sent once the link drains", st)
	}
}

func TestFullQueueBlocksUntilWriteDeadline(t *testing.T) {
	r, _ := stalledRig(t, WithQueueBytes(1024))
	for r.c.Stats().QueueWaits == 0 {
		r.c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		err := r.write(pkt('a', 100), nil)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := r.c.Stats(); st.QueueWaits == 0 {
		t.Error("QueueWaits = 0: no write waited for room")
	}
}

func TestCloseFlushesTheQueue(t *testing.T) {
	r := newRig(t)
	var want [][]byte
	for i := range 200 {
		b := pkt(byte(i%100), 100)
		r.write(b, nil)
		want = append(want, b)
	}
	if err := r.c.Close(); err != nil {
		t.Fatal(err)
	}
	r.expect(want...)
	if err := r.write(pkt('d', 10), nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
	if err := r.c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
}

func TestCloseGivesUpFlushingAfterABoundedTime(t *testing.T) {
	r, _ := stalledRig(t)
	r.write(pkt('a', 100), nil)
	done := make(chan error, 1)
	go func() { done <- r.c.Close() }()
	select { // a guard, not a measurement: the flush is bounded at 100 ms
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return on a link that does not drain")
	}
	if st := r.c.Stats(); st.Dropped != 1 {
		t.Errorf("Dropped = %d, want the queued packet Close gave up on", st.Dropped)
	}
}

func TestSendAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops entries at random under the race detector")
	}
	// A destination nobody reads: a reader's allocations would be counted.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, tc := range []struct {
		name string
		opts []Option
		b    []byte
	}{
		{"queued", nil, pkt('z', 1200)},
		{"long header", nil, long(1200)},
		{"combining", []Option{WithAsync(false)}, pkt('z', 1200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rigOn(t, udpOn(t), sink, tc.opts...)
			oob := segmentOOB(1200)
			for range 1000 {
				r.write(tc.b, oob)
			}
			if n := testing.AllocsPerRun(1000, func() { r.write(tc.b, oob) }); n != 0 {
				t.Errorf("WriteMsgUDP allocates %v times per call", n)
			}
		})
	}
}

func udpOn(t *testing.T) *net.UDPConn {
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return u
}
