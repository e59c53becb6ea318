//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"context"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/testnet"
)

// TestContractC14GSOOfferedBackAfter4096DatagramsOr10s turns GSO off for a
// destination on the real kernel (a route whose MTU is below the segments
// refuses GSO sends with EMSGSIZE), restores the route's MTU, and checks
// C14's words as written: the destination is offered GSO again at its
// first call 10 s after it went off, however few datagrams it was sent
// meanwhile and however small that call, and otherwise after exactly 4096
// datagrams sent to it plain, however the calls cut them. Waiting is
// simulated by moving the time the destination went off back.
func TestContractC14GSOOfferedBackAfter4096DatagramsOr10s(t *testing.T) {
	p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1500})
	p.A.Exec(t, "ip", "route", "add", p.B.Addr4.String()+"/32", "dev", p.A.Link, "mtu", "lock", "1280")
	c, err := New(p.A.ListenUDP(t, "udp4", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.GSOEnabled() {
		t.Skipf("UDP GSO is not in use: %s", c.Stats().GSOOff)
	}
	rx := testnet.NewReceiver(t, p.B.ListenUDP(t, "udp4", 0))
	dst := rx.Addr()
	sent := 0
	send := func(n int) Stats {
		t.Helper()
		msgs := make([]Message, n)
		for i := range msgs {
			msgs[i] = Message{Addr: dst, Buffers: [][]byte{make([]byte, 1400)}}
		}
		if k, err := c.WriteMessages(context.Background(), msgs, 0); k != n || err != nil {
			t.Fatalf("WriteMessages = %d, %v; want %d, nil", k, err, n)
		}
		sent += n
		return c.Stats()
	}
	turnOff := func() Stats {
		t.Helper()
		p.A.Exec(t, "ip", "route", "change", p.B.Addr4.String()+"/32", "dev", p.A.Link, "mtu", "lock", "1280")
		before := c.Stats().GSOFallbacks
		var st Stats
		for range maxDestGSOFailures {
			st = send(8)
		}
		if st.GSOFallbacks != before+maxDestGSOFailures {
			t.Fatalf("GSOFallbacks %d after %d refused runs, want %d", st.GSOFallbacks, maxDestGSOFailures, before+maxDestGSOFailures)
		}
		if st = send(8); st.GSOFallbacks != before+maxDestGSOFailures {
			t.Fatal("the destination still gets GSO runs after 4 refusals in a row")
		}
		p.A.Exec(t, "ip", "route", "change", p.B.Addr4.String()+"/32", "dev", p.A.Link, "mtu", "lock", "1500")
		return st
	}
	age := func(d time.Duration) {
		c.lock(context.Background(), true)
		defer c.unlock()
		for i := range c.tx.dests.n {
			c.tx.dests.e[i].since = c.tx.dests.e[i].since.Add(-d)
		}
	}

	t.Run("a destination quiet for 10.5 s gets GSO at its next call, of 2 datagrams", func(t *testing.T) {
		st := turnOff()
		age(gsoRetryAfter - time.Second)
		if st2 := send(2); st2.GSOBatches != st.GSOBatches {
			t.Fatalf("GSO offered %v after the destination went off", gsoRetryAfter-time.Second)
		}
		age(1500 * time.Millisecond)
		if st2 := send(2); st2.GSOBatches != st.GSOBatches+1 {
			t.Fatalf("a 2-datagram call %v after the destination went off: GSOBatches %d → %d, want one GSO send",
				gsoRetryAfter+500*time.Millisecond, st.GSOBatches, st2.GSOBatches)
		}
	})

	t.Run("a destination sent 2-datagram calls gets GSO after 4096 datagrams", func(t *testing.T) {
		st := turnOff()
		plain := 16 // the refused run that turned it off, resent plain, and the call that found it off
		for plain < gsoRetryDatagrams {
			if st2 := send(2); st2.GSOBatches != st.GSOBatches {
				t.Fatalf("GSO offered after %d plain datagrams, want %d", plain, gsoRetryDatagrams)
			}
			plain += 2
		}
		if st2 := send(2); st2.GSOBatches != st.GSOBatches+1 {
			t.Fatalf("no GSO offered after %d plain datagrams", plain)
		}
	})

	if !rx.Wait(sent, 10*time.Second) {
		t.Fatalf("the receiver got %d of %d datagrams", rx.Count(), sent)
	}
}
