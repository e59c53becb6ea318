//go:build linux

package batchconn_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// Send-path tests across the veth test hosts: a named IPv6 zone, and paths
// with different MTUs.

// linkMAC returns the MAC address of h's veth link.
func linkMAC(t *testing.T, h *testnet.Host) string {
	t.Helper()
	return strings.TrimSpace(h.Exec(t, "cat", "/sys/class/net/"+h.Link+"/address"))
}

// listenIn opens a UDP socket on addr inside h's namespace, with a receive
// buffer large enough for a test's burst (as testnet's sockets have), closed
// in t.Cleanup after anything registered later.
func listenIn(t *testing.T, h *testnet.Host, network string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var uc *net.UDPConn
	err := h.Run(func() (err error) {
		uc, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("listening on %v in %s: %v", addr, h.Name, err)
	}
	t.Cleanup(func() { uc.Close() })
	rc, err := uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) })
	if serr != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v", serr)
	}
	return uc
}

func TestContractC13NamedZoneCostsNoAllocation(t *testing.T) {
	p := testnet.NewPair(t, testnet.LinkConfig{})
	// Link-local addresses without duplicate address detection, and a
	// neighbour entry, so that datagrams go out at once.
	p.A.Exec(t, "ip", "addr", "add", "fe80::a/64", "dev", p.A.Link, "nodad")
	p.B.Exec(t, "ip", "addr", "add", "fe80::b/64", "dev", p.B.Link, "nodad")
	p.A.Exec(t, "ip", "neigh", "add", "fe80::b", "lladdr", linkMAC(t, p.B), "dev", p.A.Link, "nud", "permanent")

	rx := listenIn(t, p.B, "udp6", netip.MustParseAddrPort("[::]:0"))
	port := rx.LocalAddr().(*net.UDPAddr).Port
	// The zone is the sender's interface name, resolved in the sender's
	// namespace: the test sends from a thread inside it.
	dst := netip.MustParseAddrPort(fmt.Sprintf("[fe80::b%%%s]:%d", p.A.Link, port))
	c, err := batchconn.New(listenIn(t, p.A, "udp6", netip.MustParseAddrPort("[::]:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A GSO run, where GSO is in use, and a plain message.
	msgs := append(messages(dst, 3, 100), messages(dst, 1, 50)...)
	ctx := context.Background()

	var allocs float64
	var sendErr error
	if err := p.A.Run(func() error {
		if n, err := c.WriteMessages(ctx, msgs, 0); n != len(msgs) || err != nil {
			sendErr = fmt.Errorf("WriteMessages = %d, %v; want %d, nil", n, err, len(msgs))
			return nil
		}
		// Nobody reads while allocations are counted: a reader allocates.
		allocs = testing.AllocsPerRun(50, func() {
			if n, err := c.WriteMessages(ctx, msgs, 0); n != len(msgs) || err != nil {
				sendErr = fmt.Errorf("WriteMessages = %d, %v; want %d, nil", n, err, len(msgs))
			}
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	if allocs != 0 {
		t.Errorf("WriteMessages to %v allocates %v times per call, want 0", dst, allocs)
	}
	// The first call's datagrams arrived, over the named interface.
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for i := range msgs {
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], flat(msgs[i])) || from.Addr().WithZone("") != netip.MustParseAddr("fe80::a") {
			t.Fatalf("datagram %d: %d bytes from %v, want %d bytes from fe80::a", i, n, from, len(flat(msgs[i])))
		}
	}
}

func TestContractC14SmallMTUDestinationKeepsOthersGSO(t *testing.T) {
	gsoRequire(t)
	p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1500})
	// A second address on B, reached from A over a route with a 1280-byte
	// MTU: 1400-byte segments fit the link but not that path.
	a4 := p.B.Addr4.As4()
	a4[3] = 3
	small := netip.AddrFrom4(a4)
	p.B.Exec(t, "ip", "addr", "add", small.String()+"/32", "dev", p.B.Link)
	p.A.Exec(t, "ip", "route", "add", small.String()+"/32", "dev", p.A.Link, "mtu", "lock", "1280")
	p.A.Exec(t, "ip", "neigh", "add", small.String(), "lladdr", linkMAC(t, p.B), "dev", p.A.Link, "nud", "permanent")

	uc := p.A.ListenUDP(t, "udp4", 0)
	c := gsoConn(t, uc)
	rxs := []*testnet.Receiver{
		testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0)),
		testnet.NewReceiver(t, listenIn(t, p.B, "udp4", netip.AddrPortFrom(small, 0))),
	}
	dst := []netip.AddrPort{rxs[0].Addr(), rxs[1].Addr()}

	// 20 runs to the small-MTU path: after maxDestGSOFailures refused GSO
	// sends (4) it gets plain datagrams, and GSO stays on for the Conn.
	// A 700-byte tail ends each run.
	first := &gsoBatch{dst: dst}
	for range 20 {
		first.to(1, 1400, 1400, 1400, 1400, 700)
	}
	// Then runs to both: the normal path still gets GSO runs; the small
	// one does not.
	second := &gsoBatch{dst: dst}
	for range 5 {
		second.to(0, 1400, 1400, 1400, 1400, 700).to(1, 1400, 1400, 1400, 1400, 700)
	}
	for _, step := range []struct {
		msgs               []batchconn.Message
		batches, fallbacks uint64
	}{
		{first.msgs, 0, 4},
		{second.msgs, 5, 4},
	} {
		n, err := c.WriteMessages(context.Background(), step.msgs, 0)
		if n != len(step.msgs) || err != nil {
			t.Fatalf("WriteMessages of %d messages = (%d, %v), want all sent", len(step.msgs), n, err)
		}
		st := c.Stats()
		if st.GSOBatches != step.batches || st.GSOFallbacks != step.fallbacks || !c.GSOEnabled() {
			t.Errorf("Stats: GSOBatches %d, GSOFallbacks %d, GSOEnabled %v (%s); want %d, %d, true",
				st.GSOBatches, st.GSOFallbacks, c.GSOEnabled(), st.GSOOff, step.batches, step.fallbacks)
		}
	}
	gsoCheckArrivals(t, uc, rxs, dst, append(first.msgs, second.msgs...))
}

// TestContractC14GSOComesBackWhenThePathMTUGrows lowers a path's MTU below
// the segments until the Conn turns GSO off for that destination, checks
// that a retry while it stays low costs one refused send, then raises the
// MTU and checks that the destination gets GSO runs again within
// GSORetryDatagrams datagrams, with every datagram delivered throughout.
func TestContractC14GSOComesBackWhenThePathMTUGrows(t *testing.T) {
	gsoRequire(t)
	p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1500})
	p.A.Exec(t, "ip", "route", "add", p.B.Addr4.String()+"/32", "dev", p.A.Link, "mtu", "lock", "1280")
	uc := p.A.ListenUDP(t, "udp4", 0)
	c := gsoConn(t, uc)
	rx := testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))
	dst := []netip.AddrPort{rx.Addr()}

	var all []batchconn.Message
	send := func() batchconn.Stats {
		t.Helper()
		b := &gsoBatch{dst: dst}
		b.to(0, gsoSizes(32, 1400)...) // one GSO run (44800 bytes) per call
		if n, err := c.WriteMessages(context.Background(), b.msgs, 0); n != len(b.msgs) || err != nil {
			t.Fatalf("WriteMessages = %d, %v; want %d, nil", n, err, len(b.msgs))
		}
		all = append(all, b.msgs...)
		return c.Stats()
	}
	// Each call offers GSO at 31 of its 32 datagrams (the last starts no run).
	bound := batchconn.GSORetryDatagrams/31 + 2

	// Over the small MTU: refused maxDestGSOFailures (4) times, then off.
	var st batchconn.Stats
	for want := range uint64(4) {
		if st = send(); st.GSOBatches != 0 || st.GSOFallbacks != want+1 || !c.GSOEnabled() {
			t.Fatalf("call %d: GSOBatches %d, GSOFallbacks %d, GSOEnabled %v; want 0, %d, true", want+1, st.GSOBatches, st.GSOFallbacks, c.GSOEnabled(), want+1)
		}
	}
	if st = send(); st.GSOFallbacks != 4 {
		t.Fatalf("after 4 refusals: GSOFallbacks %d, want 4 (no more GSO sends)", st.GSOFallbacks)
	}
	// Still small: one retry, refused, and off again.
	calls := 0
	for st.GSOFallbacks == 4 {
		if calls++; calls > bound {
			t.Fatalf("no GSO retry in %d calls of 32 datagrams", bound)
		}
		st = send()
	}
	if st.GSOFallbacks != 5 || st.GSOBatches != 0 {
		t.Fatalf("a retry over the small MTU: GSOFallbacks %d, GSOBatches %d; want 5, 0", st.GSOFallbacks, st.GSOBatches)
	}
	if st = send(); st.GSOFallbacks != 5 {
		t.Fatalf("a refused retry did not turn GSO off again: GSOFallbacks %d, want 5", st.GSOFallbacks)
	}

	// The path's MTU grows back: GSO returns within the bound, and stays.
	p.A.Exec(t, "ip", "route", "change", p.B.Addr4.String()+"/32", "dev", p.A.Link, "mtu", "lock", "1500")
	calls = 0
	for st.GSOBatches == 0 {
		if calls++; calls > bound {
			t.Fatalf("no GSO send in %d calls of 32 datagrams after the MTU grew", bound)
		}
		st = send()
	}
	before := st
	st = send()
	if st.GSOFallbacks != before.GSOFallbacks || st.GSOBatches <= before.GSOBatches {
		t.Errorf("after GSO came back: GSOFallbacks %d → %d, GSOBatches %d → %d; want no refusals and more GSO sends",
			before.GSOFallbacks, st.GSOFallbacks, before.GSOBatches, st.GSOBatches)
	}
	gsoCheckArrivals(t, uc, []*testnet.Receiver{rx}, dst, all)
}
