package quicbatch

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/batchconn/batchconn/internal/testnet"
)

// kernelErr is the shape of a send error from batchconn's single-datagram
// methods: the kernel's errno from sendmsg, wrapped once per layer.
func kernelErr(errno syscall.Errno) error {
	return &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmsg", errno)}
}

// inject puts fail in front of c's sends, before batchconn: a packet it
// fails is not sent, and its writer gets the error at once. It is for
// packets whose writer waits for their result (no queue: the guards
// below), and for watching every packet (fail returning nil).
func inject(c *Conn, fail func(b, oob []byte, addr netip.AddrPort) error) {
	for _, send := range []*func(b, oob []byte, addr netip.AddrPort) error{&c.s.queue, &c.s.sendOne} {
		real := *send
		*send = func(b, oob []byte, addr netip.AddrPort) error {
			if err := fail(b, oob, addr); err != nil {
				return err
			}
			return real(b, oob, addr)
		}
	}
}

// noGSODevice fails every GSO buffer with EIO, as udp_send_skb does on a
// device without TX checksum offload.
func noGSODevice(b, oob []byte, _ netip.AddrPort) error {
	if isGSO(b, oob) {
		return kernelErr(syscall.EIO)
	}
	return nil
}

// smallMTU fails every datagram (or GSO segment) above 1300 bytes with
// EMSGSIZE, as a path with a small MTU does with DF set.
func smallMTU(b, oob []byte, _ netip.AddrPort) error {
	size := len(b)
	if seg := segmentOf(oob); seg > 0 {
		size = min(size, seg)
	}
	if size > 1300 {
		return kernelErr(syscall.EMSGSIZE)
	}
	return nil
}

// skipQuicGoEIORace skips a test in which quic-go itself gets EIO under the
// race detector: quic-go v0.66 writes sconn.gotGSOError in the send
// goroutine (send_conn.go:78) and reads it in the connection's run loop
// (send_conn.go:112) without synchronisation, a race in quic-go, not here.
// The wrapper's own EIO handling is race-tested in sender_linux_test.go.
func skipQuicGoEIORace(t *testing.T) {
	if raceEnabled {
		t.Skip("quic-go v0.66 races on sconn.gotGSOError after EIO (send_conn.go:78 vs :112)")
	}
}

// The guards below run with no queue (WithAsync(false)), so every error
// reaches quic-go itself. If one fails after a quic-go upgrade, quic-go's
// reaction to that error shape changed.

func TestGuardQuicGoTurnsGSOOffOnEIO(t *testing.T) {
	skipQuicGoEIORace(t)
	skipUnlessQuicGoGSO(t)
	srv, cli := newSide(t, true, WithAsync(false)), newSide(t, true)
	inject(srv.qb, noGSODevice)
	res := transfer(t, srv, cli, 1, testSize(16<<20), true)
	checkGSO(t, res.server, false)
}

func TestGuardQuicGoTreatsEMSGSIZEAsLoss(t *testing.T) {
	srv, cli := newSide(t, true, WithAsync(false)), newSide(t, true, WithAsync(false))
	inject(srv.qb, smallMTU)
	inject(cli.qb, smallMTU)
	transfer(t, srv, cli, 1, testSize(16<<20), true)
}

func TestGuardQuicGoRetriesAFirstEPERM(t *testing.T) {
	srv, cli := newSide(t, true), newSide(t, true, WithAsync(false))
	var first atomic.Bool
	inject(cli.qb, func(b, oob []byte, _ netip.AddrPort) error {
		if first.CompareAndSwap(false, true) {
			return kernelErr(syscall.EPERM) // golang/go#63322
		}
		return nil
	})
	transfer(t, srv, cli, 1, 1<<20, true)
}

// The fault tests run with the default queue on the real kernel, so the
// errors hit queued packets, and the wrapper's policy (batchconn's queue
// underneath) must keep connections alive and data intact.

// On UDP-Lite sockets the kernel fails every GSO send with EIO, as a
// device that cannot segment does: quic-go's GSO buffers, queued, are
// resent split, and batchconn's own GSO goes off.
func TestFaultQueuedEIOKeepsConnectionsAlive(t *testing.T) {
	skipUnlessQuicGoGSO(t) // EIO is met by GSO buffers only
	srv, cli := newSideWith(t, testnet.ListenUDPLite(t, loopback4), true), newSideWith(t, testnet.ListenUDPLite(t, loopback4), true)
	transfer(t, srv, cli, 8, testSize(64<<20)/8, true)
	logStats(t, "server", srv)
	if st := srv.qb.Stats(); st.GSOSplits == 0 || st.GSO {
		t.Errorf("server: GSOSplits %d, GSO %v; want quic-go's GSO buffers split after EIO and GSO off", st.GSOSplits, st.GSO)
	}
}

// Over a veth link with a 1300-byte MTU, quic-go's path MTU probes (DF
// set) get EMSGSIZE: queued, they are dropped and counted, which quic-go's
// DPLPMTUD takes as the loss it expects.
func TestFaultQueuedEMSGSIZEKeepsConnectionsAlive(t *testing.T) {
	p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1300})
	srv := newSideWith(t, p.A.ListenUDP(t, "udp4", 0), true)
	cli := newSideWith(t, p.B.ListenUDP(t, "udp4", 0), true)
	transfer(t, srv, cli, 8, testSize(64<<20)/8, true)
	logStats(t, "server", srv)
	logStats(t, "client", cli)
}
