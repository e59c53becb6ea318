package testnet

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// Datagram is one datagram a [Receiver] got.
type Datagram struct {
	// Payload is a copy of the datagram's payload. Receivers never modify
	// it after storing it.
	Payload []byte
	// From is the sender's address as the kernel reported it. A dual-stack
	// socket reports IPv4 senders as IPv4-mapped IPv6 addresses
	// ([::ffff:127.0.0.1]:port); use From.Addr().Unmap() to compare them.
	From netip.AddrPort
}

// Receiver records every datagram that arrives on a UDP socket, in arrival
// order. Its methods are safe for concurrent use.
type Receiver struct {
	c    *net.UDPConn
	addr netip.AddrPort // where senders send to; see Addr
	done chan struct{}  // closed when the read loop has returned

	mu      sync.Mutex
	got     []Datagram
	changed chan struct{} // closed and replaced whenever got grows
	err     error         // why the read loop stopped early, if it did
	stop    bool          // the read loop has been told to stop
}

// readBufSize holds the largest UDP payload (65535 - 8 byte UDP header), so
// no datagram is truncated.
const readBufSize = 1 << 16

// NewReceiver starts a goroutine that reads every datagram arriving on c and
// stores a copy. The caller must not read from c itself. In t.Cleanup the
// goroutine is stopped and waited for; if it stopped early on an unexpected
// read error, the test fails.
func NewReceiver(t testing.TB, c *net.UDPConn) *Receiver {
	t.Helper()
	r := &Receiver{
		c:       c,
		addr:    sendableAddr(localAddrPort(c)),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	go r.readLoop()
	t.Cleanup(func() {
		r.mu.Lock()
		r.stop = true
		r.mu.Unlock()
		c.SetReadDeadline(time.Now()) // wakes the read loop
		<-r.done
		if err := r.loopErr(); err != nil {
			t.Errorf("testnet: receiver on %v stopped early: %v", r.addr, err)
		}
	})
	return r
}

// sendableAddr turns the address a socket is bound to into one a sender on
// the same host can send to: a wildcard address becomes the loopback address
// of its family.
func sendableAddr(ap netip.AddrPort) netip.AddrPort {
	switch a := ap.Addr(); {
	case a == netip.IPv6Unspecified():
		return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
	case a == netip.IPv4Unspecified():
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	}
	return ap
}

// readLoop appends a copy of each datagram arriving on r.c to r.got until a
// read fails: because the cleanup set a read deadline to stop it, because
// the socket was closed, or unexpectedly (kept in r.err).
//
// It reads one datagram per system call. recvmmsg(2) would need fewer calls,
// but the race detector then marks every byte of every buffer as written on
// each call (2 MiB for 32 full-size buffers), which made the reader ten times
// slower than a plain sender under -race. The large receive buffer absorbs
// bursts of batched sends instead.
func (r *Receiver) readLoop() {
	defer close(r.done)
	buf := make([]byte, readBufSize)
	for {
		n, from, err := r.c.ReadFromUDPAddrPort(buf)
		r.mu.Lock()
		if err == nil {
			r.got = append(r.got, Datagram{Payload: slices.Clone(buf[:n]), From: from})
			close(r.changed)
			r.changed = make(chan struct{})
		} else if !r.stop && !errors.Is(err, net.ErrClosed) {
			r.err = err
		}
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// loopErr returns the error that stopped the read loop early, if any.
func (r *Receiver) loopErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Addr returns the address to send to so that r receives: the socket's
// address, with a wildcard address replaced by loopback ([::] becomes [::1],
// 0.0.0.0 becomes 127.0.0.1). For a socket from [Host.ListenUDP] it is the
// host's address.
func (r *Receiver) Addr() netip.AddrPort { return r.addr }

// Count returns how many datagrams have arrived since r was made or last
// [Receiver.Reset].
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Reset forgets the datagrams received so far.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = nil
}

// Wait waits until at least count datagrams have arrived or timeout passes,
// and reports whether they arrived.
func (r *Receiver) Wait(count int, timeout time.Duration) bool {
	return len(r.Collect(count, timeout)) >= count
}

// Collect waits until at least count datagrams have arrived or timeout
// passes, then returns all datagrams received so far, in arrival order; that
// may be fewer than count, or more. It does not consume them: a later call
// returns them again until [Receiver.Reset].
func (r *Receiver) Collect(count int, timeout time.Duration) []Datagram {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		n, changed := len(r.got), r.changed
		r.mu.Unlock()
		if n >= count {
			return r.snapshot()
		}
		select {
		case <-changed:
		case <-deadline.C:
			return r.snapshot()
		}
	}
}

// Quiet waits until no new datagram has arrived for d, then returns all
// datagrams received so far. Tests use it to show that no extra datagrams
// follow the expected ones. It does not return while datagrams keep
// arriving more often than every d.
func (r *Receiver) Quiet(d time.Duration) []Datagram {
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-time.After(d):
			return r.snapshot()
		}
	}
}

// snapshot returns a copy of the datagrams received so far.
func (r *Receiver) snapshot() []Datagram {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}
