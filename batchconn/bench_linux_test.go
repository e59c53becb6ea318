//go:build linux

package batchconn_test

import (
	"bytes"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The raw references send the op's datagrams already coalesced, one
// contiguous buffer and a UDP_SEGMENT cmsg per GSO send, straight on the file
// descriptor with no poller and no library: the floor for WriteMessages with
// GSO. 64 × 1200 bytes exceed one IPv4 GSO send (65507 bytes), so one
// destination takes two sends (54 + 10 segments), as WriteMessages cuts it;
// four destinations take one send of 16 segments each.

// benchRawSends builds the GSO sends of one op to dst.
func benchRawSends(dst []netip.AddrPort, dests int) []unix.Mmsghdr {
	const maxSegs = (65535 - 20 - 8) / benchSize // 54
	var hdrs []unix.Mmsghdr
	add := func(d netip.AddrPort, segs int) {
		buf := bytes.Repeat(benchPayload, segs)
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: d.Addr().As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(d.Port()>>8), byte(d.Port())
		iov := &unix.Iovec{Base: &buf[0]}
		iov.SetLen(len(buf))
		ctrl := gsoSegment(benchSize)
		var h unix.Mmsghdr
		h.Hdr.Name, h.Hdr.Namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet4
		h.Hdr.Iov = iov
		h.Hdr.SetIovlen(1)
		h.Hdr.Control = &ctrl[0]
		h.Hdr.SetControllen(len(ctrl))
		hdrs = append(hdrs, h)
	}
	if dests == 1 {
		for left := benchMsgs; left > 0; left -= min(left, maxSegs) {
			add(dst[0], min(left, maxSegs))
		}
		return hdrs
	}
	for k := 0; k < benchMsgs; k += benchRun {
		add(dst[benchDest(k, dests)], benchRun)
	}
	return hdrs
}

// benchRawFD returns the sender's descriptor, for use outside the poller.
func benchRawFD(b *testing.B) uintptr {
	b.Helper()
	rc, err := benchSender(b).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var fd uintptr
	if err := rc.Control(func(f uintptr) { fd = f }); err != nil {
		b.Fatal(err)
	}
	return fd
}

// benchRawRetry waits for fd to be writable after EAGAIN, or fails on any
// other error.
func benchRawRetry(b *testing.B, fd uintptr, errno syscall.Errno) {
	if errno != unix.EAGAIN {
		b.Fatal(errno)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	unix.Poll(pfd, -1)
}

func BenchmarkRawGSOSendmsg(b *testing.B) {
	benchEach(b, func(b *testing.B, dests int) {
		dst, got := benchSinks(b, dests)
		fd := benchRawFD(b)
		hdrs := benchRawSends(dst, dests)
		benchStart(b)
		for range b.N {
			for i := 0; i < len(hdrs); {
				_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&hdrs[i].Hdr)), 0)
				if e != 0 {
					benchRawRetry(b, fd, e)
					continue
				}
				i++
			}
		}
		benchDone(b, got)
	})
}

func BenchmarkRawGSOSendmmsg(b *testing.B) {
	benchEach(b, func(b *testing.B, dests int) {
		dst, got := benchSinks(b, dests)
		fd := benchRawFD(b)
		hdrs := benchRawSends(dst, dests)
		benchStart(b)
		for range b.N {
			for i := 0; i < len(hdrs); {
				n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[i])), uintptr(len(hdrs)-i), 0, 0, 0)
				if e != 0 {
					benchRawRetry(b, fd, e)
					continue
				}
				i += int(n)
			}
		}
		benchDone(b, got)
	})
}

func init() { benchDrain = benchRecvmmsg }

// benchRecvmmsg drains uc 64 datagrams per recvmmsg(2), waiting in the poller,
// without allocating after its setup.
func benchRecvmmsg(uc *net.UDPConn, got *atomic.Int64, ready chan<- struct{}) {
	defer func() {
		if ready != nil {
			close(ready)
		}
	}()
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	const batch = 64
	hdrs := make([]unix.Mmsghdr, batch)
	iovs := make([]unix.Iovec, batch)
	for i := range hdrs {
		buf := make([]byte, 1<<16)
		iovs[i] = unix.Iovec{Base: &buf[0]}
		iovs[i].SetLen(len(buf))
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	var n int
	var errno syscall.Errno
	read := func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), batch, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		n, errno = int(r), e
		return true
	}
	close(ready)
	ready = nil
	for {
		if err := rc.Read(read); err != nil {
			return
		}
		switch errno {
		case 0:
			got.Add(int64(n))
		case unix.EINTR:
		default:
			return
		}
	}
}
