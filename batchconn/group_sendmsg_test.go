//go:build batchconn_sendmsg

package batchconn_test

// oneSyscallPerMessage: this build sends one sendmsg per message (the path
// of Unix systems without sendmmsg), so batches save no system calls.
const oneSyscallPerMessage = true
