//go:build linux

package wgbatch

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"golang.zx2c4.com/wireguard/conn"
)

var (
	_ conn.BindSocketToInterface = (*Bind)(nil)
	_ conn.PeekLookAtSocketFd    = (*Bind)(nil)
)

// BindSocketToInterface4 binds the udp4 socket to the interface with index
// interfaceIndex (SO_BINDTOIFINDEX, Linux 5.0 and later; 0 unbinds it), so
// its packets leave and arrive only through it; with blackhole, Send drops
// IPv4 packets instead of sending them, until the Bind is closed. It is
// wireguard-go's hook for wireguard-windows, where StdNetBind does the same
// with IP_UNICAST_IF; on Linux, rebinding a bound socket needs CAP_NET_RAW.
// It fails with net.ErrClosed on a closed Bind and with EAFNOSUPPORT if the
// Bind has no udp4 socket.
func (b *Bind) BindSocketToInterface4(interfaceIndex uint32, blackhole bool) error {
	return b.bindToInterface(false, interfaceIndex, blackhole)
}

// BindSocketToInterface6 is [Bind.BindSocketToInterface4] for the udp6
// socket.
func (b *Bind) BindSocketToInterface6(interfaceIndex uint32, blackhole bool) error {
	return b.bindToInterface(true, interfaceIndex, blackhole)
}

func (b *Bind) bindToInterface(v6 bool, index uint32, blackhole bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	so, err := b.socketLocked(v6)
	if err != nil {
		return err
	}
	if err := setsockopt(so.c.UDPConn(), unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, int(index)); err != nil {
		return err
	}
	so.blackhole.Store(blackhole)
	return nil
}

// PeekLookAtSocketFd4 returns the udp4 socket's file descriptor, which stays
// the Bind's: wireguard-android protects it from its own VPN routing with
// it. It is valid until the Bind is closed.
func (b *Bind) PeekLookAtSocketFd4() (int, error) { return b.peekFd(false) }

// PeekLookAtSocketFd6 is [Bind.PeekLookAtSocketFd4] for the udp6 socket.
func (b *Bind) PeekLookAtSocketFd6() (int, error) { return b.peekFd(true) }

func (b *Bind) peekFd(v6 bool) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	so, err := b.socketLocked(v6)
	if err != nil {
		return -1, err
	}
	rc, err := so.c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// socketLocked returns the open udp4 or udp6 socket; the caller holds b.mu.
func (b *Bind) socketLocked(v6 bool) (*socket, error) {
	s := b.open.Load()
	if s == nil {
		return nil, net.ErrClosed
	}
	so := s.v4
	if v6 {
		so = s.v6
	}
	if so == nil {
		return nil, syscall.EAFNOSUPPORT
	}
	return so, nil
}
