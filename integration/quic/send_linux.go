//go:build linux

package quicbatch

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
)

const (
	// copyBufSize is quic-go's protocol.MaxLargePacketBufferSize (20 KiB),
	// the largest GSO buffer it writes; copy slots start at this capacity.
	copyBufSize = 20 * 1024
	// copyOOBSize is quic-go's oobBufferSize; its send cmsgs (packet info,
	// UDP_SEGMENT, ECN) stay well below it.
	copyOOBSize = 128
	// closeFlushTime bounds how long Close waits for the queue to drain.
	closeFlushTime = 100 * time.Millisecond
	// maxNoGSO bounds the set of addresses whose GSO buffers are split.
	maxNoGSO = 1024
)

// An entry is one packet in the queue: either a copy (the writer has
// returned) or the writer's own buffers (a writer that found copies queued
// and waits behind them, so that no connection's packets are reordered).
type entry struct {
	b, oob []byte
	addr   netip.AddrPort
	copied bool
	eperm  bool // retried once after EPERM

	// copied entries: storage, reused
	data, ctl, stripped []byte

	// uncopied entries: the result and its signal
	err  error
	done chan struct{}
}

var syncEntries = sync.Pool{New: func() any { return &entry{done: make(chan struct{}, 1)} }}

// A sender sends quic-go's packets through batchconn.
//
// A packet that is not copied goes to batchconn's WriteMsgUDPAddrPort,
// whose group commit combines concurrent writers into sendmmsg batches
// without copying: the writer waits for its own packet and gets its own
// error. In async mode short-header packets are copied into a FIFO queue
// instead, and the helper goroutine sends it in WriteMessages batches under
// the error policy of the package documentation; busy says the helper is
// at it. The invariant: pending is non-empty only while busy is true, so
// queued packets always have a sender. An uncopied packet that finds
// copies queued joins the queue behind them and waits.
type sender struct {
	bc *batchconn.Conn
	// send is batchconn's WriteMessages and sendOne its
	// WriteMsgUDPAddrPort; tests replace them to inject the kernel's error
	// shapes.
	send    func(ctx context.Context, msgs []batchconn.Message, flags int) (int, error)
	sendOne func(b, oob []byte, addr netip.AddrPort) error
	ctx     context.Context // cancelled when Close gives up flushing
	cancel  context.CancelFunc
	async   bool         // short-header packets are copied and queued
	gsoOff  string       // why Wrap turned batchconn's GSO off, if it did
	depth   int          // most copied entries
	qbytes  int          // most copied bytes
	wdl     atomic.Int64 // write deadline, UnixNano; 0 = none

	mu         sync.Mutex
	busy       bool
	closing    bool
	sticky     error
	pending    []*entry
	spare      []*entry // the other pending array, owned by the helper while it sends
	free       []*entry // copied entries ready for reuse
	nCopies    int      // copied entries allocated
	copyBytes  int      // bytes in copied entries not yet sent
	enqSeq     uint64   // entries ever appended to pending
	doneSeq    uint64   // entries ever completed
	spaceCh    chan struct{}
	progressCh chan struct{}
	kick       chan struct{} // wakes the helper goroutine
	quit       chan struct{}

	// helper-only scratch
	msgs    []batchconn.Message
	owners  []*entry
	bufs    [][]byte
	smsgs   []batchconn.Message
	sowners []*entry
	sbufs   [][]byte
	noGSO   map[netip.AddrPort]struct{}

	st struct {
		writes, queued, queueWaits         atomic.Uint64
		batches, messages, bytes, maxBatch atomic.Uint64
		direct, queueMsgs                  atomic.Uint64 // packets sent by sendOne; by the helper
		gsoSplits, dropMsgSize, dropped    atomic.Uint64
	}
}

func newSender(udp *net.UDPConn, cfg config) (*sender, error) {
	bc, err := batchconn.New(udp, batchconn.WithGSO(cfg.gso), batchconn.WithGRO(cfg.gro))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		bc:     bc,
		send:   bc.WriteMessages,
		ctx:    ctx,
		cancel: cancel,
		async:  cfg.async,
		gsoOff: cfg.gsoOff,
		depth:  cfg.queueDepth,
		qbytes: cfg.queueBytes,
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		noGSO:  make(map[netip.AddrPort]struct{}),
	}
	s.sendOne = func(b, oob []byte, addr netip.AddrPort) error {
		_, _, err := bc.WriteMsgUDPAddrPort(b, oob, addr)
		return err
	}
	go s.helper()
	return s, nil
}

func isLongHeader(b []byte) bool { return len(b) > 0 && b[0]&0x80 != 0 }

// write sends or queues one packet. It returns the packet's own error when
// the caller's buffers were sent, and nil once they were copied.
func (s *sender) write(b, oob []byte, ua *net.UDPAddr) error {
	addr := addrPort(ua)
	s.mu.Lock()
	for {
		if err := s.refuseLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
		if !s.async || s.depth == 0 || isLongHeader(b) {
			break
		}
		if (len(s.free) > 0 || s.nCopies < s.depth) && (s.copyBytes == 0 || s.copyBytes+len(b) <= s.qbytes) {
			return s.enqueueCopyLocked(b, oob, addr)
		}
		s.st.queueWaits.Add(1)
		if err := s.waitLocked(&s.spaceCh, s.writeDeadline()); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.st.writes.Add(1)
	if !s.busy {
		// Nothing queued: batchconn sends it now, combined with the
		// other writers of the moment.
		s.mu.Unlock()
		return s.writeDirect(b, oob, addr)
	}
	e := syncEntries.Get().(*entry)
	e.b, e.oob, e.addr, e.err, e.eperm = b, oob, addr, nil, false
	s.pending = append(s.pending, e)
	s.enqSeq++
	s.mu.Unlock()
	<-e.done
	err := e.err
	e.b, e.oob, e.err = nil, nil, nil
	syncEntries.Put(e)
	return err
}

// writeDirect sends one uncopied packet with batchconn's group commit. Its
// error is the packet's own; a closed socket is kept for every later write.
func (s *sender) writeDirect(b, oob []byte, addr netip.AddrPort) error {
	err := s.sendOne(b, oob, addr)
	if err == nil {
		s.st.direct.Add(1)
		s.st.messages.Add(1)
		s.st.bytes.Add(uint64(len(b)))
		return nil
	}
	if socketGone(err) {
		s.setSticky(net.ErrClosed)
	}
	return err
}

// enqueueCopyLocked copies the packet into a free slot and queues it. It is
// called with s.mu held and returns with it released.
func (s *sender) enqueueCopyLocked(b, oob []byte, addr netip.AddrPort) error {
	var e *entry
	if n := len(s.free); n > 0 {
		e = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
	} else {
		s.nCopies++
		e = &entry{copied: true}
	}
	s.copyBytes += len(b)
	s.mu.Unlock()

	if cap(e.data) < len(b) {
		e.data = make([]byte, 0, max(len(b), copyBufSize))
	}
	if cap(e.ctl) < len(oob) {
		e.ctl = make([]byte, 0, max(len(oob), copyOOBSize))
	}
	e.b = append(e.data[:0], b...)
	e.oob = append(e.ctl[:0], oob...)
	e.addr, e.eperm = addr, false

	s.mu.Lock()
	if !s.busy && s.closing {
		// Close finished flushing while we copied.
		s.recycleLocked(e)
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.st.writes.Add(1)
	s.st.queued.Add(1)
	s.pending = append(s.pending, e)
	s.enqSeq++
	if !s.busy {
		s.busy = true
		s.kick <- struct{}{} // the helper sends the queue
	}
	s.mu.Unlock()
	return nil
}

func (s *sender) recycleLocked(e *entry) {
	s.copyBytes -= len(e.b)
	e.b, e.oob = nil, nil
	s.free = append(s.free, e)
}

func (s *sender) refuseLocked() error {
	if s.closing {
		return net.ErrClosed
	}
	return s.sticky
}

// drain sends what is pending, round after round. The helper calls it
// with s.mu held and s.busy set, and it returns with s.mu released.
func (s *sender) drain() {
	for len(s.pending) > 0 {
		batch := s.pending
		if len(batch) > batchconn.MaxMessages {
			s.pending = append(s.spare[:0], batch[batchconn.MaxMessages:]...)
			batch = batch[:batchconn.MaxMessages]
		} else {
			s.pending = s.spare[:0]
		}
		s.spare = nil
		s.mu.Unlock()

		s.sendBatch(batch)

		s.mu.Lock()
		for i, e := range batch {
			if e.copied {
				s.recycleLocked(e)
			} else {
				e.done <- struct{}{}
			}
			batch[i] = nil
		}
		s.doneSeq += uint64(len(batch))
		s.spare = batch[:0]
		wake(&s.spaceCh)
		wake(&s.progressCh)
	}
	s.busy = false
	s.mu.Unlock()
}

// helper drains the queue when writers have queued copies.
func (s *sender) helper() {
	for {
		select {
		case <-s.kick:
		case <-s.quit:
			// A kick sent before Close began is already buffered.
			select {
			case <-s.kick:
			default:
				return
			}
		}
		s.mu.Lock()
		s.drain()
	}
}

// sendBatch sends one round: every entry becomes one message, except copied
// GSO buffers to an address that failed GSO, which are split.
func (s *sender) sendBatch(batch []*entry) {
	msgs, owners, bufs := s.msgs[:0], s.owners[:0], s.bufs[:0]
	for _, e := range batch {
		if e.copied && len(s.noGSO) > 0 {
			if _, bad := s.noGSO[e.addr]; bad {
				if seg, oob, ok := e.splitOOB(); ok {
					for p := e.b; len(p) > 0; p = p[min(seg, len(p)):] {
						bufs = append(bufs, p[:min(seg, len(p))])
						msgs = append(msgs, batchconn.Message{Addr: e.addr, OOB: oob})
						owners = append(owners, e)
					}
					continue
				}
			}
		}
		bufs = append(bufs, e.b)
		msgs = append(msgs, batchconn.Message{Addr: e.addr, OOB: e.oob})
		owners = append(owners, e)
	}
	for i := range msgs {
		msgs[i].Buffers = bufs[i : i+1 : i+1]
	}
	if n := uint64(len(msgs)); n > s.st.maxBatch.Load() {
		s.st.maxBatch.Store(n)
	}
	s.sendMsgs(msgs, owners)
	clear(bufs)
	s.msgs, s.owners, s.bufs = msgs[:0], owners[:0], bufs[:0]
}

// splitOOB returns the segment size of a GSO buffer and its control
// messages without UDP_SEGMENT, or ok false if e is not a GSO buffer of
// more than one segment.
func (e *entry) splitOOB() (seg int, oob []byte, ok bool) {
	seg, start, end := udpSegment(e.oob)
	if seg <= 0 || len(e.b) <= seg {
		return 0, nil, false
	}
	e.stripped = append(append(e.stripped[:0], e.oob[:start]...), e.oob[end:]...)
	return seg, e.stripped, true
}

// sendMsgs sends msgs, owned entry by entry by owners, until each has been
// accepted or handled: an uncopied entry gets its error; a copied one gets
// the policy of the package documentation. An error is charged to the
// message it belongs to, and sending resumes with the message after it:
// only a closed socket ends the round (and every later write).
func (s *sender) sendMsgs(msgs []batchconn.Message, owners []*entry) {
	for i := 0; i < len(msgs); {
		n, err := s.send(s.ctx, msgs[i:], 0)
		s.st.batches.Add(1)
		if n > 0 {
			var bytes uint64
			for _, m := range msgs[i : i+n] {
				bytes += uint64(m.N)
			}
			s.st.messages.Add(uint64(n))
			s.st.queueMsgs.Add(uint64(n))
			s.st.bytes.Add(bytes)
			i += n
			continue // a failing message shows up as n == 0 on the next call
		}
		if err == nil {
			err = syscall.EIO // cannot happen per the contract; do not spin
		}
		if socketGone(err) {
			// The socket is closed, or Close gave up flushing: fail the rest.
			s.setSticky(net.ErrClosed)
			for ; i < len(msgs); i++ {
				if owners[i].copied {
					s.st.dropped.Add(1)
				} else {
					owners[i].err = err
				}
			}
			return
		}
		// Any other error belongs to msgs[i] alone: its destination, its
		// size, its control messages, or a moment's shortage of buffers.
		// Whoever sent it (a peer choosing its address, say) must not be
		// able to stop the socket for everyone else.
		e := owners[i]
		if !e.copied {
			e.err = err
			i++
			continue
		}
		switch {
		case errors.Is(err, syscall.EIO):
			if s.splitAfterEIO(e, &msgs[i]) {
				s.st.gsoSplits.Add(1)
			} else {
				s.st.dropped.Add(1)
			}
		case errors.Is(err, syscall.EMSGSIZE):
			s.st.dropMsgSize.Add(1)
		case errors.Is(err, syscall.EPERM) && !e.eperm:
			e.eperm = true
			continue // once, as quic-go does for its first packet
		default:
			s.st.dropped.Add(1)
		}
		i++
	}
}

// splitAfterEIO resends the GSO buffer in m as separate packets and makes
// later GSO buffers to its address split before sending. It reports whether
// m was a GSO buffer.
func (s *sender) splitAfterEIO(e *entry, m *batchconn.Message) bool {
	seg, start, end := udpSegment(m.OOB)
	if seg <= 0 || len(m.Buffers) != 1 || len(m.Buffers[0]) <= seg {
		return false
	}
	if len(s.noGSO) >= maxNoGSO {
		clear(s.noGSO)
	}
	s.noGSO[e.addr] = struct{}{}
	e.stripped = append(append(e.stripped[:0], m.OOB[:start]...), m.OOB[end:]...)
	msgs, owners, bufs := s.smsgs[:0], s.sowners[:0], s.sbufs[:0]
	for p := m.Buffers[0]; len(p) > 0; p = p[min(seg, len(p)):] {
		bufs = append(bufs, p[:min(seg, len(p))])
		msgs = append(msgs, batchconn.Message{Addr: m.Addr, OOB: e.stripped})
		owners = append(owners, e)
	}
	for i := range msgs {
		msgs[i].Buffers = bufs[i : i+1 : i+1]
	}
	s.sendMsgs(msgs, owners) // no UDP_SEGMENT left, so this does not recurse again
	clear(bufs)
	s.smsgs, s.sowners, s.sbufs = msgs[:0], owners[:0], bufs[:0]
	return true
}

// socketGone reports whether err means no later send can succeed: the
// socket is closed (EBADF: its descriptor is gone), or Close cancelled the
// sends still in flight. It is an allow-list on purpose: an error not known
// to end the socket is charged to one packet, never to every connection.
func socketGone(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EBADF) ||
		errors.Is(err, context.Canceled)
}

func (s *sender) setSticky(err error) {
	s.mu.Lock()
	if s.sticky == nil {
		s.sticky = err
	}
	s.mu.Unlock()
}

// udpSegment finds the UDP_SEGMENT control message in oob: its segment
// size and the bytes it spans.
func udpSegment(oob []byte) (seg, start, end int) {
	for off := 0; off+unix.SizeofCmsghdr <= len(oob); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(oob)-off {
			return 0, 0, 0
		}
		next := min(off+unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob))
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_SEGMENT && l >= unix.CmsgLen(2) {
			return int(binary.NativeEndian.Uint16(oob[off+unix.CmsgLen(0):])), off, next
		}
		off = next
	}
	return 0, 0, 0
}

func (s *sender) writeDeadline() time.Time {
	if ns := s.wdl.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (s *sender) setWriteDeadline(t time.Time) error {
	if t.IsZero() {
		s.wdl.Store(0)
	} else {
		s.wdl.Store(t.UnixNano())
	}
	s.mu.Lock()
	wake(&s.spaceCh) // waiters re-check against the new deadline
	s.mu.Unlock()
	return s.bc.SetWriteDeadline(t)
}

// waitLocked waits until *ch is closed or the deadline passes, with s.mu
// released meanwhile. It is called and returns with s.mu held.
func (s *sender) waitLocked(ch *chan struct{}, deadline time.Time) error {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	c := *ch
	s.mu.Unlock()
	var err error
	if deadline.IsZero() {
		<-c
	} else if d := time.Until(deadline); d <= 0 {
		err = os.ErrDeadlineExceeded
	} else {
		t := time.NewTimer(d)
		select {
		case <-c:
		case <-t.C:
			err = os.ErrDeadlineExceeded
		}
		t.Stop()
	}
	s.mu.Lock()
	return err
}

func wake(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

// flush waits until every entry queued before the call is done.
func (s *sender) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for target := s.enqSeq; s.doneSeq < target; {
		s.waitLocked(&s.progressCh, time.Time{})
	}
	return s.sticky
}

func (s *sender) close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.closing = true
	wake(&s.spaceCh)
	deadline := time.Now().Add(closeFlushTime)
	for target := s.enqSeq; s.doneSeq < target; {
		if s.waitLocked(&s.progressCh, deadline) != nil {
			break
		}
	}
	s.mu.Unlock()
	s.cancel() // ends a WriteMessages still waiting for socket space
	err := s.bc.Close()
	close(s.quit)
	return err
}

func (s *sender) stats() Stats {
	bs := s.bc.Stats()
	return Stats{
		Writes:      s.st.writes.Load(),
		Queued:      s.st.queued.Load(),
		QueueWaits:  s.st.queueWaits.Load(),
		Batches:     s.st.batches.Load(),
		Syscalls:    bs.Syscalls + s.alone(bs),
		Messages:    s.st.messages.Load(),
		Bytes:       s.st.bytes.Load(),
		MaxBatch:    s.st.maxBatch.Load(),
		GSOSplits:   s.st.gsoSplits.Load(),
		DropMsgSize: s.st.dropMsgSize.Load(),
		Dropped:     s.st.dropped.Load(),
		GSO:         s.bc.GSOEnabled(),
		GSOOff:      cmp.Or(s.gsoOff, bs.GSOOff),
	}
}

// alone estimates the packets batchconn sent with a system call of their
// own: its Stats count the system calls of its batches (the queue's
// WriteMessages and group commit's combined writers), not a writer that
// found nobody to combine with.
func (s *sender) alone(bs batchconn.Stats) uint64 {
	direct, queued := s.st.direct.Load(), s.st.queueMsgs.Load()
	combined := bs.Messages - min(bs.Messages, queued)
	return direct - min(direct, combined)
}
