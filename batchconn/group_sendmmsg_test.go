//go:build !batchconn_sendmsg

package batchconn_test

const oneSyscallPerMessage = false
