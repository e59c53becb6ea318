//go:build unix && (!linux || batchconn_sendmsg)

package gonettest

import "syscall"

// replySourceOn reports whether c's socket asks the kernel for packet info,
// which a Conn does for its reply sources on Linux only: known is false
// here.
func replySourceOn(c interface {
	SyscallConn() (syscall.RawConn, error)
}) (on, known bool, err error) {
	return false, false, nil
}
