package main

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rcvBufBytes is the receive buffer each receiver socket asks for, so short
// bursts are absorbed rather than dropped. Root gets it with SO_RCVBUFFORCE;
// others get what net.core.rmem_max allows.
const rcvBufBytes = 32 << 20

// receiver drains one socket per destination with recvmmsg on one locked
// thread and counts what arrives. It allocates nothing while running, so the
// allocation counts of the modes are theirs alone.
type receiver struct {
	fds    []int
	addrs  []netip.AddrPort
	epfd   int
	rcvbuf int // the receive buffer the kernel granted the first socket

	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	evs  [8]unix.EpollEvent

	count atomic.Uint64 // datagrams received
	bytes atomic.Uint64 // payload bytes received
	stop  atomic.Bool
	done  chan struct{}
}

// newReceiver opens n sockets on addr (ports chosen by the kernel) for
// datagrams of size bytes and starts draining them.
func newReceiver(addr netip.Addr, n, size int) (_ *receiver, err error) {
	r := &receiver{epfd: -1, done: make(chan struct{})}
	defer func() {
		if err != nil {
			r.closeFDs()
		}
	}()
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	for range n {
		fd, local, err := rawSocket(addr)
		if err != nil {
			return nil, err
		}
		r.fds, r.addrs = append(r.fds, fd), append(r.addrs, local)
		setRcvBuf(fd)
		if len(r.fds) == 1 {
			r.rcvbuf, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}

	// Slots of exactly size bytes (every datagram is that size), at most
	// 8 MiB of them.
	vlen := max(1, min(256, (8<<20)/size))
	slots := make([]byte, vlen*size)
	r.hdrs = make([]unix.Mmsghdr, vlen)
	r.iovs = make([]unix.Iovec, vlen)
	for i := range vlen {
		r.iovs[i].Base = &slots[i*size]
		r.iovs[i].SetLen(size)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
	}
	go r.loop()
	return r, nil
}

func (r *receiver) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(r.done)
	for !r.stop.Load() {
		got := false
		for _, fd := range r.fds {
			// A bounded number of calls per socket, so one busy
			// destination cannot starve the others.
			for range 16 {
				n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd),
					uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
				if e != 0 || n == 0 {
					break // EAGAIN: empty
				}
				got = true
				var bytes uint64
				for i := range int(n) {
					bytes += uint64(r.hdrs[i].Len)
				}
				r.count.Add(uint64(n))
				r.bytes.Add(bytes)
				if int(n) < len(r.hdrs) {
					break
				}
			}
		}
		if !got {
			// Wait for data; the timeout bounds how long close waits.
			_, _ = unix.EpollWait(r.epfd, r.evs[:], 20)
		}
	}
}

// waitDrained returns once the receive queues are empty and the count has not
// moved for a few milliseconds (packets still in the stack), or after a second.
func (r *receiver) waitDrained() {
	deadline := time.Now().Add(time.Second)
	last := r.count.Load()
	for time.Now().Before(deadline) {
		time.Sleep(3 * time.Millisecond)
		c := r.count.Load()
		if c == last && r.queuesEmpty() {
			return
		}
		last = c
	}
}

func (r *receiver) queuesEmpty() bool {
	for _, fd := range r.fds {
		n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil || n != 0 {
			return false
		}
	}
	return true
}

func (r *receiver) close() error {
	r.stop.Store(true)
	<-r.done
	return r.closeFDs()
}

func (r *receiver) closeFDs() error {
	var errs []error
	for _, fd := range r.fds {
		errs = append(errs, unix.Close(fd))
	}
	if r.epfd >= 0 {
		errs = append(errs, unix.Close(r.epfd))
	}
	r.fds, r.epfd = nil, -1
	return errors.Join(errs...)
}
