package batchconn

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

func TestReplyTable(t *testing.T) {
	var tb replyTable
	peer := netip.MustParseAddrPort("192.0.2.7:5353")
	if _, _, ok := tb.lookup(peer); ok {
		t.Fatal("an empty table knows a peer")
	}
	a1, a2 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	tb.learn(peer, a1, 3)
	if l, i, ok := tb.lookup(peer); !ok || l != a1 || i != 3 {
		t.Fatalf("lookup = %v, %d, %v; want %v, 3", l, i, ok, a1)
	}
	tb.learn(peer, a2, 4) // the peer now writes to the other address
	if l, i, ok := tb.lookup(peer); !ok || l != a2 || i != 4 {
		t.Fatalf("lookup after a new address = %v, %d, %v; want %v, 4", l, i, ok, a2)
	}
	tb.forget(peer)
	if _, _, ok := tb.lookup(peer); ok {
		t.Fatal("a forgotten peer is still known")
	}
	tb.learn(netip.AddrPort{}, a1, 0)
	tb.learn(peer, netip.Addr{}, 0)
	if _, _, ok := tb.lookup(peer); ok {
		t.Fatal("an invalid peer or address was learnt")
	}

	t.Run("a full set forgets its least recently seen peer", func(t *testing.T) {
		var tb replyTable
		tb.learn(peer, a1, 0)
		set := tb.setOf(peer)
		var same []netip.AddrPort // peers of peer's set
		for p := uint16(1); len(same) < replyWays; p++ {
			q := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.8"), p)
			if tb.setOf(q) == set {
				same = append(same, q)
			}
		}
		for _, q := range same[:replyWays-1] {
			tb.learn(q, a2, 0)
		}
		tb.learn(peer, a1, 0) // seen again: now the most recent
		tb.learn(same[replyWays-1], a2, 0)
		if _, _, ok := tb.lookup(peer); !ok {
			t.Fatal("the most recently seen peer was evicted")
		}
		if _, _, ok := tb.lookup(same[0]); ok {
			t.Fatal("the least recently seen peer is still there")
		}
	})
	t.Run("learning and looking up allocate nothing", func(t *testing.T) {
		var tb replyTable
		tb.learn(peer, a1, 0)
		if n := testing.AllocsPerRun(1000, func() {
			tb.learn(peer, a1, 0)
			tb.lookup(peer)
		}); n != 0 {
			t.Errorf("%v allocations", n)
		}
	})
	t.Run("reads and writes at once", func(t *testing.T) {
		var tb replyTable
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 2000 {
					q := netip.MustParseAddrPort(fmt.Sprintf("192.0.2.%d:%d", g, i%50+1))
					if g%2 == 0 {
						tb.learn(q, a1, uint32(g))
					} else if l, _, ok := tb.lookup(q); ok && l != a1 {
						t.Errorf("lookup = %v", l)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}
