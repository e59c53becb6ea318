//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// newReplyState turns on the packet-info control message on the socket
// (IP_PKTINFO on an AF_INET socket; IPV6_RECVPKTINFO on an AF_INET6 one,
// which gives IPV6_PKTINFO, IPv4-mapped for IPv4 datagrams) and remembers
// whether the user had it on already.
func newReplyState(rc syscall.RawConn, sock4 bool) (*replyState, error) {
	r := &replyState{level: unix.IPPROTO_IPV6, typ: unix.IPV6_PKTINFO}
	if sock4 {
		r.level, r.typ = unix.IPPROTO_IP, unix.IP_PKTINFO
	}
	var err error
	cerr := rc.Control(func(fd uintptr) {
		var on bool
		if on, err = r.get(fd); err == nil {
			r.user.Store(on)
			err = r.set(fd, true)
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, wrapSyscall("setsockopt packet info", err)
	}
	return r, nil
}

// opt is the socket option that asks for the packet-info message.
func (r *replyState) opt() (level, name int) {
	if r.level == unix.IPPROTO_IP {
		return unix.IPPROTO_IP, unix.IP_PKTINFO
	}
	return unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO
}

func (r *replyState) get(fd uintptr) (bool, error) {
	level, name := r.opt()
	v, err := unix.GetsockoptInt(int(fd), level, name)
	return v != 0, err
}

func (r *replyState) set(fd uintptr, on bool) error {
	level, name := r.opt()
	v := 0
	if on {
		v = 1
	}
	return unix.SetsockoptInt(int(fd), level, name, v)
}

// control runs f, a Control callback of the user's through
// Conn.SyscallConn, with the socket showing the user's own setting of the
// option, and learns that setting afterwards: x/net's SetControlMessage,
// or quic-go, may turn it on (then received OOB keeps the message) or off.
func (r *replyState) control(rc syscall.RawConn, f func(fd uintptr)) error {
	return rc.Control(func(fd uintptr) {
		r.set(fd, r.user.Load())
		f(fd)
		if on, err := r.get(fd); err == nil {
			r.user.Store(on)
		}
		r.set(fd, true)
	})
}

// replySupported says reply sources are made here: Linux, recvmmsg path.
const replySupported = true
