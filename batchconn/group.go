package batchconn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// Group commit: the single-datagram write methods (WriteTo, WriteToUDP,
// WriteToUDPAddrPort, WriteMsgUDP, WriteMsgUDPAddrPort, Write) share one
// write gate with WriteMessages and WaitWritable.
//
//   - A writer that finds the gate free takes it and sends its own datagram
//     with the *net.UDPConn method it called: one system call, the UDPConn's
//     own result, and no more work than the UDPConn does.
//   - A writer that finds the gate held queues its datagram (uncopied) and
//     waits. Whoever holds the gate hands it, on release, to the first
//     queued writer, which becomes the leader: it sends every queued
//     datagram in sendmmsg batches (GSO runs where destinations and sizes
//     allow) and gives each writer its own result, in the shape the
//     UDPConn would have given it.
//
// The rule that makes a queued writer's result well defined: a queued
// datagram's fate is decided by the leader's send, never by the writer,
// which cannot leave the queue. Like a UDPConn writer waiting for the
// socket's write lock, it is sent if the send that carries it starts before
// the write deadline (and before Close) and the kernel takes it; a send that
// starts after the deadline, or whose wait for buffer space reaches it,
// fails every datagram it has not yet handed to the kernel with
// os.ErrDeadlineExceeded, and none of them is sent later. There are no
// timers and no goroutines: writers wait only for the send in flight.
//
// A datagram that fails gets its own error; the leader goes on with the
// next one (WriteMessages ends a call at a failing message, C6). Datagrams
// whose result the kernel does not decide alone — a destination or control
// data the UDPConn checks or converts its own way (a zone, port 0, a family
// mismatch, malformed OOB, an address of another type) — are sent by the
// leader one by one with the UDPConn's own method, so their results are the
// UDPConn's exactly.

// leaderRounds is how many batches a leader sends before it hands the gate
// to the next queued writer: enough to amortise the hand-off, few enough
// that no writer is kept sending for others for long.
const leaderRounds = 4

// idleYields is how many times a leader yields to an empty queue before
// it releases the gate (see lead).
const idleYields = 2

// A writeKind names the UDPConn method a queued write stands for.
type writeKind uint8

const (
	kindWriteTo writeKind = iota
	kindWriteToUDP
	kindWriteToUDPAddrPort
	kindWriteMsgUDP
	kindWriteMsgUDPAddrPort
	kindWrite
)

// syscallName is the name the UDPConn method puts in its *os.SyscallError
// on Linux: sendto for the WriteTo family, sendmsg for WriteMsg, write for
// Write.
func (k writeKind) syscallName() string {
	switch k {
	case kindWriteMsgUDP, kindWriteMsgUDPAddrPort:
		return "sendmsg"
	case kindWrite:
		return "write"
	}
	return "sendto"
}

// A queued is one queued single-datagram write: the caller's arguments,
// its result, and the channel it waits on.
type queued struct {
	kind   writeKind
	direct bool // sent alone with the UDPConn's method (see above)
	b, oob []byte
	addr   net.Addr       // WriteTo's addr
	uaddr  *net.UDPAddr   // WriteToUDP's and WriteMsgUDP's addr
	ap     netip.AddrPort // the AddrPort methods' addr
	dst    netip.AddrPort // the destination for a batch; zero: the peer

	n, oobn int
	err     error // the complete error, shaped as the UDPConn's

	next *queued
	// wake says "done" (false: the result is set) or "lead" (true: the
	// gate is yours). It holds at most one value at a time.
	wake chan bool
}

// group is a Conn's queue of waiting single-datagram writers.
type group struct {
	mu         sync.Mutex
	head, tail *queued
	free       *queued      // recycled entries: no allocation per write
	n          atomic.Int64 // queued writers, read without mu on release

	// hot is set while writers meet: the last batch carried more than one
	// datagram. A writer that finds the gate free then queues and leads
	// rather than sending alone, so that writers runnable at the same
	// time (on one CPU, they cannot overlap a system call) leave together.
	// A batch of one clears it, so a lone writer never pays for it.
	hot atomic.Bool

	// The leader's scratch (the gate holder's only).
	batch  []*queued
	msgs   []Message
	bufs   [][]byte
	owners []*queued // the writer of each message
	ctrl   []byte    // reply sources' control messages
}

// sendAlone takes the write gate for a writer that should send its own
// datagram at once with the UDPConn's method: the gate is free and writers
// have not been meeting. The method may wait for room in the send buffer
// where the gate cannot see it, so the gate is taken opaque (see gate).
func (c *Conn) sendAlone() bool { return !c.grp.hot.Load() && c.wg.tryLockAs(gateOpaque) }

// sendPlain is sendAlone for a datagram the UDPConn's method sends as it
// is: the Conn has no write queue to put it in and no reply source to add.
func (c *Conn) sendPlain() bool { return c.q == nil && c.reply == nil && c.sendAlone() }

// handoff is called after the gate was released while writers were
// queued: the first of them gets the gate. If someone else took the gate
// first, it sees the queue when it releases.
func (c *Conn) handoff() {
	g := &c.grp
	for g.n.Load() != 0 && c.wg.tryLock() {
		g.mu.Lock()
		q := g.head
		g.mu.Unlock()
		if q != nil {
			q.wake <- true
			return
		}
		c.wg.unlock() // the queue emptied meanwhile; release and look again
	}
}

// getQueued returns a free entry.
func (g *group) getQueued() *queued {
	g.mu.Lock()
	q := g.free
	if q != nil {
		g.free = q.next
		q.next = nil
	}
	g.mu.Unlock()
	if q == nil {
		q = &queued{wake: make(chan bool, 1)}
	}
	return q
}

// putQueued recycles q, dropping its references to the caller's memory.
func (g *group) putQueued(q *queued) {
	*q = queued{wake: q.wake}
	g.mu.Lock()
	q.next = g.free
	g.free = q
	g.mu.Unlock()
}

// write sends the single-datagram write w and sets its result: through
// the write queue if the Conn has one, else through group commit (by
// itself if the gate is free, which only a Conn with reply sources gets
// here for). w may live on the caller's stack: group commit, whose
// writers wait in a list other goroutines read, gets a pooled copy.
func (c *Conn) write(w *queued) {
	switch {
	case c.q != nil:
		c.queueWrite(w)
	case c.reply != nil && c.sendAlone():
		c.writeAlone(w)
		c.unlock()
	default:
		q := c.grp.getQueued()
		wake := q.wake
		*q = *w
		q.wake = wake
		c.writeQueued(q)
		w.n, w.oobn, w.err = q.n, q.oobn, q.err
		c.grp.putQueued(q)
	}
}

// writeAlone sends q by itself with the UDPConn's own method, from the
// address the peer's last datagram arrived on if reply sources know it
// (WithReplySource). The caller holds the gate.
func (c *Conn) writeAlone(q *queued) {
	if !q.direct {
		if oob := c.reply.source(c.src, q.oob, q.dst); oob != nil {
			c.src = oob[:0]
			c.wg.opaque(true)
			n, _, err := c.udp.WriteMsgUDPAddrPort(q.b, oob, q.dst)
			c.wg.opaque(false)
			if err == nil {
				q.n, q.oobn = n, len(q.oob)
				return
			}
			if !sourceGone(err) {
				q.err = c.queuedErr(q, err)
				return
			}
			// The address is gone: from the kernel's choice instead.
			c.reply.table.forget(q.dst)
		}
	}
	c.writeDirect(q)
}

// writeQueued queues q, waits until it has been sent or has failed, and
// returns its entry with the result set; the caller recycles it.
func (c *Conn) writeQueued(q *queued) {
	g := &c.grp
	g.mu.Lock()
	if g.tail == nil {
		g.head = q
	} else {
		g.tail.next = q
	}
	g.tail = q
	g.n.Add(1)
	g.mu.Unlock()
	// The gate may have been released between our failed tryLock and the
	// queueing (its holder saw no queue): then nobody would hand it to us.
	if c.wg.tryLock() {
		c.lead()
	}
	for <-q.wake {
		c.lead()
	}
}

// lead sends the queued writes, up to leaderRounds batches, and releases
// the gate, which it holds.
//
// Before each batch it yields (runtime.Gosched) so that runnable writers,
// such as those the last batch released, queue first: the batch would be
// smaller by each one that has not run yet. It finds the queue empty at
// most idleYields times before it gives up the gate. A yield is not a
// timer: with nothing else runnable it returns at once, and a writer that
// finds the gate free never yields.
func (c *Conn) lead() {
	g := &c.grp
	for rounds, idle := 0, 0; rounds < leaderRounds; {
		runtime.Gosched()
		g.mu.Lock()
		batch := g.batch[:0]
		for q := g.head; q != nil && len(batch) < MaxMessages; q = q.next {
			batch = append(batch, q)
		}
		if len(batch) == 0 {
			g.mu.Unlock()
			if idle++; idle > idleYields {
				break
			}
			continue
		}
		g.head = batch[len(batch)-1].next
		if g.head == nil {
			g.tail = nil
		}
		g.n.Add(-int64(len(batch)))
		g.mu.Unlock()
		if hot := len(batch) > 1; hot != g.hot.Load() {
			g.hot.Store(hot)
		}

		c.sendQueued(batch)
		for i, q := range batch {
			batch[i] = nil
			q.wake <- false
		}
		g.batch = batch[:0]
		rounds++
	}
	c.unlock()
}

// sendQueued sends a batch of queued writes and sets each one's result.
// The caller holds the gate.
func (c *Conn) sendQueued(batch []*queued) {
	g := &c.grp
	msgs, bufs, owners := g.msgs[:0], g.bufs[:0], g.owners[:0]
	// Room for the reply sources' control messages, sized first: messages
	// point into it.
	if c.reply != nil {
		need := 0
		for _, q := range batch {
			need += cmsgAlignUp(len(q.oob)) + PacketInfoSpace
		}
		if cap(g.ctrl) < need {
			g.ctrl = make([]byte, 0, need)
		}
	}
	ctrl := g.ctrl[:0]
	for _, q := range batch {
		if q.direct {
			c.writeDirect(q)
			continue
		}
		oob := q.oob
		if src := c.reply.source(ctrl[len(ctrl):], q.oob, q.dst); src != nil {
			ctrl = ctrl[:len(ctrl)+len(src)]
			oob = src
		}
		bufs = append(bufs, q.b)
		msgs = append(msgs, Message{Addr: q.dst, OOB: oob})
		owners = append(owners, q)
	}
	for i := range msgs {
		msgs[i].Buffers = bufs[i : i+1 : i+1]
	}
	// On a connected socket the kernel may hold an error for the next send
	// (an ICMP port unreachable: ECONNREFUSED). sendmmsg drops such an error
	// when it meets it after the first message and returns the count so
	// far, so no writer would hear of it. There, each sendmmsg carries one
	// datagram or one GSO run, so the error reaches the writer it would
	// have reached on a UDPConn.
	connected := c.udp.RemoteAddr() != nil
	for i := 0; i < len(msgs); {
		end := len(msgs)
		if connected {
			end = i + c.oneSend(msgs[i:])
		}
		n, err := c.send(context.Background(), msgs[i:end], 0, true)
		for j := i; j < i+n; j++ {
			q := owners[j]
			q.n, q.oobn = msgs[j].N, len(q.oob)
		}
		i += n
		switch {
		case err == nil:
		case fatalSendErr(err):
			// The socket is closed, or the write deadline passed: no later
			// send can start, as none could on the UDPConn.
			for ; i < len(msgs); i++ {
				owners[i].err = c.queuedErr(owners[i], err)
			}
		case len(msgs[i].OOB) != len(owners[i].oob) && sourceGone(err):
			// The remembered source is gone: again, from the kernel's
			// choice, and the peer forgotten until it writes again.
			c.reply.table.forget(owners[i].dst)
			msgs[i].OOB = owners[i].oob
		default:
			owners[i].err = c.queuedErr(owners[i], err)
			i++
		}
	}
	c.disarm()
	clear(bufs)
	clear(msgs)
	clear(owners)
	g.msgs, g.bufs, g.owners = msgs[:0], bufs[:0], owners[:0]
}

// oneSend returns how many of msgs one system call sends on a connected
// socket: a run of equal-size datagrams with equal control data that GSO
// can send as one, or one datagram.
func (c *Conn) oneSend(msgs []Message) int {
	if !c.GSOEnabled() {
		return 1
	}
	n, size := 1, len(msgs[0].Buffers[0])
	for n < len(msgs) && n < maxGSOSegments && size > 0 &&
		len(msgs[n].Buffers[0]) == size && bytes.Equal(msgs[n].OOB, msgs[0].OOB) {
		n++
	}
	return n
}

// fatalSendErr reports whether err, from send, ends every send after it:
// the socket is closed or the write deadline has passed.
func fatalSendErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}

// writeDirect sends q with the UDPConn's own method. The caller holds the
// gate, which says the method may wait unseen (opaque).
func (c *Conn) writeDirect(q *queued) {
	c.wg.opaque(true)
	defer c.wg.opaque(false)
	switch q.kind {
	case kindWriteTo:
		q.n, q.err = c.udp.WriteTo(q.b, q.addr)
	case kindWriteToUDP:
		q.n, q.err = c.udp.WriteToUDP(q.b, q.uaddr)
	case kindWriteToUDPAddrPort:
		q.n, q.err = c.udp.WriteToUDPAddrPort(q.b, q.ap)
	case kindWriteMsgUDP:
		q.n, q.oobn, q.err = c.udp.WriteMsgUDP(q.b, q.oob, q.uaddr)
	case kindWriteMsgUDPAddrPort:
		q.n, q.oobn, q.err = c.udp.WriteMsgUDPAddrPort(q.b, q.oob, q.ap)
	case kindWrite:
		q.n, q.err = c.udp.Write(q.b)
	}
}

// queuedErr gives err, which send reported for q's datagram, the shape the
// UDPConn method q stands for would have given it: a *net.OpError with the
// socket's network, its local address, q's address as the method reports
// it, and the errno in an *os.SyscallError named after the method's system
// call (or net.ErrClosed, os.ErrDeadlineExceeded).
func (c *Conn) queuedErr(q *queued, err error) error {
	var inner error
	var errno syscall.Errno
	switch {
	case errors.Is(err, net.ErrClosed):
		inner = net.ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		inner = os.ErrDeadlineExceeded
	case errors.As(err, &errno):
		inner = os.NewSyscallError(q.kind.syscallName(), errno)
	default:
		inner = err
	}
	var addr net.Addr
	switch q.kind {
	case kindWriteTo:
		addr = q.addr
	case kindWriteToUDP, kindWriteMsgUDP:
		if q.uaddr != nil {
			addr = q.uaddr
		}
	case kindWriteToUDPAddrPort, kindWriteMsgUDPAddrPort:
		addr = addrPortUDPAddr{q.ap}
	case kindWrite:
		addr = c.udp.RemoteAddr()
	}
	return &net.OpError{Op: "write", Net: c.rd.network, Source: c.laddr, Addr: addr, Err: inner}
}

// addrPortUDPAddr is the net.Addr the UDPConn's AddrPort methods put in
// their errors (the net package's own type of that name is unexported).
type addrPortUDPAddr struct{ netip.AddrPort }

func (addrPortUDPAddr) Network() string { return "udp" }

// batchDest reports whether a datagram to a goes into a batch, and the
// destination to give it there: a valid address with a port, no zone, of a
// family the socket sends to without conversion or refusal, on an
// unconnected socket. The rest go direct. mapped says the UDPConn would
// accept an IPv4-mapped address on an IPv4 socket (WriteTo with a
// *net.UDPAddr does, WriteToUDPAddrPort does not).
func (c *Conn) batchDest(a netip.AddrPort, mapped bool) bool {
	ip := a.Addr()
	if !ip.IsValid() || a.Port() == 0 || ip.Zone() != "" || c.udp.RemoteAddr() != nil {
		return false
	}
	switch {
	case c.sock4:
		return ip.Is4() || (mapped && ip.Is4In6())
	case c.v6only:
		return !ip.Is4() && !ip.Is4In6()
	}
	return true
}

// udpAddrPort converts a *net.UDPAddr the way the UDPConn would send to it,
// or reports that it must go direct.
func (c *Conn) udpAddrPort(a *net.UDPAddr) (netip.AddrPort, bool) {
	if a == nil || a.Zone != "" || a.Port <= 0 || a.Port > 0xFFFF || (len(a.IP) != 4 && len(a.IP) != 16) {
		return netip.AddrPort{}, false
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	if c.sock4 {
		ip = ip.Unmap() // as the UDPConn's To4
	}
	ap := netip.AddrPortFrom(ip, uint16(a.Port))
	return ap, c.batchDest(ap, true)
}

// plainOOB reports whether oob may go into a batch: none, or well formed
// (batchconn refuses malformed control data that the kernel would pass
// over, so that goes direct, to the kernel as the UDPConn gives it).
func plainOOB(oob []byte) bool {
	return len(oob) == 0 || checkOOB(oob, hostCmsg) == nil
}
