//go:build linux && batchconn_sendmsg

package batchconn_test

import (
	"context"
	"testing"
)

// TestContractC15OneSendPerMessage runs on Linux built with the
// batchconn_sendmsg tag: the path other Unix systems take, one sendmsg per
// message and no GSO, under the same contract tests as sendmmsg.
func TestContractC15OneSendPerMessage(t *testing.T) {
	c := listen(t, "udp4")
	if c.GSOEnabled() || c.Stats().GSOOff == "" {
		t.Fatalf("GSOEnabled() = %v, GSOOff = %q; want off with a reason", c.GSOEnabled(), c.Stats().GSOOff)
	}
	r := receiver(t, "udp4")
	msgs := messages(r.Addr(), 50, 1200)
	n, err := c.WriteMessages(context.Background(), msgs, 0)
	if n != len(msgs) || err != nil {
		t.Fatalf("WriteMessages = %d, %v", n, err)
	}
	if s := c.Stats(); s.Syscalls != uint64(len(msgs)) || s.Messages != uint64(len(msgs)) {
		t.Errorf("Stats = %+v; want one system call per message", s)
	}
	expectDatagrams(t, r, msgs)
}
