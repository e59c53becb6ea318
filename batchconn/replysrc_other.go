//go:build !linux || batchconn_sendmsg

package batchconn

import (
	"errors"
	"syscall"
)

// newReplyState is never called here: reply sources need Linux's packet
// info on the recvmmsg path.
func newReplyState(syscall.RawConn, bool) (*replyState, error) {
	return nil, errors.New("reply sources need Linux")
}

func (r *replyState) control(rc syscall.RawConn, f func(fd uintptr)) error { return rc.Control(f) }

// replySupported says reply sources are made here: not off Linux, nor on
// the one-recvmsg-per-message path.
const replySupported = false
