package testnet

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/batchconn/batchconn/internal/netns"
)

// LinkConfig describes the veth link of a [Pair].
type LinkConfig struct {
	// MTU of both ends; 0 means 1500.
	MTU int
	// Rate, if not empty, puts a tc tbf qdisc with this rate (a tc(8) rate
	// such as "1mbit") on A's egress, so packets A sends wait in the qdisc
	// and keep A's socket send buffer full.
	Rate string
	// Burst and Limit are the tbf bucket size and queue length, in tc(8)
	// size syntax ("16kb"). They only matter when Rate is set. Burst
	// defaults to 16kb or two MTUs, whichever is larger. Limit defaults to
	// 1mb, more than a socket with the default SO_SNDBUF (208 KiB) can have
	// queued, so the sender's socket fills up before the qdisc drops
	// anything; raise it for senders with a larger SO_SNDBUF. See
	// [Pair.SetRate].
	Burst, Limit string
}

// Host is one end of a [Pair]: a network namespace with one veth link.
type Host struct {
	Name  string     // name of the network namespace, as ip-netns(8) lists it
	Addr4 netip.Addr // IPv4 address on Link, in 198.18.0.0/15 (RFC 2544)
	Addr6 netip.Addr // IPv6 address on Link, in 2001:2::/48 (RFC 5180); invalid if the kernel has no IPv6
	Link  string     // name of the veth device inside the namespace
	h     *netns.Host
}

// Pair is two hosts, A and B, joined by a veth link.
type Pair struct {
	A, B *Host
	cfg  LinkConfig // with MTU set
	rate string     // rate of the tbf on A's egress; "" if there is none
}

// NewPair creates two network namespaces, A and B, joined by a veth pair
// configured by cfg, and deletes them in t.Cleanup: an [netns.Pair] of the
// prefix "testnet". With pair number n (n mod 256 = x), A has 198.18.x.1/24
// and 2001:2:0:x::1/64, B has .2 and ::2. Both ends have permanent
// neighbour entries for each other, so the first datagrams are not queued
// (and possibly dropped) waiting for ARP or neighbour discovery, and the
// IPv6 addresses skip duplicate address detection, so they are usable at
// once.
//
// NewPair skips the test when it cannot create namespaces: on platforms
// other than Linux, when not root, or when ip(8) or tc(8) is missing.
func NewPair(t testing.TB, cfg LinkConfig) *Pair {
	t.Helper()
	RequireRoot(t)
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	np, err := netns.New("testnet", cfg.MTU)
	if err != nil {
		if strings.Contains(err.Error(), "not permitted") || strings.Contains(err.Error(), "denied") {
			t.Skipf("testnet: cannot create network namespaces: %v", err)
		}
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := np.Remove(); err != nil {
			t.Errorf("testnet: %v", err)
		}
	})
	host := func(h *netns.Host) *Host {
		return &Host{Name: h.Name, Addr4: h.Addr4, Addr6: h.Addr6, Link: h.Link, h: h}
	}
	p := &Pair{A: host(np.A), B: host(np.B), cfg: cfg}
	if cfg.Rate != "" {
		p.SetRate(t, cfg.Rate)
	}
	return p
}

// SetRate replaces the tbf qdisc on A's egress with one of the given rate,
// with the Burst and Limit of the pair's [LinkConfig]. An empty rate removes
// the qdisc, so the link runs at full speed again. SetRate must not be called
// concurrently with itself.
//
// To make a UDP sender on A get EAGAIN, the qdisc must hold packets rather
// than drop them: a packet counts against its socket's send buffer until the
// qdisc sends or drops it, and a UDP socket ignores qdisc drops. So the
// limit must exceed what the socket's SO_SNDBUF holds; shrinking the
// sender's SO_SNDBUF makes EAGAIN come after a few sends. With rate "1mbit"
// and the default Limit, 1200-byte datagrams get EAGAIN after about 17
// sends with SO_SNDBUF 4096, and after about 106 with the default SO_SNDBUF.
func (p *Pair) SetRate(t testing.TB, rate string) {
	t.Helper()
	tc := []string{"tc", "-n", p.A.Name, "qdisc"}
	if rate == "" {
		if p.rate != "" { // "del" fails when there is no qdisc
			mustCommand(t, append(tc, "del", "dev", p.A.Link, "root")...)
		}
		p.rate = ""
		return
	}
	burst, limit := p.cfg.Burst, p.cfg.Limit
	if burst == "" {
		burst = strconv.Itoa(max(16<<10, 2*p.cfg.MTU))
	}
	if limit == "" {
		limit = "1mb"
	}
	mustCommand(t, append(tc, "replace", "dev", p.A.Link, "root",
		"tbf", "rate", rate, "burst", burst, "limit", limit)...)
	p.rate = rate
}

// ListenUDP opens a UDP socket inside h's namespace, bound to h's address
// and the given port (0 picks a free one), with a large receive buffer, and
// closes it in t.Cleanup. network is "udp4" (bind to Addr4) or "udp6" (bind
// to Addr6). The socket stays in h's namespace and may be used from any
// goroutine.
func (h *Host) ListenUDP(t testing.TB, network string, port int) *net.UDPConn {
	t.Helper()
	var ip netip.Addr
	switch network {
	case "udp4":
		ip = h.Addr4
	case "udp6":
		ip = h.Addr6
	default:
		t.Fatalf("testnet: Host.ListenUDP: unsupported network %q (want udp4 or udp6)", network)
	}
	laddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
	var c *net.UDPConn
	err := h.Run(func() (err error) {
		c, err = net.ListenUDP(network, laddr)
		return err
	})
	if err != nil {
		t.Fatalf("testnet: listening on %v in %s: %v", laddr, h.Name, err)
	}
	manage(t, c)
	return c
}

// Run calls fn on an OS thread that has joined h's namespace, and returns
// fn's error. Sockets fn opens stay in the namespace; everything else the
// thread does, such as net.InterfaceByName, sees the namespace's view.
// fn runs on its own goroutine, so it must not call t.FailNow (or t.Fatal);
// if it does, Run returns an error.
//
// The thread leaves the namespace when fn returns. If it cannot, it is
// never reused: its goroutine exits still locked to it, and the Go runtime
// then ends the thread.
func (h *Host) Run(fn func() error) error { return h.h.Run(fn) }

// Exec runs a command inside h's namespace (ip netns exec) and returns its
// combined output. A failing command fails the test.
func (h *Host) Exec(t testing.TB, args ...string) string {
	t.Helper()
	return mustCommand(t, append([]string{"ip", "netns", "exec", h.Name}, args...)...)
}

// RequireRoot skips the test unless it can create network namespaces: the
// platform is Linux, the effective user is root, and the ip(8) and tc(8)
// commands exist.
func RequireRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("testnet: network namespaces need Linux, not %s", runtime.GOOS)
	}
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("testnet: network namespaces need root, running as uid %d", euid)
	}
	for _, cmd := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("testnet: network namespaces need the %s command: %v", cmd, err)
		}
	}
}

// command runs a command and returns its combined output.
func command(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// mustCommand runs a command, fails the test if it fails, and returns its
// combined output.
func mustCommand(t testing.TB, args ...string) string {
	t.Helper()
	out, err := command(args...)
	if err != nil {
		t.Fatalf("testnet: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
