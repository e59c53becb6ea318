package batchconn

import (
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
)

// The write queue ([WithWriteQueue]): the single-datagram write methods
// copy the datagram and its control messages into a bounded FIFO and
// return; the queue's goroutine sends it with the Conn's batch path
// (sendmmsg, GSO runs). It is what a server that writes from one goroutine
// (a forwarding loop, a game tick) needs to gain from batching, since group
// commit batches only writers that collide.
//
// The queue is one byte arena, used as a ring: each datagram is one record
// of a 32-byte header, its payload and its control messages, 8-byte
// aligned. A record that does not fit before the end of the arena starts
// again at the front (wrap marks where the data before it ends). Records
// are sent from head in order and freed once done: sent, or failed and
// charged. A record stays in place while it is being sent, so writers copy
// into the free part of the arena at the same time.
//
// Whoever holds the write gate may send the queue: the goroutine, and any
// WriteMessages, WriteBuffersTo, Flush or direct write, which first send
// what was queued before them, so datagrams to one destination leave in
// the order they were written.

// A writeQueue is a Conn's write queue. mu guards the fields up to the
// scratch; the records' flags and progress, and the scratch, belong to the
// holder of the write gate, which alone sends.
type writeQueue struct {
	c       *Conn
	onError func(m Message, err error) (retry bool)

	mu         sync.Mutex
	room       sync.Cond // broadcast when records are freed, or the queue closes
	arena      []byte
	head, tail int   // the records in use: from head to tail, wrapping at wrap
	wrap       int   // where the records before the front end; -1 while they do not wrap
	records    int   // records in use, done ones not yet freed included
	headSeq    int64 // the number of the record at head; records are numbered as written
	waiters    int   // writers waiting for room
	busy       bool  // the goroutine has been asked to send
	closing    bool
	firstErr   error // the first failure since the last Flush
	splitGSO   bool  // callers' GSO buffers go out as separate datagrams (after EIO)
	kick       chan struct{}
	ctx        context.Context // the goroutine's; cancelled when Close gives up flushing
	cancel     context.CancelFunc
	stopped    chan struct{} // closed when the goroutine has ended
	stats      queueStats
	scratchLen int
	src        []byte // room for a write's control messages and reply source

	// The gate holder's scratch: the batch being sent, and what regroup
	// needs to reorder it.
	msgs, msgs2     []Message
	bufs            [][]byte
	owners, owners2 []int // the record offset of each message
	groups          map[netip.AddrPort]int
	gidx, starts    []int
}

type queueStats struct {
	writes, waits, gsoSplits, batches, most   atomic.Uint64
	msgSize, unreach, refused, denied, noBufs atomic.Uint64
	address, deadline, closed, other          atomic.Uint64
}

// A record is a 40-byte header, the payload and the control messages, each
// part 8-byte aligned so that the next record's header is too.
const (
	recSize   = 0  // uint32: the record's bytes, header included
	recLen    = 4  // uint32: payload bytes
	recOOB    = 8  // uint16: control message bytes
	recPort   = 10 // uint16
	recFlags  = 12 // byte
	recSrcLen = 13 // byte: the bytes of a reply source at the end of the control messages
	recSeg    = 14 // uint16: segment size, for a split GSO buffer
	recAddr   = 16 // [16]byte: the destination, IPv4 as IPv4-mapped
	recSent   = 32 // uint32: segments of a split GSO buffer sent or charged
	recHead   = 40
	recAlign  = 8

	recIs4   = 1 << 0 // the destination is IPv4
	recPeer  = 1 << 1 // no destination: the connected peer
	recDone  = 1 << 2 // sent, or failed and charged
	recSplit = 1 << 3 // a caller's GSO buffer, sent as separate datagrams of recSeg bytes
	recSrc   = 1 << 4 // the control messages end with a reply source (WithReplySource)
)

func recAlignUp(n int) int { return (n + recAlign - 1) &^ (recAlign - 1) }

// recordSize is the arena room a datagram of n bytes with oobn bytes of
// control messages takes.
func recordSize(n, oobn int) int { return recHead + recAlignUp(n) + recAlignUp(oobn) }

// closeFlushTime bounds how long Close waits for the queue to be sent.
const closeFlushTime = 100 * time.Millisecond

func newWriteQueue(c *Conn, bytes int, onError func(Message, error) bool) *writeQueue {
	q := &writeQueue{
		c:       c,
		onError: onError,
		arena:   make([]byte, recAlignUp(bytes)),
		wrap:    -1,
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		groups:  make(map[netip.AddrPort]int),
		msgs:    make([]Message, 0, MaxMessages),
		msgs2:   make([]Message, MaxMessages),
		bufs:    make([][]byte, MaxMessages),
		owners:  make([]int, MaxMessages),
		owners2: make([]int, MaxMessages),
		gidx:    make([]int, MaxMessages),
	}
	q.room.L = &q.mu
	q.ctx, q.cancel = context.WithCancel(context.Background())
	go q.run()
	return q
}

// reserve returns where a record of size bytes goes, or -1 if there is no
// room now. The caller holds mu and writes the record before releasing it.
func (q *writeQueue) reserve(size int) int {
	if q.records == 0 {
		q.head, q.tail, q.wrap = 0, 0, -1
	}
	switch {
	case q.wrap < 0 && q.tail+size <= len(q.arena): // room before the end
	case q.wrap < 0 && size <= q.head: // room at the front
		q.wrap, q.tail = q.tail, 0
	case q.wrap >= 0 && q.tail+size <= q.head: // wrapped: room before head
	default:
		return -1
	}
	off := q.tail
	q.tail += size
	q.records++
	return off
}

// next returns the offset of the record after the one at off.
func (q *writeQueue) next(off int) int {
	off += int(binary.NativeEndian.Uint32(q.arena[off+recSize:]))
	if off == q.wrap {
		off = 0
	}
	return off
}

// queueWrite copies w's datagram into the write queue and sets w's result
// as a UDPConn's method that sent it would; one the queue does not take
// (one the UDPConn decides in its own way, or larger than the arena) it
// sends with the UDPConn's own method after everything queued before it.
// The caller recycles w.
func (c *Conn) queueWrite(w *queued) {
	q := c.q
	most := recordSize(len(w.b), len(w.oob))
	if c.reply != nil {
		most = recordSize(len(w.b), cmsgAlignUp(len(w.oob))+PacketInfoSpace)
	}
	if w.direct || most > len(q.arena) {
		c.writeAfterQueue(w)
		return
	}
	if err := c.checkQueued(w); err != nil {
		w.err = c.queuedErr(w, err)
		return
	}
	q.mu.Lock()
	// A reply source (WithReplySource) goes into the record, after the
	// caller's control messages.
	oob, srcLen := w.oob, 0
	if src := c.reply.source(q.src, w.oob, w.dst); src != nil {
		q.src = src[:0]
		oob, srcLen = src, len(src)-cmsgAlignUp(len(w.oob))
	}
	size := recordSize(len(w.b), len(oob))
	off := -1
	for {
		switch {
		case q.closing || c.closed.Load():
			w.err = c.queuedErr(w, net.ErrClosed)
		case c.writeExpired():
			w.err = c.queuedErr(w, os.ErrDeadlineExceeded)
		default:
			if off = q.reserve(size); off < 0 && !c.blocking.Load() {
				w.err = c.queuedErr(w, ErrWouldBlock)
			}
		}
		if w.err != nil || off >= 0 {
			break
		}
		// Room comes when a send finishes. Every send the queue waits for
		// ends by the write deadline (the poller applies it) or by Close,
		// so no timer is needed to notice either.
		q.stats.waits.Add(1)
		q.waiters++
		q.room.Wait()
		q.waiters--
	}
	if w.err != nil {
		q.mu.Unlock()
		return
	}
	q.put(off, size, w, oob, srcLen)
	q.stats.writes.Add(1)
	if !q.busy {
		q.busy = true
		q.kick <- struct{}{}
	}
	q.mu.Unlock()
	w.n, w.oobn = len(w.b), len(w.oob)
}

// checkQueued returns the error the UDPConn's method would give w before
// sending anything: the socket is closed, the write deadline has passed,
// or the datagram is larger than the kernel takes (EMSGSIZE).
func (c *Conn) checkQueued(w *queued) error {
	switch {
	case c.closed.Load() || c.rc.Control(noControl) != nil:
		return net.ErrClosed
	case c.writeExpired():
		return os.ErrDeadlineExceeded
	}
	ip := w.dst.Addr()
	limit := maxPayload6
	if c.sock4 || ip.Is4() || ip.Is4In6() || (!ip.IsValid() && c.peer4) {
		limit = maxPayload4
	}
	if len(w.b) > limit {
		return syscall.EMSGSIZE
	}
	return nil
}

// put writes w's record at off, with oob as its control messages (w's,
// and srcLen bytes of a reply source after them). The caller holds mu.
func (q *writeQueue) put(off, size int, w *queued, oob []byte, srcLen int) {
	r := q.arena[off : off+size]
	ne := binary.NativeEndian
	ne.PutUint32(r[recSize:], uint32(size))
	ne.PutUint32(r[recLen:], uint32(len(w.b)))
	ne.PutUint16(r[recOOB:], uint16(len(oob)))
	r[recSrcLen] = byte(srcLen)
	ne.PutUint16(r[recPort:], w.dst.Port())
	ne.PutUint32(r[recSent:], 0)
	var flags byte
	switch ip := w.dst.Addr(); {
	case !ip.IsValid():
		flags = recPeer
	case ip.Is4():
		flags = recIs4
	}
	if srcLen > 0 {
		flags |= recSrc
	}
	r[recFlags] = flags
	a := w.dst.Addr().As16()
	copy(r[recAddr:], a[:])
	copy(r[recHead:], w.b)
	copy(r[recHead+recAlignUp(len(w.b)):], oob)
}

// message makes m the datagram of the record at off (or, for a split GSO
// buffer, its segment seg), with its buffer in bufs[i].
func (q *writeQueue) message(off int, m *Message, i, seg int) {
	r := q.arena[off:]
	ne := binary.NativeEndian
	n := int(ne.Uint32(r[recLen:]))
	oobn := int(ne.Uint16(r[recOOB:]))
	var dst netip.AddrPort
	if f := r[recFlags]; f&recPeer == 0 {
		ip := netip.AddrFrom16([16]byte(r[recAddr : recAddr+16]))
		if f&recIs4 != 0 {
			ip = ip.Unmap()
		}
		dst = netip.AddrPortFrom(ip, ne.Uint16(r[recPort:]))
	}
	b := r[recHead : recHead+n : recHead+n]
	if r[recFlags]&recSplit != 0 {
		size := int(ne.Uint16(r[recSeg:]))
		b = b[seg*size : min((seg+1)*size, n)]
	}
	q.bufs[i] = b
	*m = Message{Addr: dst, Buffers: q.bufs[i : i+1 : i+1]}
	if oobn > 0 {
		o := recHead + recAlignUp(n)
		m.OOB = r[o : o+oobn : o+oobn]
	}
	q.owners[i] = off
}

// writeAfterQueue sends w, a datagram the queue does not take, with the
// UDPConn's own method once everything queued before it has been sent, so
// that the order holds (C20), and with the UDPConn's result (C17).
func (c *Conn) writeAfterQueue(w *queued) {
	wait := c.blocking.Load()
	ctx := context.Background()
	if err := c.lock(ctx, wait); err != nil {
		w.err = c.queuedErr(w, err)
		return
	}
	defer c.unlock()
	if err := c.drainQueue(ctx, wait, c.q.enqueued()); err != nil {
		w.err = c.queuedErr(w, err)
		return
	}
	if !wait && !c.writable() {
		w.err = c.queuedErr(w, ErrWouldBlock) // the UDPConn's method would wait
		return
	}
	c.writeDirect(w)
}

// enqueued returns the number the next record will get: every record
// numbered below it has been written.
func (q *writeQueue) enqueued() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.headSeq + int64(q.records)
}

// run is the queue's goroutine: it sends the queue whenever writers have
// put records in it, and ends when the Conn closes.
func (q *writeQueue) run() {
	c := q.c
	defer close(q.stopped)
	for {
		select {
		case <-q.kick:
		case <-c.closing:
			return
		}
		for {
			if c.lock(q.ctx, true) != nil {
				return // Close: it charges what is left
			}
			err := c.drainQueue(q.ctx, true, -1)
			c.unlock()
			if err != nil {
				return
			}
			q.mu.Lock()
			idle := q.records == 0
			if idle {
				q.busy = false
			}
			q.mu.Unlock()
			if idle {
				break
			}
		}
	}
}

// errRetake ends a batch early so that the queue is taken again from its
// head: a caller's GSO buffer met EIO and now goes out split, before the
// datagrams written after it.
var errRetake = errors.New("batchconn: retake the write queue")

// drainQueue sends the records numbered below until (all of them, for -1,
// also those written meanwhile) that are not done yet, in batches of up to
// MaxMessages. The caller holds the write gate. It returns nil once each
// has been sent or charged its failure, or the error that stopped it with
// records left: ErrWouldBlock for a caller that must not wait, the end of
// the caller's wait (its context), or net.ErrClosed, after which every
// record left is charged.
func (c *Conn) drainQueue(ctx context.Context, wait bool, until int64) error {
	q := c.q
	for {
		k := q.take(until)
		if k == 0 {
			return nil
		}
		q.stats.batches.Add(1)
		if uint64(k) > q.stats.most.Load() {
			q.stats.most.Store(uint64(k)) // only the gate holder stores it
		}
		err := c.sendTaken(ctx, wait)
		q.release()
		switch {
		case err == errRetake:
		case errors.Is(err, net.ErrClosed):
			q.dropTaken()
			return err
		case err != nil:
			return err
		}
	}
}

// take fills the scratch with up to MaxMessages datagrams of records not
// yet done, oldest first, regrouped so that each destination's are
// consecutive (see regroup), and returns how many.
func (q *writeQueue) take(until int64) int {
	q.mu.Lock()
	n := q.records
	if until >= 0 {
		n = min(n, int(until-q.headSeq))
	}
	msgs, k := q.msgs[:MaxMessages], 0
	for i, off := 0, q.head; i < n && k < MaxMessages; i, off = i+1, q.next(off) {
		f := q.arena[off+recFlags]
		if f&recDone != 0 {
			continue
		}
		if f&recSplit == 0 && !(q.splitGSO && q.markSplit(off)) {
			q.message(off, &msgs[k], k, 0)
			k++
			continue
		}
		parts := q.segments(off)
		sent := int(binary.NativeEndian.Uint32(q.arena[off+recSent:]))
		for s := sent; s < parts && k < MaxMessages; s++ {
			q.message(off, &msgs[k], k, s)
			k++
		}
		if k == MaxMessages {
			break // the rest of its segments, and what follows, next time
		}
	}
	q.mu.Unlock()
	q.msgs, q.scratchLen = msgs[:k], k
	if k > 2 && q.c.GSOEnabled() {
		q.regroup()
	}
	return k
}

// markSplit turns the record at off, if it is a caller's GSO buffer (a
// UDP_SEGMENT control message), into a split one: UDP_SEGMENT removed in
// place, the segment size kept in the header. One of a single segment is
// one too: the kernel refuses UDP_SEGMENT with EIO whatever the length.
// It reports whether it did.
func (q *writeQueue) markSplit(off int) bool {
	r := q.arena[off:]
	ne := binary.NativeEndian
	n, oobn := int(ne.Uint32(r[recLen:])), int(ne.Uint16(r[recOOB:]))
	o := recHead + recAlignUp(n)
	oob := r[o : o+oobn]
	seg, start, end := findUDPSegment(oob)
	if seg <= 0 || (n+seg-1)/seg > MaxMessages {
		return false
	}
	copy(oob[start:], oob[end:])
	ne.PutUint16(r[recOOB:], uint16(oobn-(end-start)))
	ne.PutUint16(r[recSeg:], uint16(seg))
	ne.PutUint32(r[recSent:], 0)
	r[recFlags] |= recSplit
	q.stats.gsoSplits.Add(1)
	return true
}

// segments returns how many datagrams the split record at off makes (an
// empty one makes one, as it did before the split).
func (q *writeQueue) segments(off int) int {
	r := q.arena[off:]
	n, seg := int(binary.NativeEndian.Uint32(r[recLen:])), int(binary.NativeEndian.Uint16(r[recSeg:]))
	return max(1, (n+seg-1)/seg)
}

// regroup reorders the taken messages so that each destination's are
// consecutive, destinations in the order they first appear and each one's
// datagrams in their order: a server that writes one packet to every
// subscriber, then the next, gets runs that GSO sends as one (C20).
func (q *writeQueue) regroup() {
	msgs, k := q.msgs, len(q.msgs)
	clear(q.groups)
	q.starts = q.starts[:0]
	for i := range msgs {
		g, ok := q.groups[msgs[i].Addr]
		if !ok {
			g = len(q.starts)
			q.groups[msgs[i].Addr] = g
			q.starts = append(q.starts, 0)
		}
		q.gidx[i] = g
		q.starts[g]++
	}
	if len(q.starts) == 1 || len(q.starts) == k {
		return // one destination, or no two alike: nothing to gain
	}
	for g, sum := 0, 0; g < len(q.starts); g++ {
		q.starts[g], sum = sum, sum+q.starts[g]
	}
	out, owners := q.msgs2[:k], q.owners2[:k]
	for i := range msgs {
		j := q.starts[q.gidx[i]]
		q.starts[q.gidx[i]]++
		out[j], owners[j] = msgs[i], q.owners[i]
	}
	q.msgs, q.msgs2 = out, msgs[:cap(msgs)]
	q.owners, q.owners2 = q.owners2, q.owners
}

// sendTaken sends the taken messages through the Conn's batch path, marks
// each done as it is sent or charged, and returns the error that stopped
// it early (see drainQueue). An error that belongs to one datagram (its
// destination, its size, its control messages, a moment's shortage of
// buffers) is charged to it alone, and the rest are still sent (C19).
func (c *Conn) sendTaken(ctx context.Context, wait bool) error {
	q := c.q
	msgs := q.msgs
	for i := 0; i < len(msgs); {
		n, err := c.send(ctx, msgs[i:], 0, wait)
		c.disarm()
		q.done(i, i+n)
		i += n
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, ErrWouldBlock), ctx != q.ctx && ctx.Err() != nil:
			return err // the caller's wait ended; the rest stay queued
		case errors.Is(err, net.ErrClosed), ctx.Err() != nil:
			return net.ErrClosed
		case errors.Is(err, syscall.EIO) && q.arena[q.owners[i]+recFlags]&recSplit == 0 && q.markSplit(q.owners[i]):
			// A caller's GSO buffer, and the device cannot do GSO: it
			// goes out split, at once, and so do later ones; GSO goes
			// off for the Conn, as C14 has it for the Conn's own runs.
			c.disableGSO("the kernel failed a GSO send with EIO")
			q.mu.Lock()
			q.splitGSO = true
			q.mu.Unlock()
			return errRetake
		}
		if r := q.arena[q.owners[i]:]; r[recFlags]&recSrc != 0 && sourceGone(err) {
			// The remembered source is gone: the datagram goes out again
			// from the kernel's choice, before those written after it to
			// its destination, and the peer is forgotten until it writes
			// again.
			oobn := binary.NativeEndian.Uint16(r[recOOB:]) - uint16(r[recSrcLen])
			binary.NativeEndian.PutUint16(r[recOOB:], oobn)
			r[recFlags] &^= recSrc
			c.reply.table.forget(msgs[i].Addr)
			return errRetake
		}
		told := q.onError != nil
		if told && q.onError(msgs[i], err) && !errors.Is(err, os.ErrDeadlineExceeded) {
			n, err = c.send(ctx, msgs[i:i+1], 0, wait) // retried once, as asked
			c.disarm()
			if n == 1 {
				q.done(i, i+1)
				i++
				continue
			}
			told = false
		}
		q.failed(i, err, told)
		i++
	}
	return nil
}

// done marks messages [from, to) of the scratch sent: their records are
// done, a split GSO buffer once all its segments are.
func (q *writeQueue) done(from, to int) {
	for i := from; i < to; i++ {
		r := q.arena[q.owners[i]:]
		if r[recFlags]&recSplit == 0 {
			r[recFlags] |= recDone
			continue
		}
		sent := binary.NativeEndian.Uint32(r[recSent:]) + 1
		binary.NativeEndian.PutUint32(r[recSent:], sent)
		if int(sent) == q.segments(q.owners[i]) {
			r[recFlags] |= recDone
		}
	}
}

// failed charges message i's failure to it (C19): counted by cause, kept
// for Flush if it is the first since the last, told to the error function
// of WithWriteQueueErrors unless it was already (told), and done.
func (q *writeQueue) failed(i int, err error, told bool) {
	q.cause(err).Add(1)
	q.mu.Lock()
	if q.firstErr == nil {
		q.firstErr = err
	}
	q.mu.Unlock()
	if q.onError != nil && !told {
		q.onError(q.msgs[i], err)
	}
	q.done(i, i+1)
}

// cause returns the counter a failure is charged under (Stats.QueueFailures).
func (q *writeQueue) cause(err error) *atomic.Uint64 {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &q.stats.deadline
	case errors.Is(err, net.ErrClosed):
		return &q.stats.closed
	case !errors.As(err, &errno):
		return &q.stats.other
	}
	switch errno {
	case syscall.EMSGSIZE:
		return &q.stats.msgSize
	case syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN:
		return &q.stats.unreach
	case syscall.ECONNREFUSED:
		return &q.stats.refused
	case syscall.EPERM, syscall.EACCES:
		return &q.stats.denied
	case syscall.ENOBUFS:
		return &q.stats.noBufs
	case syscall.EINVAL, syscall.EADDRNOTAVAIL, syscall.EAFNOSUPPORT, syscall.EDESTADDRREQ:
		return &q.stats.address
	}
	return &q.stats.other
}

// release frees the done records at the front of the queue, wakes the
// writers waiting for room, and clears the scratch's pointers.
func (q *writeQueue) release() {
	q.mu.Lock()
	freed := false
	for q.records > 0 && q.arena[q.head+recFlags]&recDone != 0 {
		q.head = q.next(q.head)
		q.records--
		q.headSeq++
		freed = true
		if q.head == 0 {
			q.wrap = -1 // past the wrap: the records left no longer wrap
		}
	}
	if freed && q.waiters > 0 {
		q.room.Broadcast()
	}
	q.mu.Unlock()
	clear(q.bufs[:q.scratchLen])
	clear(q.msgs)
	q.msgs = q.msgs[:0]
}

// Flush waits until every datagram written to the Conn before the call has
// been handed to the kernel or has failed, and returns the first failure
// of a queued datagram since the last Flush (a *net.OpError whose Addr is
// the datagram's destination), or nil. It sends what is queued itself if
// the queue's goroutine is not at it. ctx bounds the wait. A Conn without a
// write queue (see [WithWriteQueue]) has nothing to wait for. A closed
// socket (by Close, or behind the Conn's back) fails it with net.ErrClosed.
func (c *Conn) Flush(ctx context.Context) error {
	switch {
	case c.closed.Load() || c.rc.Control(noControl) != nil:
		return c.opError(nil, net.ErrClosed)
	case ctx == nil:
		return c.opError(nil, errNilContext)
	}
	q := c.q
	if q == nil {
		return nil
	}
	if err := c.lock(ctx, true); err != nil {
		return c.opError(nil, err)
	}
	err := c.drainQueue(ctx, true, q.enqueued())
	c.unlock()
	if err != nil {
		return c.opError(nil, err)
	}
	q.mu.Lock()
	err, q.firstErr = q.firstErr, nil
	q.mu.Unlock()
	return err
}

// closeQueue, part of Close, stops the queue taking writes and sends what
// it holds for at most closeFlushTime, then stops its sends.
func (q *writeQueue) closeQueue() {
	q.mu.Lock()
	q.closing = true
	q.room.Broadcast()
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTime)
	q.c.Flush(ctx)
	cancel()
	q.cancel()
}

// dropLeft, the end of Close once the socket is closed, charges what is
// left in the queue to net.ErrClosed, so nothing is lost without a count,
// and waits for the goroutine to end.
func (q *writeQueue) dropLeft() {
	c := q.c
	c.wg.lock(context.Background(), nil) // its holder meets the closed socket at once
	q.dropTaken()
	c.wg.unlock()
	<-q.stopped
}

// dropTaken charges every record not done to net.ErrClosed. The caller
// holds the write gate.
func (q *writeQueue) dropTaken() {
	err := q.c.opError(nil, net.ErrClosed)
	for q.take(-1) > 0 {
		for i := range q.msgs {
			q.failed(i, err, false)
		}
		q.release()
	}
}

// findUDPSegment finds a caller's UDP_SEGMENT control message in oob (in
// Linux's layout): its segment size, and the bytes it spans, padding
// included. seg is 0 when there is none.
func findUDPSegment(oob []byte) (seg, start, end int) {
	for off := 0; off < len(oob); {
		lv, ty, next, bad := linuxCmsg.cmsgAt(oob, off)
		if bad != nil {
			return 0, 0, 0
		}
		next = min(next, len(oob))
		if lv == solUDP && ty == udpSegment && next-off >= cmsgHdrLen+2 {
			return int(binary.NativeEndian.Uint16(oob[off+cmsgHdrLen:])), off, next
		}
		off = next
	}
	return 0, 0, 0
}
