package wgbatch

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// TestNoAllocationPerDatagram sends a batch from one Bind to another and the
// reply back from the Endpoint the receiving ReceiveFunc made (so from its
// sticky source), with GRO and GSO on and off, and counts allocations: a
// Send, a ReceiveFunc call and the Endpoints of a known peer allocate
// nothing, so a whole round trip of 64 packets each way allocates nothing.
func TestNoAllocationPerDatagram(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: allocation counts are checked in the full run")
	}
	for _, offload := range []bool{true, false} {
		t.Run(fmt.Sprintf("GRO and GSO %v", offload), func(t *testing.T) {
			ip := loopback(t, "v4")
			a, fnsA, _ := openBind(t, WithGRO(offload), WithGSO(offload))
			b, fnsB, portB := openBind(t, WithGRO(offload), WithGSO(offload))
			fnA, fnB := fnFor(t, fnsA, "v4"), fnFor(t, fnsB, "v4")
			toB, err := a.ParseEndpoint(netip.AddrPortFrom(ip, portB).String())
			if err != nil {
				t.Fatal(err)
			}
			pkts := packets(64, 1420)
			ra, rb := newReceiver(), newReceiver()
			var failed error
			readAll := func(fn conn.ReceiveFunc, r *receiver) {
				for got := 0; got < len(pkts) && failed == nil; {
					n, err := fn(r.bufs, r.sizes, r.eps)
					failed = err
					got += n
				}
			}
			allocs := testing.AllocsPerRun(50, func() {
				if failed != nil {
					return
				}
				if failed = a.Send(pkts, toB); failed != nil {
					return
				}
				readAll(fnB, rb)
				if failed != nil {
					return
				}
				if failed = b.Send(pkts, rb.eps[0]); failed != nil {
					return
				}
				readAll(fnA, ra)
			})
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("a round trip of %d packets each way allocated %.1f times; want 0", len(pkts), allocs)
			}
			if src := rb.eps[0].SrcIP(); src != ip {
				t.Errorf("the reply's Endpoint has sticky source %v, want %v", src, ip)
			}
		})
	}
}
