package testnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/internal/netns"
)

func TestPairCarriesUDPBothWaysOverIPv4AndIPv6(t *testing.T) {
	p := NewPair(t, LinkConfig{})
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			a := p.A.ListenUDP(t, network, 0)
			b := p.B.ListenUDP(t, network, 0)
			rxA, rxB := NewReceiver(t, a), NewReceiver(t, b)

			sendNumbered(t, a, rxB.Addr(), 100)
			checkNumbered(t, rxB.Collect(100, 10*time.Second), 100, localAddrPort(a))
			sendNumbered(t, b, rxA.Addr(), 100)
			checkNumbered(t, rxA.Collect(100, 10*time.Second), 100, localAddrPort(b))
		})
	}
}

func TestHostListenUDPBindsToTheHostsAddress(t *testing.T) {
	p := NewPair(t, LinkConfig{})
	tests := []struct {
		network string
		want    netip.Addr
	}{
		{"udp4", p.B.Addr4},
		{"udp6", p.B.Addr6},
	}
	for _, tt := range tests {
		rx := NewReceiver(t, p.B.ListenUDP(t, tt.network, 4242))
		if want := netip.AddrPortFrom(tt.want, 4242); rx.Addr() != want {
			t.Errorf("%s: Addr() = %v, want %v", tt.network, rx.Addr(), want)
		}
	}
}

func TestPairAppliesMTU(t *testing.T) {
	const mtu = 1280 // the IPv6 minimum, below every default
	p := NewPair(t, LinkConfig{MTU: mtu})
	for _, h := range []*Host{p.A, p.B} {
		var ifi *net.Interface
		err := h.Run(func() (err error) {
			ifi, err = net.InterfaceByName(h.Link)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if ifi.MTU != mtu {
			t.Errorf("%s: %s has MTU %d, want %d", h.Name, h.Link, ifi.MTU, mtu)
		}
	}
	// The largest IPv4 datagram that is not fragmented arrives whole.
	a := p.A.ListenUDP(t, "udp4", 0)
	rx := NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))
	payload := make([]byte, mtu-20-8) // IPv4 and UDP headers
	if _, err := a.WriteToUDPAddrPort(payload, rx.Addr()); err != nil {
		t.Fatal(err)
	}
	if got := rx.Collect(1, 10*time.Second); len(got) != 1 || len(got[0].Payload) != len(payload) {
		t.Fatalf("got %d datagrams, want one of %d bytes", len(got), len(payload))
	}
}

func TestHostRunLeavesTheCallersNamespaceAlone(t *testing.T) {
	p := NewPair(t, LinkConfig{})
	before, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := p.A.Run(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// The test goroutine and the threads Run used are back where they were:
	// the veth is not visible here.
	if _, err := net.InterfaceByName(p.A.Link); err == nil {
		t.Errorf("%s is visible outside its namespace", p.A.Link)
	}
	if after, _ := os.Readlink("/proc/self/ns/net"); after != before {
		t.Errorf("process namespace changed from %s to %s", before, after)
	}

	wantErr := errors.New("from fn")
	if err := p.A.Run(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Run returned %v, want fn's error", err)
	}
	if err := p.A.Run(func() error { runtime.Goexit(); return nil }); !errors.Is(err, netns.ErrGoexit) {
		t.Errorf("Run of a function that calls runtime.Goexit returned %v, want netns.ErrGoexit", err)
	}
}

func TestHostExecRunsInsideTheNamespace(t *testing.T) {
	p := NewPair(t, LinkConfig{})
	out := p.B.Exec(t, "ip", "-brief", "addr", "show", "dev", p.B.Link)
	if !strings.Contains(out, p.B.Addr4.String()) || !strings.Contains(out, p.B.Addr6.String()) {
		t.Errorf("ip addr in %s shows\n%s\nwant %v and %v", p.B.Name, out, p.B.Addr4, p.B.Addr6)
	}
}

// sendUntilEAGAIN sends datagrams of size bytes from c to dst with
// non-blocking sendto(2) until it fails with EAGAIN or max sends succeeded,
// and returns how many succeeded.
func sendUntilEAGAIN(t *testing.T, c *net.UDPConn, dst netip.AddrPort, size, max int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}
	buf := make([]byte, size)
	sent := 0
	var sendErr error
	err = rc.Control(func(fd uintptr) {
		for sent < max {
			if sendErr = unix.Sendto(int(fd), buf, unix.MSG_DONTWAIT, sa); sendErr != nil {
				return
			}
			sent++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if sendErr != nil && sendErr != unix.EAGAIN {
		t.Fatalf("sendto after %d sends: %v", sent, sendErr)
	}
	return sent
}

func TestRateLimitedSenderGetsEAGAIN(t *testing.T) {
	// A full send buffer, not the qdisc, must stop the sender; with the
	// default Limit the qdisc holds more than the socket can have queued.
	tests := []struct {
		name   string
		sndbuf int // 0: the default, net.core.wmem_default
		size   int
	}{
		{"with SO_SNDBUF 4096", 4096, 1200},
		{"with the default SO_SNDBUF", 0, 1200},
		{"with small datagrams", 0, 100},
	}
	const maxSends = 10000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := NewPair(t, LinkConfig{Rate: "1mbit"})
			c := p.A.ListenUDP(t, "udp4", 0)
			if tt.sndbuf > 0 {
				if err := c.SetWriteBuffer(tt.sndbuf); err != nil {
					t.Fatal(err)
				}
			}
			dst := netip.AddrPortFrom(p.B.Addr4, 9)
			sent := sendUntilEAGAIN(t, c, dst, tt.size, maxSends)
			if sent == maxSends {
				t.Fatalf("no EAGAIN after %d sends", sent)
			}
			t.Logf("EAGAIN after %d sends", sent)

			// Removing the rate limit empties the qdisc, which frees the send
			// buffer: a blocking write succeeds again.
			p.SetRate(t, "")
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.WriteToUDPAddrPort(make([]byte, tt.size), dst); err != nil {
				t.Fatalf("write after removing the rate limit: %v", err)
			}
		})
	}
}

func TestSetRateReplacesAndRemovesTheQdisc(t *testing.T) {
	p := NewPair(t, LinkConfig{})
	qdisc := func() string { return p.A.Exec(t, "tc", "qdisc", "show", "dev", p.A.Link, "root") }
	if q := qdisc(); strings.Contains(q, "tbf") {
		t.Fatalf("unlimited link has a tbf qdisc: %s", q)
	}
	p.SetRate(t, "2mbit")
	if q := qdisc(); !strings.Contains(q, "tbf") || !strings.Contains(q, "rate 2Mbit") {
		t.Fatalf("after SetRate(2mbit): %s", q)
	}
	p.SetRate(t, "5mbit")
	if q := qdisc(); !strings.Contains(q, "rate 5Mbit") {
		t.Fatalf("after SetRate(5mbit): %s", q)
	}
	p.SetRate(t, "")
	if q := qdisc(); strings.Contains(q, "tbf") {
		t.Fatalf("after SetRate(\"\"): %s", q)
	}
	p.SetRate(t, "") // removing twice is fine
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	RequireRoot(t)
	var names []string
	t.Run("a pair with a listening socket", func(t *testing.T) {
		p := NewPair(t, LinkConfig{Rate: "1mbit"})
		names = []string{p.A.Name, p.B.Name}
		NewReceiver(t, p.B.ListenUDP(t, "udp6", 0))
	})
	t.Run("a pair whose test is skipped", func(t *testing.T) {
		p := NewPair(t, LinkConfig{})
		names = append(names, p.A.Name, p.B.Name)
		t.Skip("skipping must not leak the pair")
	})
	list := mustCommand(t, "ip", "netns", "list")
	for _, name := range names {
		if strings.Contains(list, name) {
			t.Errorf("namespace %s still listed after cleanup:\n%s", name, list)
		}
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			t.Errorf("/run/netns/%s still exists after cleanup", name)
		}
	}
}

func TestParallelPairsDoNotCollide(t *testing.T) {
	const pairs = 6
	for i := range pairs {
		t.Run(fmt.Sprintf("pair %d", i), func(t *testing.T) {
			t.Parallel()
			p := NewPair(t, LinkConfig{})
			a := p.A.ListenUDP(t, "udp4", 5000)
			rx := NewReceiver(t, p.B.ListenUDP(t, "udp4", 5000)) // same port in every pair
			msg := []byte(t.Name())
			for range 10 {
				if _, err := a.WriteToUDPAddrPort(msg, rx.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			rx.Wait(10, 10*time.Second)
			got := rx.Quiet(50 * time.Millisecond)
			if len(got) != 10 {
				t.Fatalf("got %d datagrams, want 10", len(got))
			}
			for _, d := range got {
				if string(d.Payload) != string(msg) {
					t.Fatalf("got %q, which another pair sent", d.Payload)
				}
			}
		})
	}
}
