//go:build unix

package wgbatch

import "syscall"

// msgTrunc is the msg_flags bit batchconn reports for a datagram longer than
// its buffer.
const msgTrunc = syscall.MSG_TRUNC
