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
