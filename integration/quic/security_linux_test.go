package quicbatch

import (
	"cmp"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"
)

// rawForger sends IPv4 UDP datagrams with any source address and port,
// through an IPPROTO_RAW socket (which implies IP_HDRINCL).
type rawForger struct{ fd int }

// newRawForger opens the raw socket, or skips the test where that is not
// allowed (it needs root or CAP_NET_RAW).
func newRawForger(t *testing.T) *rawForger {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		t.Skipf("forging a UDP source port needs a raw socket (root or CAP_NET_RAW): %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &rawForger{fd: fd}
}

// send emits payload as one UDP datagram from src to dst, both IPv4.
func (f *rawForger) send(src, dst netip.AddrPort, payload []byte) error {
	const ipLen, udpLen = 20, 8
	pkt := make([]byte, ipLen+udpLen+len(payload))
	ip, udp := pkt[:ipLen], pkt[ipLen:ipLen+udpLen]
	ip[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	// The kernel fills in the IP checksum and ID (raw(7)); the UDP checksum
	// is ours to compute, over the pseudo-header, header and payload.
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(payload)))
	copy(pkt[ipLen+udpLen:], payload)
	var sum uint32
	add := func(b []byte) {
		for ; len(b) >= 2; b = b[2:] {
			sum += uint32(binary.BigEndian.Uint16(b))
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(s4[:])
	add(d4[:])
	sum += unix.IPPROTO_UDP + uint32(udpLen+len(payload))
	add(pkt[ipLen:])
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	ck := ^uint16(sum)
	if ck == 0 {
		ck = 0xffff // 0 would mean "no checksum"
	}
	binary.BigEndian.PutUint16(udp[6:], ck)
	return unix.Sendto(f.fd, pkt, 0, &unix.SockaddrInet4{Addr: d4})
}

// diverter is a plain net.PacketConn (not OOB-capable, so quic-go sends
// every packet through WriteTo) for a quic-go client that, when armed, does
// not send its next short-header packet but has it forged from UDP source
// port 0 instead: to the server, a valid packet of the connection arriving
// from a new path, 127.0.0.1:0, which quic-go then probes.
type diverter struct {
	udp    *net.UDPConn
	forger *rawForger
	armed  atomic.Bool
	forged atomic.Int32
	mu     sync.Mutex
	err    error // the first forging error
}

var _ net.PacketConn = (*diverter)(nil)

func (d *diverter) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) > 0 && p[0]&0x80 == 0 && d.armed.CompareAndSwap(true, false) {
		dst := addr.(*net.UDPAddr).AddrPort()
		if err := d.forger.send(netip.AddrPortFrom(dst.Addr(), 0), dst, p); err != nil {
			d.mu.Lock()
			d.err = cmp.Or(d.err, err)
			d.mu.Unlock()
		}
		d.forged.Add(1)
		return len(p), nil // as if sent: the real path just lost it
	}
	return d.udp.WriteTo(p, addr)
}

func (d *diverter) forgeErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *diverter) ReadFrom(p []byte) (int, net.Addr, error) { return d.udp.ReadFrom(p) }
func (d *diverter) Close() error                             { return d.udp.Close() }
func (d *diverter) LocalAddr() net.Addr                      { return d.udp.LocalAddr() }
func (d *diverter) SetDeadline(t time.Time) error            { return d.udp.SetDeadline(t) }
func (d *diverter) SetReadDeadline(t time.Time) error        { return d.udp.SetReadDeadline(t) }
func (d *diverter) SetWriteDeadline(t time.Time) error       { return d.udp.SetWriteDeadline(t) }

// Issue 8, item 1: one valid QUIC packet from source port 0 made quic-go
// probe 127.0.0.1:0; batchconn refused that address (EINVAL), the error
// stuck, and every later write on the server's socket failed. An error that
// belongs to one destination must be charged to that packet alone.
func TestSecurityPeerAtPortZeroCannotStopTheSocket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		async bool
	}{
		{"async (the default)", true},
		{"combining (WithAsync(false))", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testPeerAtPortZero(t, tc.async)
		})
	}
}

func testPeerAtPortZero(t *testing.T, async bool) {
	forger := newRawForger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv := newSide(t, true, WithAsync(async))
	var port0 atomic.Int32
	inject(srv.qb, func(_, _ []byte, addr netip.AddrPort) error {
		if addr.Port() == 0 {
			port0.Add(1)
		}
		return nil // the real batchconn below refuses port 0 itself
	})
	srvTLS, cliTLS := tlsConfigs(t)
	ln, err := srv.tr.Listen(srvTLS, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go serve(ctx, c)
		}
	}()

	// The innocent client connects before the attack.
	inno := newSide(t, true)
	innoConn, err := inno.tr.Dial(ctx, srv.udp.LocalAddr(), cliTLS, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer innoConn.CloseWithError(0, "")

	// The attacker: a real client whose next packet is re-sent from port 0.
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	div := &diverter{udp: udp, forger: forger}
	atr := &quic.Transport{Conn: div}
	defer udp.Close()
	defer atr.Close()
	ac, err := atr.Dial(ctx, srv.udp.LocalAddr(), cliTLS, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.CloseWithError(0, "")
	// One exchange first, so the server holds a spare connection ID of the
	// attacker's: quic-go probes a new path only with one.
	if _, err := fetchOn(ctx, ac, 1<<10, 99, true); err != nil {
		t.Fatalf("attacker's first exchange: %v", err)
	}
	for i := 0; port0.Load() == 0; i++ {
		if i == 100 {
			t.Fatalf("the server never wrote to port 0 after %d forged packets: quic-go no longer probes the path", div.forged.Load())
		}
		div.armed.Store(true)
		if str, err := ac.OpenStream(); err == nil {
			str.Write([]byte{0}) // any 1-RTT packet will do
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := div.forgeErr(); err != nil {
		t.Fatalf("forging: %v", err)
	}
	if err := srv.qb.Flush(); err != nil {
		t.Errorf("Flush after the probe to port 0: %v", err)
	}

	// Both the connection that existed and a new one must work.
	if _, err := fetchOn(ctx, innoConn, testSize(8<<20), 1, true); err != nil {
		t.Fatalf("innocent connection after the attack: %v", err)
	}
	if _, err := fetch(ctx, inno.tr, srv.udp.LocalAddr(), cliTLS, 1<<20, 2, true); err != nil {
		t.Fatalf("new connection after the attack: %v", err)
	}
	// A write to port 0 is never queued (batchconn's C17): quic-go gets
	// its EINVAL, on that path alone.
	st := srv.qb.Stats()
	t.Logf("server: %d writes to port 0, %d queued packets dropped", port0.Load(), st.Dropped)
}
