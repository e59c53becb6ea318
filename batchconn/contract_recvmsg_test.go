//go:build linux && batchconn_sendmsg

package batchconn_test

import (
	"testing"

	"github.com/batchconn/batchconn/batchconn"
)

// TestContractR8OneRecvPerMessage runs on Linux built with the
// batchconn_sendmsg tag: the path other Unix systems take, one recvmsg per
// message and no GRO, under the same contract tests as recvmmsg.
func TestContractR8OneRecvPerMessage(t *testing.T) {
	c := listen(t, "udp4", batchconn.WithGRO(true))
	if c.GROEnabled() || c.Stats().GROOff == "" {
		t.Fatalf("GROEnabled() = %v, GROOff = %q; want off with a reason", c.GROEnabled(), c.Stats().GROOff)
	}
	tx := listen(t, "udp4")
	sendFrom(t, tx, messages(addrOf(c), 10, 500))
	gots := readN(t, c, 10, func(n int) []batchconn.Message { return recvMsgs(n, 600, 0) }, 64, 0)
	expectNumbered(t, gots, 500, addrOf(tx))
	// One recvmsg per datagram, and one more per call that found the
	// socket empty after its first datagram.
	if s := c.Stats(); s.RecvMessages != 10 || s.RecvSyscalls < 10 || s.RecvSyscalls > 20 {
		t.Errorf("Stats = %+v; want one system call per message", s)
	}
}
