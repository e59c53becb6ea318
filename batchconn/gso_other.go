//go:build !linux || batchconn_sendmsg

package batchconn

import (
	"errors"
	"syscall"
)

// gsoSupported reports that UDP GSO is not available: it is a Linux feature,
// and the one-sendmsg-per-message path does not use it.
func gsoSupported(syscall.RawConn) error {
	return errors.New("UDP GSO needs Linux and sendmmsg")
}

// recvErrOn is never asked: this path makes no GSO sends.
func recvErrOn(uintptr, bool) uint32 { return 0 }

// gsoSegments is the safe limit: this path makes no GSO sends.
func gsoSegments() int { return maxGSOSegments }
