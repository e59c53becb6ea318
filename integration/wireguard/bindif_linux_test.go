//go:build linux

package wgbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/internal/testnet"
)

// requireRoot skips the test unless it runs as root, saying what for.
func requireRoot(t testing.TB, what string) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("needs root: %s (running as uid %d)", what, euid)
	}
}

// sockopt reads an int socket option of fd.
func sockopt(t testing.TB, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d, %d): %v", fd, level, opt, err)
	}
	return v
}

// peekFds returns the fds PeekLookAtSocketFd4 and 6 give for the families
// the Bind has, keyed "v4" and "v6".
func peekFds(t testing.TB, b *Bind) map[string]int {
	t.Helper()
	fds := map[string]int{}
	for family, peek := range map[string]func() (int, error){"v4": b.PeekLookAtSocketFd4, "v6": b.PeekLookAtSocketFd6} {
		if b.socketFor(family) == nil {
			continue
		}
		fd, err := peek()
		if err != nil {
			t.Fatalf("PeekLookAtSocketFd (%s): %v", family, err)
		}
		fds[family] = fd
	}
	return fds
}

func TestPeekLookAtSocketFdIsTheOpenSocket(t *testing.T) {
	b, _, port := openBind(t)
	fds := peekFds(t, b)
	if len(fds) == 0 {
		t.Fatal("the Bind has no sockets")
	}
	for family, fd := range fds {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			t.Fatalf("%s: getsockname(%d): %v", family, fd, err)
		}
		var got int
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			got = sa.Port
			if family != "v4" {
				t.Errorf("PeekLookAtSocketFd6 gave an IPv4 socket")
			}
		case *unix.SockaddrInet6:
			got = sa.Port
			if family != "v6" {
				t.Errorf("PeekLookAtSocketFd4 gave an IPv6 socket")
			}
		}
		if got != int(port) {
			t.Errorf("%s: fd %d is bound to port %d, want the Bind's %d", family, fd, got, port)
		}
		if typ := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_DGRAM {
			t.Errorf("%s: fd %d has SO_TYPE %d, want SOCK_DGRAM", family, fd, typ)
		}
	}
	if fds["v6"] != 0 && sockopt(t, fds["v6"], unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) != 1 {
		t.Error("the udp6 socket is not IPv6-only")
	}
}

// TestPeekLookAtSocketFdOnAClosedBind: StdNetBind's fails with the EINVAL of
// a nil *net.UDPConn before Open and after Close; a Bind's says why.
func TestPeekLookAtSocketFdOnAClosedBind(t *testing.T) {
	b := NewBind()
	check := func(when string) {
		t.Helper()
		for name, peek := range map[string]func() (int, error){"4": b.PeekLookAtSocketFd4, "6": b.PeekLookAtSocketFd6} {
			if fd, err := peek(); !errors.Is(err, net.ErrClosed) || fd != -1 {
				t.Errorf("PeekLookAtSocketFd%s %s: %d, %v; want -1, net.ErrClosed", name, when, fd, err)
			}
		}
	}
	check("before Open")
	if _, _, err := b.Open(0); err != nil {
		t.Fatal(err)
	}
	b.Close()
	check("after Close")
}

// TestSetMark reads SO_MARK back from the sockets: SetMark marks the open
// sockets, a mark set while closed is applied at Open, one set after Close
// carries over to the next Open, and 0 clears it.
func TestSetMark(t *testing.T) {
	requireRoot(t, "SO_MARK needs CAP_NET_ADMIN")
	marks := func(b *Bind) map[string]int {
		got := map[string]int{}
		for family, fd := range peekFds(t, b) {
			got[family] = sockopt(t, fd, unix.SOL_SOCKET, unix.SO_MARK)
		}
		return got
	}
	want := func(b *Bind, mark int, when string) {
		t.Helper()
		for family, got := range marks(b) {
			if got != mark {
				t.Errorf("%s: %s socket has SO_MARK %#x, want %#x", when, family, got, mark)
			}
		}
	}

	b, _, port := openBind(t)
	want(b, 0, "a new Bind")
	if err := b.SetMark(0x51820); err != nil {
		t.Fatal(err)
	}
	want(b, 0x51820, "SetMark on the open Bind")

	b.Close()
	if err := b.SetMark(0xca11); err != nil {
		t.Fatalf("SetMark after Close: %v", err)
	}
	if _, _, err := b.Open(port); err != nil {
		t.Fatal(err)
	}
	want(b, 0xca11, "SetMark after Close, then Open")

	if err := b.SetMark(0); err != nil {
		t.Fatal(err)
	}
	want(b, 0, "SetMark(0)")
	b.Close()
	if _, _, err := b.Open(port); err != nil {
		t.Fatal(err)
	}
	want(b, 0, "reopened after SetMark(0)")

	fresh := NewBind()
	if err := fresh.SetMark(7); err != nil {
		t.Fatalf("SetMark before Open: %v", err)
	}
	if _, _, err := fresh.Open(0); err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	want(fresh, 7, "SetMark before the first Open")

	// The mark is on the packets: a marked send still reaches the peer.
	p := newPeer(t, loopback(t, "v4"))
	ep, _ := fresh.ParseEndpoint(p.addr.String())
	if err := fresh.Send(packets(3, 100), ep); err != nil {
		t.Fatal(err)
	}
	p.recv(t, 3)
}

// TestSetMarkWithoutPrivilege: without CAP_NET_ADMIN SetMark on an open Bind
// returns the kernel's EPERM and the mark is not kept; a mark set while
// the Bind is closed is kept, and Open then fails with that EPERM.
func TestSetMarkWithoutPrivilege(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root SetMark succeeds; this checks the unprivileged path")
	}
	b, _, port := openBind(t)
	if err := b.SetMark(1); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("SetMark without CAP_NET_ADMIN: %v, want EPERM", err)
	}
	b.Close()
	if _, _, err := b.Open(port); err != nil {
		t.Fatalf("Open after a failed SetMark: %v (the mark should not have been kept)", err)
	}
	b.Close()
	if err := b.SetMark(1); err != nil {
		t.Fatalf("SetMark on a closed Bind: %v", err)
	}
	if _, _, err := b.Open(port); !errors.Is(err, syscall.EPERM) {
		b.Close()
		t.Fatalf("Open with a mark it may not set: %v, want EPERM", err)
	}
	if err := b.SetMark(0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Open(port); err != nil {
		t.Fatalf("Open after SetMark(0): %v", err)
	}
}

func TestBindSocketToInterfaceErrors(t *testing.T) {
	b := NewBind()
	if err := b.BindSocketToInterface4(1, false); !errors.Is(err, net.ErrClosed) {
		t.Errorf("BindSocketToInterface4 on a closed Bind: %v, want net.ErrClosed", err)
	}
	if err := b.BindSocketToInterface6(1, false); !errors.Is(err, net.ErrClosed) {
		t.Errorf("BindSocketToInterface6 on a closed Bind: %v, want net.ErrClosed", err)
	}
	if _, _, err := b.Open(0); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Linux interface indices are positive ints; 1<<31 is negative to the
	// kernel. A failed bind keeps no blackhole.
	if err := b.BindSocketToInterface4(uint32(1<<31), true); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("BindSocketToInterface4(1<<31): %v, want EINVAL", err)
	}
	if b.socketFor("v4").blackhole.Load() {
		t.Error("a failed BindSocketToInterface4 turned the blackhole on")
	}
	// No interface has this index. SO_BINDTOIFINDEX does not check (unlike
	// SO_BINDTODEVICE, which looks the name up), so the bind succeeds and
	// the sends fail, with the kernel's ENODEV from the route lookup.
	const noSuchIndex = 1<<31 - 1
	if err := b.BindSocketToInterface4(noSuchIndex, false); err != nil {
		t.Fatalf("BindSocketToInterface4 to a missing interface: %v", err)
	}
	ep, _ := b.ParseEndpoint("127.0.0.1:9")
	if err := b.Send(packets(2, 100), ep); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("Send through a missing interface: %v, want ENODEV", err)
	}
}

// TestBindSocketToInterfaceLoopback binds the sockets to lo, which needs no
// privilege for a socket not yet bound: packets to and from the loopback
// address still flow, and SO_BINDTOIFINDEX reads back lo's index.
func TestBindSocketToInterfaceLoopback(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo interface: %v", err)
	}
	for _, family := range []string{"v4", "v6"} {
		t.Run(family, func(t *testing.T) {
			ip := loopback(t, family)
			b, fns, port := openBind(t)
			fn := fnFor(t, fns, family)
			bind := b.BindSocketToInterface4
			if family == "v6" {
				bind = b.BindSocketToInterface6
			}
			if err := bind(uint32(lo.Index), false); err != nil {
				t.Fatalf("BindSocketToInterface to lo (%d): %v", lo.Index, err)
			}
			fd := peekFds(t, b)[family]
			if got := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX); got != lo.Index {
				t.Errorf("SO_BINDTOIFINDEX = %d, want lo's %d", got, lo.Index)
			}
			p := newPeer(t, ip)
			ep, _ := b.ParseEndpoint(p.addr.String())
			if err := b.Send(packets(4, 200), ep); err != nil {
				t.Fatal(err)
			}
			p.recv(t, 4)
			p.send(t, netip.AddrPortFrom(ip, port), packets(2, 100))
			newReceiver().read(t, fn, 2)
		})
	}
}

// TestBindSocketToInterface runs a Bind in one namespace of a veth pair: bound
// to the veth, its packets to the other end leave through it and arrive;
// bound to lo, the same packets cannot leave; unbound (index 0) they flow
// again. With blackhole, Send drops the family's packets and reports
// success, as StdNetBind's, until the Bind is closed; the other family is
// untouched.
func TestBindSocketToInterface(t *testing.T) {
	pair := testnet.NewPair(t, testnet.LinkConfig{})
	var b *Bind
	var veth, lo *net.Interface
	if err := pair.A.Run(func() (err error) {
		if veth, err = net.InterfaceByName(pair.A.Link); err != nil {
			return err
		}
		if lo, err = net.InterfaceByName("lo"); err != nil {
			return err
		}
		b = NewBind()
		_, _, err = b.Open(0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	for _, family := range []string{"v4", "v6"} {
		t.Run(family, func(t *testing.T) {
			network, bind := "udp4", b.BindSocketToInterface4
			if family == "v6" {
				network, bind = "udp6", b.BindSocketToInterface6
			}
			if b.socketFor(family) == nil {
				t.Skipf("the Bind has no %s socket in the namespace", family)
			}
			rx := testnet.NewReceiver(t, pair.B.ListenUDP(t, network, 0))
			ep, err := b.ParseEndpoint(rx.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			arrives := func(what string) {
				t.Helper()
				rx.Reset()
				if err := b.Send(packets(3, 300), ep); err != nil {
					t.Fatalf("%s: Send: %v", what, err)
				}
				if got := rx.Collect(3, 5*time.Second); len(got) != 3 {
					t.Fatalf("%s: %d of 3 packets arrived", what, len(got))
				}
			}
			arrivesNot := func(what string, sendErrOK bool) {
				t.Helper()
				rx.Reset()
				err := b.Send(packets(3, 300), ep)
				if err != nil && !sendErrOK {
					t.Fatalf("%s: Send: %v, want nil", what, err)
				}
				if got := rx.Quiet(200 * time.Millisecond); len(got) != 0 {
					t.Fatalf("%s: %d packets arrived, want none (Send: %v)", what, len(got), err)
				}
			}

			if err := bind(uint32(veth.Index), false); err != nil {
				t.Fatalf("bind to %s: %v", veth.Name, err)
			}
			arrives("bound to the veth")

			if err := bind(uint32(lo.Index), false); err != nil {
				t.Fatalf("rebind to lo: %v", err)
			}
			// The kernel finds no route to B through lo: ENETUNREACH, or
			// the packets are lost on lo; either way none arrive.
			arrivesNot("bound to lo", true)

			if err := bind(0, false); err != nil {
				t.Fatalf("unbind: %v", err)
			}
			arrives("unbound")

			if err := bind(uint32(veth.Index), true); err != nil {
				t.Fatalf("bind with blackhole: %v", err)
			}
			before := b.socketFor(family).c.Stats().Syscalls
			arrivesNot("blackhole", false)
			if after := b.socketFor(family).c.Stats().Syscalls; after != before {
				t.Errorf("under the blackhole the socket made %d send calls, want none", after-before)
			}
			if err := bind(uint32(veth.Index), false); err != nil {
				t.Fatal(err)
			}
			arrives("blackhole turned off")
		})
	}

	// The blackhole of one family leaves the other alone, and Close ends it.
	if b.socketFor("v6") == nil {
		return
	}
	if err := b.BindSocketToInterface4(uint32(veth.Index), true); err != nil {
		t.Fatal(err)
	}
	rx6 := testnet.NewReceiver(t, pair.B.ListenUDP(t, "udp6", 0))
	ep6, _ := b.ParseEndpoint(rx6.Addr().String())
	if err := b.Send(packets(2, 100), ep6); err != nil {
		t.Fatal(err)
	}
	if got := rx6.Collect(2, 5*time.Second); len(got) != 2 {
		t.Errorf("IPv6 under an IPv4 blackhole: %d of 2 packets arrived", len(got))
	}
	b.Close()
	if err := pair.A.Run(func() error { _, _, err := b.Open(0); return err }); err != nil {
		t.Fatal(err)
	}
	rx4 := testnet.NewReceiver(t, pair.B.ListenUDP(t, "udp4", 0))
	ep4, _ := b.ParseEndpoint(rx4.Addr().String())
	if err := b.Send(packets(2, 100), ep4); err != nil {
		t.Fatal(err)
	}
	if got := rx4.Collect(2, 5*time.Second); len(got) != 2 {
		t.Errorf("after Close and Open the IPv4 blackhole is still on: %d of 2 packets arrived", len(got))
	}
}

// TestWithSocketBuffer reads SO_RCVBUF and SO_SNDBUF back: the kernel
// stores twice the size asked for (socket(7)), and WithSocketBuffer(0) or
// a negative size leaves net.core.rmem_default and wmem_default. (The
// "default" case passes the default explicitly; NewBind's own is
// socketBufferBytes too.)
func TestWithSocketBuffer(t *testing.T) {
	sysctl := func(name string) int {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			t.Skipf("cannot read net.core.%s: %v", name, err)
		}
		var v int
		if _, err := fmt.Sscan(string(b), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The default, 7 MiB, is forced past net.core.rmem_max and wmem_max
	// with CAP_NET_ADMIN and capped at them without.
	defRcv, defSnd := 2*socketBufferBytes, 2*socketBufferBytes
	if os.Geteuid() != 0 {
		defRcv = 2 * min(socketBufferBytes, sysctl("rmem_max"))
		defSnd = 2 * min(socketBufferBytes, sysctl("wmem_max"))
	}
	for _, tc := range []struct {
		name     string
		bytes    int
		rcv, snd int
	}{
		{"the default", socketBufferBytes, defRcv, defSnd},
		{"64 KiB", 64 << 10, 128 << 10, 128 << 10},
		{"0", 0, sysctl("rmem_default"), sysctl("wmem_default")},
		{"negative", -1, sysctl("rmem_default"), sysctl("wmem_default")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _, _ := openBind(t, WithSocketBuffer(tc.bytes))
			for family, fd := range peekFds(t, b) {
				if got := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_RCVBUF); got != tc.rcv {
					t.Errorf("%s: SO_RCVBUF %d, want %d", family, got, tc.rcv)
				}
				if got := sockopt(t, fd, unix.SOL_SOCKET, unix.SO_SNDBUF); got != tc.snd {
					t.Errorf("%s: SO_SNDBUF %d, want %d", family, got, tc.snd)
				}
			}
		})
	}
}
