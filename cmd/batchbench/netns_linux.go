package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// netnsPair is two network namespaces, "snd" and "rcv", joined by a veth
// pair: two test hosts on one real link, with its MTU and the peer's full
// receive path. The process itself stays in its own namespace; sockets are
// created on a thread that briefly enters the other one, and keep it.
type netnsPair struct {
	snd, rcv         string // namespace names
	sndAddr, rcvAddr netip.Addr
	mtu              int
	fds              map[string]*os.File // open namespace handles, by name
	origin           *os.File            // the namespace the process started in
	once             sync.Once
}

const vethMTU = 1500

func setupNetns(v6 bool) (_ *netnsPair, err error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("-netns needs the ip command (iproute2): %w", err)
	}
	pid := os.Getpid()
	p := &netnsPair{
		snd:     fmt.Sprintf("batchbench-%d-snd", pid),
		rcv:     fmt.Sprintf("batchbench-%d-rcv", pid),
		sndAddr: netip.MustParseAddr("10.203.0.1"),
		rcvAddr: netip.MustParseAddr("10.203.0.2"),
		mtu:     vethMTU,
		fds:     map[string]*os.File{},
	}
	prefix := "/24"
	if v6 {
		p.sndAddr, p.rcvAddr, prefix = netip.MustParseAddr("fd00:203::1"), netip.MustParseAddr("fd00:203::2"), "/64"
	}
	if p.origin, err = os.Open("/proc/self/ns/net"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.cleanup()
		}
	}()
	sIf, rIf := fmt.Sprintf("bbs%d", pid), fmt.Sprintf("bbr%d", pid) // at most 15 bytes (IFNAMSIZ)
	sMAC, rMAC := "02:bb:00:00:00:01", "02:bb:00:00:00:02"
	mtu := fmt.Sprint(p.mtu)
	cmds := [][]string{
		{"netns", "add", p.snd},
		{"netns", "add", p.rcv},
		{"link", "add", sIf, "address", sMAC, "mtu", mtu, "netns", p.snd, "type", "veth",
			"peer", "name", rIf, "address", rMAC, "mtu", mtu, "netns", p.rcv},
		{"-n", p.snd, "link", "set", "lo", "up"},
		{"-n", p.rcv, "link", "set", "lo", "up"},
		{"-n", p.snd, "addr", "add", p.sndAddr.String() + prefix, "dev", sIf, "nodad"},
		{"-n", p.rcv, "addr", "add", p.rcvAddr.String() + prefix, "dev", rIf, "nodad"},
		{"-n", p.snd, "link", "set", sIf, "up"},
		{"-n", p.rcv, "link", "set", rIf, "up"},
		// Permanent neighbours: no ARP/ND exchange, nothing queued or dropped
		// while an entry is resolved or goes stale in the middle of a run.
		{"-n", p.snd, "neigh", "replace", p.rcvAddr.String(), "lladdr", rMAC, "dev", sIf, "nud", "permanent"},
		{"-n", p.rcv, "neigh", "replace", p.sndAddr.String(), "lladdr", sMAC, "dev", rIf, "nud", "permanent"},
	}
	for _, args := range cmds {
		if !v6 && args[len(args)-1] == "nodad" {
			args = args[:len(args)-1] // nodad (skip duplicate address detection) is for IPv6 only
		}
		if err := ip(args...); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{p.snd, p.rcv} {
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			return nil, err
		}
		p.fds[name] = f
	}
	return p, nil
}

func ip(args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// do runs f on a thread inside the namespace name. Sockets f opens belong to
// that namespace for good.
func (p *netnsPair) do(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(p.fds[name].Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace %s: %w", name, os.NewSyscallError("setns", err))
			return
		}
		ferr := func() (err error) {
			// A panic here would end the process before the namespaces
			// are removed; make it an error instead.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic in network namespace %s: %v", name, p)
				}
			}()
			return f()
		}()
		if err := unix.Setns(int(p.origin.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine rather
			// than run other goroutines in the wrong namespace.
			errc <- fmt.Errorf("leaving network namespace %s: %w", name, os.NewSyscallError("setns", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// cleanup deletes both namespaces (which destroys the veth pair). It is safe
// to call more than once. A signal ends the run (bench.SignalContext), not
// the process, so the deferred cleanup runs then too.
func (p *netnsPair) cleanup() {
	p.once.Do(func() {
		for _, f := range p.fds {
			f.Close()
		}
		for _, name := range []string{p.snd, p.rcv} {
			if _, err := os.Stat("/run/netns/" + name); err == nil {
				_ = ip("netns", "del", name)
			}
		}
		if p.origin != nil {
			p.origin.Close()
		}
	})
}
