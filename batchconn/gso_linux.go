//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// gsoSupported asks the kernel whether the socket can do UDP GSO: reading
// UDP_SEGMENT works from Linux 4.18, the first kernel with UDP GSO.
func gsoSupported(rc syscall.RawConn) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		_, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	})
	if cerr != nil {
		return cerr
	}
	return wrapSyscall("getsockopt UDP_SEGMENT", err)
}

// recvErrOn reads IP_RECVERR and, on an AF_INET6 socket, IPV6_RECVERR.
func recvErrOn(fd uintptr, sock4 bool) uint32 {
	var on uint32
	if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR); err == nil && v != 0 {
		on |= recvErr4
	}
	if !sock4 {
		if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR); err == nil && v != 0 {
			on |= recvErr6
		}
	}
	return on
}

var gsoSegs struct {
	once sync.Once
	n    int
}

// gsoSegments returns how many segments a GSO send may carry on this
// kernel: probedGSOSegments if the probe succeeds, else maxGSOSegments. The
// probe runs once per process, when the first Conn that uses GSO is made.
func gsoSegments() int {
	gsoSegs.once.Do(func() { gsoSegs.n = probeGSOSegments() })
	return gsoSegs.n
}

// probeGSOSegments learns the segment limit by trying it: one GSO send of
// probedGSOSegments one-byte segments from a loopback socket of its own to
// another (127.0.0.1), closed right after. Nothing goes to anyone else. If
// the probe cannot run (no loopback, as in a fresh network namespace whose
// lo is down), the answer is the safe maxGSOSegments.
func probeGSOSegments() int {
	if gsoProbe(probedGSOSegments) != nil {
		return maxGSOSegments
	}
	return probedGSOSegments
}

// gsoProbe is the probe's send; tests replace it to make it fail.
var gsoProbe = probeGSOSend

// probeGSOSend makes a GSO send of segs one-byte segments between two
// fresh sockets on 127.0.0.1 and returns the kernel's verdict.
func probeGSOSend(segs int) error {
	rx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rx)
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(rx, lo); err != nil {
		return err
	}
	sa, err := unix.Getsockname(rx)
	if err != nil {
		return err
	}
	to, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return unix.EAFNOSUPPORT
	}
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(tx)
	oob := appendUDPSegment(nil, nil, 1)
	return unix.Sendmsg(tx, make([]byte, segs), oob, to, 0)
}
