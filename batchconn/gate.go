package batchconn

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// A gate admits one holder at a time: a Conn's write gate serialises its
// sends, its read gate its reads. Besides taking turns it answers the
// question a caller that must not wait (C5, R3) asks when it finds the gate
// held: is the holder waiting for the socket? Then the caller would too,
// and gets ErrWouldBlock at once, as the socket itself would answer it. Is
// the holder only making a system call? Then it releases the gate within
// microseconds, and the caller waits for that, parked on a channel: nobody
// spins, whatever the holder does.
//
// The state is one atomic word, so taking and releasing a free gate cost
// one atomic operation each. Callers that wait queue on the gate's mutex:
// blocking ones in FIFO order, each handed the gate on release; watching
// ones (must not wait for the socket) on a channel closed when the holder
// releases the gate or starts to wait for the socket. Channels are made
// only when someone waits, and waiters are recycled.
type gate struct {
	state atomic.Uint32

	mu         sync.Mutex
	head, tail *gateWaiter // blocking callers, in arrival order
	free       *gateWaiter // recycled waiters
	watch      chan struct{}
}

// A gateWaiter is one blocking caller in the gate's queue.
type gateWaiter struct {
	next   *gateWaiter
	ch     chan struct{} // a value: the gate was handed to this waiter
	queued bool
}

const (
	gateHeld    uint32 = 1 << iota // someone holds the gate
	gateParked                     // the holder waits in the poller for the socket
	gateOpaque                     // the holder is in a *net.UDPConn method, which may wait for the socket unseen
	gateQueued                     // blocking callers are queued
	gateWatched                    // callers that must not wait watch for a release or park
)

// tryLock takes the gate if it is free.
func (g *gate) tryLock() bool { return g.tryLockAs(0) }

// tryLockAs takes the gate if it is free, with the holder's flags (0 or
// gateOpaque) set. The loop retries only when another caller changed the
// state word meanwhile, never to wait for the holder.
func (g *gate) tryLockAs(flags uint32) bool {
	for {
		s := g.state.Load()
		if s&gateHeld != 0 {
			return false
		}
		if g.state.CompareAndSwap(s, s|gateHeld|flags) {
			return true
		}
	}
}

// lock takes the gate, waiting for it in FIFO order, or gives up when ctx
// is done or closing is closed. A caller whose wait ends just as the gate
// is handed to it keeps the gate.
func (g *gate) lock(ctx context.Context, closing <-chan struct{}) error {
	if g.tryLock() {
		return nil
	}
	g.mu.Lock()
	w := g.free
	if w != nil {
		g.free = w.next
		w.next = nil
	} else {
		w = &gateWaiter{ch: make(chan struct{}, 1)}
	}
	if g.tail == nil {
		g.head = w
	} else {
		g.tail.next = w
	}
	g.tail, w.queued = w, true
	g.state.Or(gateQueued)
	// The holder may have released the gate after our tryLock but before it
	// could see us queued: then nobody would hand it to us.
	if g.tryLock() {
		g.dequeueLocked(w)
		g.recycleLocked(w)
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()

	var err error
	select {
	case <-w.ch:
	case <-ctx.Done():
		err = ctx.Err()
	case <-closing:
		err = net.ErrClosed
	}
	g.mu.Lock()
	if err != nil {
		if w.queued {
			g.dequeueLocked(w)
		} else {
			<-w.ch // handed the gate as the wait ended: keep it
			err = nil
		}
	}
	g.recycleLocked(w)
	g.mu.Unlock()
	return err
}

// lockNow takes the gate for a caller that must not wait for the socket.
// If the holder waits for the socket, or is in a method that may
// (gateOpaque) while ready reports that the socket would make it wait, it
// returns ErrWouldBlock; otherwise it waits, on a channel, until the holder
// releases the gate or starts such a wait, or ctx or closing ends it.
func (g *gate) lockNow(ctx context.Context, closing <-chan struct{}, ready func() bool) error {
	for {
		if g.tryLock() {
			return nil
		}
		g.mu.Lock()
		if g.watch == nil {
			g.watch = make(chan struct{})
		}
		w := g.watch
		s := g.state.Or(gateWatched)
		g.mu.Unlock()
		switch {
		case s&gateHeld == 0:
			continue // released meanwhile
		case s&gateParked != 0:
			return ErrWouldBlock
		case s&gateOpaque != 0 && (ready == nil || !ready()):
			return ErrWouldBlock
		}
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return net.ErrClosed
		}
	}
}

// unlock releases the gate, handing it to the first queued blocking caller
// if there is one, and wakes the watchers.
func (g *gate) unlock() {
	s := g.state.And(^(gateHeld | gateParked | gateOpaque))
	if s&(gateQueued|gateWatched) == 0 {
		return
	}
	g.mu.Lock()
	if s&gateWatched != 0 {
		g.wakeWatchersLocked()
	}
	// A caller that took the gate since the release hands it on in turn.
	if g.head != nil && g.tryLock() {
		w := g.head
		g.dequeueLocked(w)
		w.ch <- struct{}{}
	}
	g.mu.Unlock()
}

// park says the holder waits in the poller for the socket; unpark that it
// no longer does.
func (g *gate) park() {
	if g.state.Or(gateParked)&gateWatched != 0 {
		g.wakeWatchers()
	}
}

func (g *gate) unpark() { g.state.And(^gateParked) }

// opaque says the holder enters (on) or has left a *net.UDPConn method
// that may wait for the socket where the gate cannot see it.
func (g *gate) opaque(on bool) {
	if !on {
		g.state.And(^gateOpaque)
	} else if g.state.Or(gateOpaque)&gateWatched != 0 {
		g.wakeWatchers()
	}
}

// parked reports whether the holder waits in the poller for the socket.
func (g *gate) parked() bool { return g.state.Load()&gateParked != 0 }

func (g *gate) wakeWatchers() {
	g.mu.Lock()
	g.wakeWatchersLocked()
	g.mu.Unlock()
}

func (g *gate) wakeWatchersLocked() {
	g.state.And(^gateWatched)
	if g.watch != nil {
		close(g.watch)
		g.watch = nil
	}
}

func (g *gate) dequeueLocked(w *gateWaiter) {
	var prev *gateWaiter
	for p := g.head; p != nil; prev, p = p, p.next {
		if p != w {
			continue
		}
		if prev == nil {
			g.head = p.next
		} else {
			prev.next = p.next
		}
		if g.tail == p {
			g.tail = prev
		}
		break
	}
	w.next, w.queued = nil, false
	if g.head == nil {
		g.state.And(^gateQueued)
	}
}

func (g *gate) recycleLocked(w *gateWaiter) {
	w.next = g.free
	g.free = w
}
