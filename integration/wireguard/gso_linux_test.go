//go:build linux

package wgbatch

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// bindOn returns a Bind open on c, as Open would leave it but for the
// socket, which Open cannot make.
func bindOn(t testing.TB, c *net.UDPConn, is6 bool) (*Bind, *socket) {
	t.Helper()
	bc, err := batchconn.New(c, batchconn.WithGSO(true))
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	b := NewBind()
	so := newSocket(bc, is6, 16)
	s := &sockets{v4: so}
	if is6 {
		s = &sockets{v6: so}
	}
	b.open.Store(s)
	t.Cleanup(func() { b.Close() })
	return b, so
}

// TestErrUDPGSODisabled: the kernel fails the Send's GSO run with EIO, so
// batchconn turns GSO off and resends the run plain; the peer gets every
// packet once, in order, and that one Send returns a
// conn.ErrUDPGSODisabled whose RetryErr is what the rest of the Send came
// to. wireguard-go (device/send.go) logs it and takes RetryErr as the
// Send's error. Later Sends return plain results and make no GSO sends.
func TestErrUDPGSODisabled(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		for _, tc := range []struct {
			name     string
			bufs     [][]byte
			retryErr syscall.Errno // 0: RetryErr nil
		}{
			{"a run of equal packets", packets(10, 500), 0},
			{"a run, then a packet UDP cannot carry", append(packets(10, 500), make([]byte, 70000)), syscall.EMSGSIZE},
		} {
			t.Run(family+"/"+tc.name, func(t *testing.T) {
				ip := loopback(t, family)
				wildcard := netip.IPv4Unspecified()
				if ip.Is6() {
					wildcard = netip.IPv6Unspecified()
				}
				b, so := bindOn(t, testnet.ListenUDPLite(t, wildcard), ip.Is6())
				if !so.c.GSOEnabled() {
					t.Skipf("no GSO on this host: %s", so.c.Stats().GSOOff)
				}
				p := peerOn(t, testnet.ListenUDPLite(t, ip))
				ep, _ := b.ParseEndpoint(p.addr.String())

				err := b.Send(tc.bufs, ep)
				var gsoErr conn.ErrUDPGSODisabled
				if !errors.As(err, &gsoErr) {
					t.Fatalf("Send whose GSO run got EIO: %v (%T), want a conn.ErrUDPGSODisabled", err, err)
				}
				if tc.retryErr == 0 && gsoErr.RetryErr != nil {
					t.Errorf("RetryErr %v, want nil: the plain resend went through", gsoErr.RetryErr)
				}
				if tc.retryErr != 0 && !errors.Is(gsoErr.RetryErr, tc.retryErr) {
					t.Errorf("RetryErr %v, want %v", gsoErr.RetryErr, tc.retryErr)
				}
				if tc.retryErr != 0 && !errors.Is(err, tc.retryErr) {
					t.Errorf("errors.Is(%v, %v) is false; ErrUDPGSODisabled unwraps to RetryErr", err, tc.retryErr)
				}
				got, _ := p.recv(t, 10)
				samePackets(t, got, tc.bufs[:10])
				st := so.c.Stats()
				if so.c.GSOEnabled() || !strings.Contains(st.GSOOff, "EIO") || st.GSOBatches != 0 {
					t.Errorf("after EIO: GSO enabled %v, GSOOff %q, %d GSO sends; want off for EIO, none", so.c.GSOEnabled(), st.GSOOff, st.GSOBatches)
				}

				// Once is enough: the next Sends say nothing of GSO.
				for range 2 {
					if err := b.Send(packets(10, 500), ep); err != nil {
						t.Fatalf("Send after GSO went off: %v", err)
					}
					got, _ := p.recv(t, 10)
					samePackets(t, got, packets(10, 500))
				}
				if n := so.c.Stats().GSOBatches; n != 0 {
					t.Errorf("%d GSO sends after GSO went off", n)
				}
			})
		}
	}
}
