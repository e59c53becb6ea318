//go:build linux

package batchconn

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreq is struct ifreq as SIOCGIFNAME and SIOCGIFINDEX use it: the name,
// then the index at the start of the union, padded to the kernel's size
// (TestIfreqLayout checks it against x/sys, whose Ifreq can be filled only
// by allocating).
type ifreq struct {
	name  [unix.IFNAMSIZ]byte
	index int32
	_     [unsafe.Sizeof(unix.Ifreq{}) - unix.IFNAMSIZ - 4]byte
}

// socketZones looks interfaces up with ioctl(2) on the Conn's own socket:
// in the socket's network namespace (where the kernel reads its scope
// ids), one system call, nothing allocated unless a name is returned.
type socketZones struct {
	rc    syscall.RawConn
	req   ifreq
	op    uintptr
	errno syscall.Errno
	fn    func(fd uintptr) // ioctl, bound once
}

func newZoneLookup(rc syscall.RawConn) zoneLookup {
	l := &socketZones{rc: rc}
	l.fn = l.ioctl
	return l
}

func (l *socketZones) ioctl(fd uintptr) {
	_, _, l.errno = unix.Syscall(unix.SYS_IOCTL, fd, l.op, uintptr(unsafe.Pointer(&l.req)))
}

// call makes the ioctl op with l.req; false if it failed (no such
// interface, or the socket is closed).
func (l *socketZones) call(op uintptr) bool {
	l.op, l.errno = op, 0
	return l.rc.Control(l.fn) == nil && l.errno == 0
}

// byIndex asks for the name of interface index into l.req.
func (l *socketZones) byIndex(index uint32) bool {
	if index > 1<<31-1 {
		return false
	}
	l.req = ifreq{index: int32(index)}
	return l.call(unix.SIOCGIFNAME)
}

// reqName returns the name in l.req, without its NUL padding.
func (l *socketZones) reqName() []byte {
	n := 0
	for n < len(l.req.name) && l.req.name[n] != 0 {
		n++
	}
	return l.req.name[:n]
}

func (l *socketZones) name(index uint32) (string, bool) {
	if !l.byIndex(index) {
		return "", false
	}
	return string(l.reqName()), true
}

func (l *socketZones) is(index uint32, name string) (same, exists bool) {
	if !l.byIndex(index) {
		return false, false
	}
	return string(l.reqName()) == name, true
}

// index resolves a name to an index as the net package does: interfaces'
// names only. SIOCGIFINDEX also takes their alternative names (Linux 5.5
// and later), so the index's name is asked for in turn.
func (l *socketZones) index(name string) (uint32, bool) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return 0, false
	}
	l.req = ifreq{}
	copy(l.req.name[:], name)
	if !l.call(unix.SIOCGIFINDEX) || l.req.index <= 0 {
		return 0, false
	}
	id := uint32(l.req.index)
	if same, _ := l.is(id, name); !same {
		return 0, false
	}
	return id, true
}
