//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRelease is what clearing the caller's pointers costs a call of
// MaxMessages single-buffer messages (C9, C10): compare it with the
// sendmmsg of the same batch.
func BenchmarkRelease(b *testing.B) {
	var s sendState
	s.hdrs = make([]unix.Mmsghdr, MaxMessages)
	s.iovs = make([]unix.Iovec, MaxMessages)
	for b.Loop() {
		s.usedHdrs, s.usedIovs = MaxMessages, MaxMessages
		s.release()
	}
}
