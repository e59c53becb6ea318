package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/bench"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// A reader reads the way its mode does, from its own fresh socket.
type reader interface {
	// read makes one read call and returns the datagrams and payload
	// bytes it got. It blocks until at least one datagram is there.
	read() (dgrams, bytes int, err error)
	// setReadDeadline makes blocked and later reads fail with
	// os.ErrDeadlineExceeded once t has passed.
	setReadDeadline(t time.Time) error
	addr() netip.AddrPort
	fd() int // the socket, for SO_MEMINFO
	close() error
}

// recvCtors opens a reader for each mode.
var recvCtors = map[string]func(*recvBench) (reader, error){
	modeReadFrom:             newReadFromReader,
	modeXNetReadBatch:        newXNetReader,
	modeBatchconnRead:        func(rb *recvBench) (reader, error) { return newBatchconnReader(rb, false, false) },
	modeBatchconnGRO:         func(rb *recvBench) (reader, error) { return newBatchconnReader(rb, true, false) },
	modeBatchconnReadFromGRO: func(rb *recvBench) (reader, error) { return newBatchconnReader(rb, true, true) },
	modeRawRecvmmsg:          newRawReader,
}

// recvBench is one -recv run's shared state.
type recvBench struct {
	cfg     config
	network string
	local   netip.Addr
	rcvbuf  int // what the kernel granted a reader socket
	tx      *trafficSender
	fill    int // datagrams per drain
}

const (
	// drainDeadline bounds a drain that waits for datagrams that never
	// came (dropped while filling): it fails instead of hanging.
	drainDeadline = 5 * time.Second
	// maxFill caps a drain: at about a million datagrams a second that is
	// a tenth of a second, long enough to time, short enough to repeat.
	maxFill = 1 << 17
)

func runRecv(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	rb := &recvBench{cfg: cfg, network: "udp4", local: netip.MustParseAddr("127.0.0.1")}
	if cfg.ipv6 {
		rb.network, rb.local = "udp6", netip.IPv6Loopback()
	}
	rep := &recvDoc{CPUClock: recvCPUClock}
	c := &rep.Config
	c.Size, c.Batch, c.Traffic, c.Live, c.Count, c.Modes, c.Network = cfg.size, cfg.batch, cfg.traffic, cfg.live, cfg.count, cfg.modes, rb.network
	if cfg.traffic == trafficGSO {
		c.Segs = gsoSegs
	}
	if cfg.live {
		c.Duration = cfg.duration
	}
	rep.Env.Env = bench.ThisMachine()

	var err error
	if rb.tx, err = newTrafficSender(rb); err != nil {
		return err
	}
	defer rb.tx.close()
	if !cfg.live {
		if rb.fill, err = rb.calibrate(); err != nil {
			return err
		}
		c.Fill = rb.fill
	}

	stopProfiles, err := bench.StartProfiles(cfg.cpuProfile, cfg.memProfile)
	if err != nil {
		return err
	}
	var modes []bench.Mode[recvSample]
	for _, m := range cfg.modes {
		modes = append(modes, rb.mode(m))
	}
	// Each round starts one mode further along (bench.Run): a mode read
	// right after another was measured slower here than alone (the
	// previous drain's memory, the GC of what an allocating mode left), and
	// a fixed order charged that to the same modes every round.
	res, err := bench.Run(ctx, bench.Plan[recvSample]{Name: "batchbench", Rounds: cfg.count, Warmup: true,
		Groups: []bench.Group[recvSample]{{Modes: modes}}, Progress: cfg.out.Progress(stderr)})
	if perr := stopProfiles(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	rep.Env.RcvBuf = rb.rcvbuf
	return rep.report(res).Write(stdout, cfg.out)
}

// mode is one receive mode: each round on a fresh socket, a drain of the
// filled socket or a live read for -duration.
func (rb *recvBench) mode(name string) bench.Mode[recvSample] {
	var r reader
	return bench.Mode[recvSample]{
		Name: name,
		Setup: func(context.Context, int) (err error) {
			if r, err = recvCtors[name](rb); err != nil {
				return err
			}
			if rb.rcvbuf == 0 {
				rb.rcvbuf, _ = unix.GetsockoptInt(r.fd(), unix.SOL_SOCKET, unix.SO_RCVBUF)
			}
			return nil
		},
		Sample: func(_ context.Context, round int) (smp recvSample, err error) {
			if rb.cfg.live {
				smp, err = rb.measureLive(r)
			} else {
				smp, err = rb.measureDrain(r)
			}
			smp.Round = round
			return smp, bench.Unavailable(err)
		},
		Teardown: func() error { return r.close() },
	}
}

// measureDrain fills r's socket with rb.fill datagrams, then times reading
// them all on a locked thread: the receiver alone.
func (rb *recvBench) measureDrain(r reader) (recvSample, error) {
	rb.tx.setDest(r.addr())
	if err := rb.tx.send(rb.fill); err != nil {
		return recvSample{}, err
	}
	if drops := waitQueued(r.fd()); drops > 0 {
		return recvSample{}, fmt.Errorf("the socket dropped %d of %d datagrams while being filled (SO_RCVBUF %d)", drops, rb.fill, rb.rcvbuf)
	}
	if err := r.setReadDeadline(time.Now().Add(drainDeadline)); err != nil {
		return recvSample{}, err
	}
	return bench.Locked(func() (recvSample, error) {
		smp := recvSample{Sent: uint64(rb.fill)}
		got := 0
		err := timedReads(r, &smp, 1, func(n, _ int) (bool, bool) { got += n; return true, got < rb.fill })
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("read %d of the %d datagrams queued, then none for %v", got, rb.fill, drainDeadline)
		}
		smp.Lost = uint64(rb.fill - min(got, rb.fill))
		if err == nil {
			err = checkBytes(&smp, rb.cfg.size)
		}
		return smp, err
	})
}

// measureLive reads on a locked thread while a sender sends for -duration on
// another. When the reader has emptied the socket, the sender sends one
// 1-byte end marker, the reader's last read: stopping it with a deadline
// instead would put the error path's allocations in the measurement.
func (rb *recvBench) measureLive(r reader) (recvSample, error) {
	rb.tx.setDest(r.addr())
	// The warm-up datagrams, queued before the sender starts: what the
	// warm-up calls read of them (all but what the socket dropped) counts
	// as sent.
	warm := liveWarmup(rb.tx.unit())
	if err := rb.tx.send(warm); err != nil {
		return recvSample{}, err
	}
	warm -= int(waitQueued(r.fd()))
	// A fallback only, set before anything is measured: setting a deadline
	// may allocate, which would count against the mode.
	if err := r.setReadDeadline(time.Now().Add(rb.cfg.duration + time.Second + drainDeadline)); err != nil {
		return recvSample{}, err
	}
	var total atomic.Uint64 // datagrams read, warm-up included, marker not
	type rxResult struct {
		smp recvSample
		err error
	}
	type txResult struct {
		sent uint64
		err  error
	}
	// Both goroutines (and their channels) exist before the first datagram
	// is sent: nothing but the modes allocates while the reader measures.
	start := make(chan struct{})
	rx, tx := make(chan rxResult, 1), make(chan txResult, 1)
	size := rb.cfg.size
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var smp recvSample
		err := timedReads(r, &smp, max(warm, 1), func(n, b int) (count, more bool) {
			if b != n*size { // the end marker, alone: sent after the socket was empty
				return false, false
			}
			total.Add(uint64(n))
			return true, true
		})
		rx <- rxResult{smp, err}
	}()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		<-start
		sent, err := rb.tx.sendFor(rb.cfg.duration)
		tx <- txResult{sent, err}
	}()
	close(start)
	txr := <-tx

	// Let the reader empty the socket (and the Conn's own queue), then end it.
	deadline := time.Now().Add(time.Second)
	for last := total.Load(); time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		now := total.Load()
		if rmem, _, err := memInfo(r.fd()); err == nil && rmem == 0 && now == last {
			break
		}
		last = now
	}
	merr := rb.tx.sendMarker(r.addr())
	if merr != nil {
		_ = r.setReadDeadline(time.Now())
	}
	res := <-rx
	smp := res.smp
	switch {
	case txr.err != nil:
		return smp, txr.err
	case merr != nil:
		return smp, merr
	case errors.Is(res.err, os.ErrDeadlineExceeded):
		return smp, fmt.Errorf("the end marker did not arrive within %v of the socket running empty", drainDeadline)
	case res.err != nil:
		return smp, res.err
	}
	smp.Sent = txr.sent + uint64(max(warm, 0))
	smp.Lost = smp.Sent - min(smp.Sent, total.Load())
	return smp, checkBytes(&smp, size)
}

// timedReads makes unmeasured warm-up calls until they have read warm
// datagrams (at least one call: one-time set-up on a fresh socket, and in a
// live run the wait for the first datagram), then measures read calls until
// a read fails or next says to stop. next is told each call's datagrams and
// bytes, the warm-up's included, and says whether to count the call and
// whether to go on.
func timedReads(r reader, smp *recvSample, warm int, next func(n, b int) (count, more bool)) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	setup0 := ms.Mallocs
	for read := 0; read < warm; {
		n, b, err := r.read()
		if err != nil {
			return err
		}
		read += n
		if _, more := next(n, b); !more {
			return errors.New("the warm-up calls read every datagram: nothing left to time (raise the fill)")
		}
	}
	runtime.ReadMemStats(&ms)
	smp.SetupMallocs = ms.Mallocs - setup0
	mallocs0 := ms.Mallocs
	cpu0 := bench.ThreadCPU()
	start := time.Now()
	last := start
	var err error
	for {
		var n, b int
		n, b, err = r.read()
		if err != nil {
			break
		}
		count, more := next(n, b)
		if count {
			last = time.Now()
			smp.Calls++
			smp.Read += uint64(n)
			smp.Bytes += uint64(b)
		}
		if !more {
			break
		}
	}
	cpu1 := bench.ThreadCPU()
	runtime.ReadMemStats(&ms)
	smp.Elapsed = last.Sub(start)
	smp.CPU = cpu1 - cpu0
	smp.Mallocs = ms.Mallocs - mallocs0
	return err
}

// checkBytes catches a mode that returns other than whole datagrams (a GRO
// buffer not split, a truncated read): every datagram has size bytes.
func checkBytes(smp *recvSample, size int) error {
	if want := smp.Read * uint64(size); smp.Bytes != want {
		return fmt.Errorf("read %d bytes in %d datagrams, want %d (%d each)", smp.Bytes, smp.Read, want, size)
	}
	return nil
}

// calibrate finds how many datagrams of this traffic a reader socket holds:
// it fills a plain (no GRO) socket until the kernel drops, and fills later
// sockets to three quarters of that, so no drain starts with a drop.
func (rb *recvBench) calibrate() (int, error) {
	fd, addr, err := rawSocket(rb.local)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	setRcvBuf(fd)
	rb.rcvbuf, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	rb.tx.setDest(addr)
	unit := rb.tx.unit()
	held := 0
	for held < maxFill*4/3 {
		if err := rb.tx.send(unit); err != nil {
			return 0, err
		}
		if _, drops, err := memInfo(fd); err != nil {
			return 0, err
		} else if drops > 0 {
			break
		}
		held += unit
	}
	fill := min(maxFill, held*3/4) / unit * unit
	if fill < 4*rb.cfg.batch {
		return 0, fmt.Errorf("the receive buffer (SO_RCVBUF %d bytes) holds only %d datagrams, too few to time a drain; "+
			"run as root (SO_RCVBUFFORCE) or raise net.core.rmem_max", rb.rcvbuf, held)
	}
	return fill, nil
}

// waitQueued waits until the socket's receive queue stops growing (loopback
// delivers in softirq, usually but not always before sendmmsg returns) and
// returns how many datagrams it dropped.
func waitQueued(fd int) uint32 {
	last, _, _ := memInfo(fd)
	for range 200 {
		time.Sleep(time.Millisecond)
		now, _, err := memInfo(fd)
		if err != nil || now == last {
			break
		}
		last = now
	}
	_, drops, _ := memInfo(fd)
	return drops
}

// memInfo reads SO_MEMINFO: the bytes queued for reading (truesize) and the
// datagrams the socket dropped since it was opened.
func memInfo(fd int) (rmem, drops uint32, err error) {
	var mi [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mi))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, 0, os.NewSyscallError("getsockopt", e)
	}
	return mi[unix.SK_MEMINFO_RMEM_ALLOC], mi[unix.SK_MEMINFO_DROPS], nil
}

// listenUDP opens the *net.UDPConn a Go-level reader reads from, with the
// same receive buffer as every other reader, and returns its descriptor.
func (rb *recvBench) listenUDP() (*net.UDPConn, int, error) {
	c, err := net.ListenUDP(rb.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(rb.local, 0)))
	if err != nil {
		return nil, -1, err
	}
	sc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, -1, err
	}
	fd := -1
	if err := sc.Control(func(s uintptr) { fd = int(s); setRcvBuf(fd) }); err != nil {
		c.Close()
		return nil, -1, err
	}
	return c, fd, nil
}

// udpReader holds what the readers over a *net.UDPConn share.
type udpReader struct {
	c     *net.UDPConn
	sock  int
	local netip.AddrPort
}

func (u *udpReader) setReadDeadline(t time.Time) error { return u.c.SetReadDeadline(t) }
func (u *udpReader) addr() netip.AddrPort              { return u.local }
func (u *udpReader) fd() int                           { return u.sock }
func (u *udpReader) close() error                      { return u.c.Close() }

func (rb *recvBench) newUDPReader() (udpReader, error) {
	c, fd, err := rb.listenUDP()
	if err != nil {
		return udpReader{}, err
	}
	return udpReader{c: c, sock: fd, local: sockAddrPort(fd, rb.local)}, nil
}

// readFromReader: a loop of (*net.UDPConn).ReadFrom, one datagram per call,
// as most Go code reads (it allocates the *net.UDPAddr it returns).
type readFromReader struct {
	udpReader
	buf []byte
}

func newReadFromReader(rb *recvBench) (reader, error) {
	u, err := rb.newUDPReader()
	if err != nil {
		return nil, err
	}
	return &readFromReader{udpReader: u, buf: make([]byte, rb.cfg.size)}, nil
}

func (r *readFromReader) read() (int, int, error) {
	n, _, err := r.c.ReadFrom(r.buf)
	if err != nil {
		return 0, 0, err
	}
	return 1, n, nil
}

// batchconnReader: batchconn's ReadMessages, GRO on or off, or (single)
// one ReadFrom call per datagram on the Conn.
type batchconnReader struct {
	udpReader
	bc     *batchconn.Conn
	ctx    context.Context
	msgs   []batchconn.Message
	single bool
	buf    []byte
}

func newBatchconnReader(rb *recvBench, gro, single bool) (reader, error) {
	u, err := rb.newUDPReader()
	if err != nil {
		return nil, err
	}
	bc, err := batchconn.New(u.c, batchconn.WithGRO(gro))
	if err != nil {
		u.close()
		return nil, err
	}
	if gro && !bc.GROEnabled() {
		bc.Close()
		return nil, bench.Unavailable(errors.New("UDP GRO is not available here (batchconn's GROEnabled is false; BATCHCONN_DISABLE_GRO set, or no UDP_GRO)"))
	}
	r := &batchconnReader{udpReader: u, bc: bc, ctx: context.Background(), single: single, buf: make([]byte, rb.cfg.size)}
	bufs := make([]byte, rb.cfg.batch*rb.cfg.size)
	for i := range rb.cfg.batch {
		r.msgs = append(r.msgs, batchconn.Message{Buffers: [][]byte{bufs[i*rb.cfg.size : (i+1)*rb.cfg.size]}})
	}
	return r, nil
}

func (r *batchconnReader) read() (int, int, error) {
	if r.single {
		n, _, err := r.bc.ReadFrom(r.buf)
		if err != nil {
			return 0, 0, err
		}
		return 1, n, nil
	}
	n, err := r.bc.ReadMessages(r.ctx, r.msgs, 0)
	if err != nil {
		return 0, 0, err
	}
	b := 0
	for i := range n {
		b += r.msgs[i].N
	}
	return n, b, nil
}

func (r *batchconnReader) setReadDeadline(t time.Time) error { return r.bc.SetReadDeadline(t) }
func (r *batchconnReader) close() error                      { return r.bc.Close() }

// xnetReader: golang.org/x/net's PacketConn.ReadBatch, what Go code batches
// reads with today.
type xnetReader struct {
	udpReader
	r interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
}

func newXNetReader(rb *recvBench) (reader, error) {
	u, err := rb.newUDPReader()
	if err != nil {
		return nil, err
	}
	x := &xnetReader{udpReader: u}
	if rb.cfg.ipv6 {
		x.r = ipv6.NewPacketConn(u.c)
	} else {
		x.r = ipv4.NewPacketConn(u.c)
	}
	bufs := make([]byte, rb.cfg.batch*rb.cfg.size)
	for i := range rb.cfg.batch {
		x.msgs = append(x.msgs, ipv4.Message{Buffers: [][]byte{bufs[i*rb.cfg.size : (i+1)*rb.cfg.size]}})
	}
	return x, nil
}

func (x *xnetReader) read() (int, int, error) {
	n, err := x.r.ReadBatch(x.msgs, 0)
	if err != nil {
		return 0, 0, err
	}
	b := 0
	for i := range n {
		b += x.msgs[i].N
	}
	return n, b, nil
}

// rawReader is a reference, not the ceiling (that is ceiling/recvmmsg.c):
// recvmmsg(2) through unix.Syscall6 on a rawSock, every header (with room
// for the source address, as every other mode gets it) built once. On
// EAGAIN it waits in poll(2). No GRO.
type rawReader struct {
	*rawSock
	names    []unix.RawSockaddrInet6
	deadline atomic.Int64 // unix nanoseconds; 0: none
}

func newRawReader(rb *recvBench) (reader, error) {
	n, size := rb.cfg.batch, rb.cfg.size
	rs, err := newRawSock(rb.local, n, unix.POLLIN)
	if err != nil {
		return nil, err
	}
	setRcvBuf(rs.fd)
	r := &rawReader{rawSock: rs, names: make([]unix.RawSockaddrInet6, n)}
	bufs := make([]byte, n*size)
	for i := range n {
		r.set(i, bufs[i*size:(i+1)*size], &r.names[i], unix.SizeofSockaddrInet6, nil)
	}
	return r, nil
}

// read waits for data in slices of at most 10ms, so that a deadline set
// while it waits is seen.
func (r *rawReader) read() (int, int, error) {
	for {
		n, err := r.mmsg(unix.SYS_RECVMMSG, r.hdrs, 10)
		switch {
		case err != nil:
			return 0, 0, err
		case n > 0:
			b := 0
			for i := range n {
				b += int(r.hdrs[i].Len)
			}
			return n, b, nil
		}
		if d := r.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			return 0, 0, os.ErrDeadlineExceeded
		}
	}
}

func (r *rawReader) setReadDeadline(t time.Time) error {
	r.deadline.Store(t.UnixNano())
	return nil
}
func (r *rawReader) addr() netip.AddrPort { return r.local }
func (r *rawReader) fd() int              { return r.rawSock.fd }

// trafficSender sends the receive modes' traffic with sendmmsg on a
// rawSock: plain datagrams, or gsoSegs datagrams per UDP GSO send, 64
// messages per call, all of them one buffer to one destination.
type trafficSender struct {
	*rawSock
	name unix.RawSockaddrInet6
	gso  bool
	segs int // datagrams per message: 1, or gsoSegs
}

func newTrafficSender(rb *recvBench) (*trafficSender, error) {
	const msgs = 64 // messages per sendmmsg
	rs, err := newRawSock(rb.local, msgs, unix.POLLOUT)
	if err != nil {
		return nil, err
	}
	s := &trafficSender{rawSock: rs, gso: rb.cfg.traffic == trafficGSO, segs: 1}
	var oob []byte
	if s.gso {
		s.segs = gsoSegs
		oob = make([]byte, unix.CmsgSpace(2))
		putSegmentCmsg(oob, rb.cfg.size)
	}
	payload := make([]byte, s.segs*rb.cfg.size)
	for i := range payload {
		payload[i] = byte(i)
	}
	for i := range msgs {
		s.set(i, payload, &s.name, 0, oob)
	}
	return s, nil
}

// unit is the smallest number of datagrams send sends: one message.
func (s *trafficSender) unit() int { return s.segs }

func (s *trafficSender) setDest(a netip.AddrPort) {
	namelen := putSockaddr(&s.name, a)
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Namelen = namelen
	}
}

// send sends n datagrams, rounded down to whole messages.
func (s *trafficSender) send(n int) error {
	for left := n / s.segs; left > 0; {
		k, err := s.sendmmsg(min(left, len(s.hdrs)))
		if err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// sendFor sends as fast as it can for d and returns the datagrams sent.
func (s *trafficSender) sendFor(d time.Duration) (uint64, error) {
	var sent uint64
	start := time.Now()
	for time.Since(start) < d {
		k, err := s.sendmmsg(len(s.hdrs))
		if err != nil {
			return sent, err
		}
		sent += uint64(k * s.segs)
	}
	return sent, nil
}

// sendmmsg sends up to n messages, waiting while the socket is full.
func (s *trafficSender) sendmmsg(n int) (int, error) {
	for {
		k, err := s.mmsg(unix.SYS_SENDMMSG, s.hdrs[:n], -1)
		if s.gso && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIO) || errors.Is(err, unix.EMSGSIZE)) {
			return 0, fmt.Errorf("-traffic gso needs UDP GSO sends, and this kernel refused one: %w (use -traffic plain)", err)
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// sendMarker sends the 1-byte datagram that ends a live round.
func (s *trafficSender) sendMarker(to netip.AddrPort) error {
	return sendmsg(s.rawSock.fd, to, []byte{0xff}, nil)
}
