// Package netns makes two Linux network namespaces joined by a veth link:
// two hosts on one real link, with its MTU and each peer's full receive
// path. The test hosts of internal/testnet, batchbench -netns and wgbench
// are such pairs.
//
// A pair is made with the ip(8) command and needs root. A socket is opened
// inside a namespace by running code on one locked OS thread that enters it
// with setns(2) ([Host.Run]); the socket stays in that namespace, so the
// rest of the program uses it from any goroutine. Child processes run there
// through `ip netns exec NAME`.
package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Host is one end of a [Pair]: a network namespace with one veth link.
type Host struct {
	Name  string     // of the network namespace, as ip-netns(8) lists it
	Addr4 netip.Addr // on Link, in 198.18.0.0/15 (RFC 2544, benchmarking)
	Addr6 netip.Addr // on Link, in 2001:2::/48 (RFC 5180); invalid when the kernel has no IPv6
	Link  string     // the veth device inside the namespace
	MAC   string     // Link's address
}

// Pair is two hosts, A and B, joined by a veth link.
type Pair struct {
	A, B *Host
	made []string // namespaces to delete
}

// pairs numbers the pairs this process makes, so that the names of parallel
// ones differ. The number also picks the pair's subnets; those need not be
// unique, since every pair has namespaces of its own, but distinct ones make
// logs easier to read.
var pairs atomic.Uint32

// New makes two network namespaces, prefix-<pid>-<n>-a and -b, joined by a
// veth pair of the given MTU (0: 1500), and returns them. With pair number
// n (n mod 256 = x), A has 198.18.x.1/24 and 2001:2:0:x::1/64, B has .2 and
// ::2. Each end has a permanent neighbour entry for the other, so the first
// datagrams are not queued (and possibly dropped) waiting for ARP or
// neighbour discovery; the IPv6 addresses skip duplicate address detection,
// so they are usable at once; and New returns only once both links run.
// The first New for a prefix deletes the namespaces of that prefix left by
// processes no longer running (killed before they could clean up).
//
// On an error New deletes what it made. Remove deletes the pair.
func New(prefix string, mtu int) (_ *Pair, err error) {
	if mtu == 0 {
		mtu = 1500
	}
	if _, done := cleaned.LoadOrStore(prefix, true); !done {
		removeStale(prefix)
	}
	n := pairs.Add(1)
	x := n % 256
	host := func(end string, last byte) *Host {
		h := &Host{
			Name:  fmt.Sprintf("%s-%d-%d-%s", prefix, os.Getpid(), n, end),
			Addr4: netip.AddrFrom4([4]byte{198, 18, byte(x), last}),
			Link:  "veth-" + end,
			// Locally administered unicast, chosen here so that the
			// neighbour entries need not ask the kernel for them.
			MAC: fmt.Sprintf("02:00:c6:12:%02x:%02x", x, last),
		}
		if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
			h.Addr6 = netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::%d", x, last))
		}
		return h
	}
	p := &Pair{A: host("a", 1), B: host("b", 2)}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Remove())
		}
	}()
	for _, h := range []*Host{p.A, p.B} {
		if err := Command("ip", "netns", "add", h.Name); err != nil {
			return nil, err
		}
		// Deleting the namespace also deletes the veth end inside it.
		p.made = append(p.made, h.Name)
	}
	// Each veth end is made inside its namespace, so the fixed link names
	// cannot collide with other pairs. The ends get different interface
	// indexes (each fresh namespace would give both index 2): the kernel
	// applies a veth's carrier change at once only when the peer's index
	// differs from its own, and otherwise up to a second later.
	m := strconv.Itoa(mtu)
	if err := Command("ip", "link", "add", p.A.Link, "netns", p.A.Name, "index", "10", "address", p.A.MAC, "mtu", m, "type", "veth",
		"peer", "name", p.B.Link, "netns", p.B.Name, "index", "11", "address", p.B.MAC, "mtu", m); err != nil {
		return nil, err
	}
	for _, h := range []*Host{p.A, p.B} {
		for _, args := range [][]string{{"link", "set", "lo", "up"}, {"link", "set", h.Link, "up"}} {
			if err := Command(append([]string{"ip", "-n", h.Name}, args...)...); err != nil {
				return nil, err
			}
		}
	}
	for _, h := range []*Host{p.A, p.B} {
		if err := h.waitRunning(); err != nil {
			return nil, err
		}
	}
	for _, e := range []struct{ h, peer *Host }{{p.A, p.B}, {p.B, p.A}} {
		args := [][]string{
			{"addr", "add", e.h.Addr4.String() + "/24", "dev", e.h.Link},
			{"neigh", "add", e.peer.Addr4.String(), "lladdr", e.peer.MAC, "dev", e.h.Link, "nud", "permanent"},
		}
		if e.h.Addr6.IsValid() {
			args = append(args, []string{"addr", "add", e.h.Addr6.String() + "/64", "dev", e.h.Link, "nodad"},
				[]string{"neigh", "add", e.peer.Addr6.String(), "lladdr", e.peer.MAC, "dev", e.h.Link, "nud", "permanent"})
		}
		for _, a := range args {
			if err := Command(append([]string{"ip", "-n", e.h.Name}, a...)...); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// waitRunning waits until h's link is running (IFF_RUNNING). Bringing a
// veth up is asynchronous: the kernel's link watcher turns the carrier on
// and attaches the link's real qdisc later, and until then the link silently
// drops every packet. The watcher sets IFF_RUNNING just before it attaches
// the qdisc, holding the RTNL lock, so the ip(8) commands that follow (which
// take that lock) run only once the link works.
func (h *Host) waitRunning() error {
	const timeout = 5 * time.Second
	deadline := time.Now().Add(timeout)
	for {
		var running bool
		err := h.Run(func() error {
			ifi, err := net.InterfaceByName(h.Link)
			if err != nil {
				return err
			}
			running = ifi.Flags&net.FlagRunning != 0
			return nil
		})
		if err != nil || running {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s is not running after %v", h.Link, h.Name, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Run calls fn on an OS thread that has joined h's namespace, and returns
// fn's error. Sockets fn opens stay in the namespace; everything else the
// thread does, such as net.InterfaceByName, sees the namespace's view. fn
// runs on a goroutine of its own; if it ends that goroutine (t.FailNow,
// runtime.Goexit) instead of returning, Run returns [ErrGoexit].
//
// The thread leaves the namespace when fn returns. If it cannot, it is
// never reused: its goroutine exits still locked to it, and the Go runtime
// then ends the thread.
func (h *Host) Run(fn func() error) error {
	return inNetns("/run/netns/"+h.Name, fn)
}

// ErrGoexit is what [Host.Run] returns when fn ends its goroutine instead of
// returning.
var ErrGoexit = errors.New("netns: function run in a namespace did not return (t.FailNow or runtime.Goexit)")

// Remove deletes the namespaces, and with them the veth pair. It may be
// called more than once.
func (p *Pair) Remove() error {
	var errs []error
	for _, name := range p.made {
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			errs = append(errs, Command("ip", "netns", "del", name))
		}
	}
	p.made = nil
	return errors.Join(errs...)
}

// Command runs a command and returns an error with its output if it fails.
func Command(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var cleaned sync.Map // the prefixes whose stale namespaces are removed

// removeStale deletes the namespaces that New gave the prefix in processes
// that no longer run. Those of running processes, parallel test binaries
// say, stay.
func removeStale(prefix string) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	stale := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-(\d+)-\d+-[ab]$`)
	for line := range strings.SplitSeq(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ") // "name (id: 3)"
		m := stale.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // its process is still running
		}
		Command("ip", "netns", "del", name)
	}
}
