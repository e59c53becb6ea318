//go:build !linux || batchconn_sendmsg

package batchconn

import (
	"errors"
	"syscall"
)

// groEnable reports that UDP GRO is not available: it is a Linux feature,
// and the one-recvmsg-per-message path does not use it.
func groEnable(syscall.RawConn) error {
	return errors.New("UDP GRO needs Linux and recvmmsg")
}
