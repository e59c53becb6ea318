//go:build unix

package batchconn

import "golang.org/x/sys/unix"

// pollWritable reports whether fd can take data now, by poll(2) with no
// timeout; errors count as writable so that the caller's write reports them.
func pollWritable(pfd *[1]unix.PollFd, fd uintptr) bool {
	for {
		pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
		n, err := unix.Poll(pfd[:], 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

// writable reports whether the socket can take data now, for a writer that
// must not wait and finds the write gate held by a writer inside a
// *net.UDPConn method (see gate): if it can, that writer's one datagram goes
// out without waiting. It polls with a pollfd of its own, since it does not
// hold the gate.
func (c *Conn) writable() bool {
	ok := true // a closed socket: the waiter learns it from Close
	var pfd [1]unix.PollFd
	c.rc.Control(func(fd uintptr) { ok = pollWritable(&pfd, fd) })
	return ok
}
