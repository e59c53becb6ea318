//go:build linux

package batchconn_test

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// TestContractC14GSOWithIPRecvErr sends through a qdisc that holds 20,000
// bytes and does not drain. From a socket with IP_RECVERR (IPV6_RECVERR
// for IPv6), the kernel reports each datagram the qdisc drops (ENOBUFS),
// but a GSO send as accepted if any of its segments was queued: three
// calls of 40 × 1200 bytes must report with GSO on what they report with
// it off (n = the 16 or 17 that fit, depending on what else the kernel
// sent through the qdisc, then ENOBUFS twice; not 40, 40, ENOBUFS),
// however the option was set: before New, or through the Conn's
// SyscallConn (as x/net's ipv4 and ipv6 packages set options), or turned
// off again, when GSO must be back (every datagram reported sent, as with
// GSO off).
func TestContractC14GSOWithIPRecvErr(t *testing.T) {
	gsoRequire(t)
	cases := []struct {
		name          string
		network       string
		before, after int // the option's value before New, and set through SyscallConn after (-1: not)
	}{
		{"IP_RECVERR set before New", "udp4", 1, -1},
		{"IP_RECVERR set through the Conn's SyscallConn", "udp4", 0, 1},
		{"IP_RECVERR turned off through the Conn's SyscallConn", "udp4", 1, 0},
		{"IPV6_RECVERR set through the Conn's SyscallConn", "udp6", 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			level, opt := unix.IPPROTO_IP, unix.IP_RECVERR
			if tc.network == "udp6" {
				level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVERR
			}
			run := func(gso bool) (recvErrRun, batchconn.Stats) {
				t.Helper()
				p := testnet.NewPair(t, testnet.LinkConfig{Rate: "8bit", Burst: "1600", Limit: "20000"})
				udp := p.A.ListenUDP(t, tc.network, 0)
				rc, _ := udp.SyscallConn()
				rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), level, opt, tc.before) })
				c, err := batchconn.New(udp, batchconn.WithGSO(gso))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if tc.after >= 0 {
					rc, err := c.SyscallConn()
					if err != nil {
						t.Fatal(err)
					}
					var serr error
					rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, tc.after) })
					if serr != nil {
						t.Fatal(serr)
					}
				}
				rx := testnet.NewReceiver(t, p.B.ListenUDP(t, tc.network, 0))
				var r recvErrRun
				for i := range 3 {
					n, err := c.WriteMessages(context.Background(), messages(rx.Addr(), 40, 1200), 0)
					r.n[i], r.errno[i] = n, errnoOf(err)
				}
				return r, c.Stats()
			}
			reported := tc.after == 1 || (tc.after < 0 && tc.before == 1)
			for _, gso := range []bool{false, true} {
				r, st := run(gso)
				ok := r.n == [3]int{40, 40, 40} && r.errno == [3]unix.Errno{}
				if reported {
					ok = r.n[0] > 0 && r.n[0] < 40 && r.n[1] == 0 && r.n[2] == 0 &&
						r.errno == [3]unix.Errno{0, unix.ENOBUFS, unix.ENOBUFS}
				}
				if !ok {
					t.Errorf("GSO %v: n %v, errors %v; want %s", gso, r.n, r.errno,
						map[bool]string{true: "the datagrams that fit, then ENOBUFS twice", false: "all 40 three times (drops unreported)"}[reported])
				}
				if gso && !reported && st.GSOBatches == 0 {
					t.Errorf("without the option, no GSO send was made: %+v", st)
				}
			}
		})
	}
}

// A recvErrRun is what three calls of 40 datagrams gave.
type recvErrRun struct {
	n     [3]int
	errno [3]unix.Errno
}
