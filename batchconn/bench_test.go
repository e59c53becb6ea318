package batchconn_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
	"golang.org/x/net/ipv4"
)

// Every benchmark sends one op of 64 datagrams of 1200 bytes (a full QUIC
// flight) over loopback, either all to one destination or to four in runs
// of 16 (d0×16, d1×16, d2×16, d3×16), and is run for both. The receivers are
// drained the same way in all of them, so that the kernel does the full
// delivery and nothing is dropped early at a full socket; on loopback that
// delivery is charged to the sender, so these numbers measure the sender's
// whole path. Compare with benchstat, e.g. WriteMessagesGSOOn against
// RawGSOSendmmsg (the same system calls with no library around them).
const (
	benchMsgs = 64
	benchSize = 1200
	benchRun  = 16 // messages per destination in the four-destination case
)

var benchDests = []int{1, 4}

// benchPayload is the datagram every benchmark sends.
var benchPayload = func() []byte {
	p := make([]byte, benchSize)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}()

// benchSinks opens n loopback receivers, each with a 16 MiB receive buffer
// and drained by a goroutine running benchDrain, and returns their addresses
// and a count of datagrams received.
func benchSinks(b *testing.B, n int) ([]netip.AddrPort, *atomic.Int64) {
	b.Helper()
	var got atomic.Int64
	var dst []netip.AddrPort
	for range n {
		uc := testnet.ListenUDP(b, "udp4")
		dst = append(dst, uc.LocalAddr().(*net.UDPAddr).AddrPort())
		done := make(chan struct{})
		ready := make(chan struct{})
		go func() {
			defer close(done)
			benchDrain(uc, &got, ready)
		}()
		<-ready // its buffers are allocated before the clock starts
		b.Cleanup(func() {
			uc.Close()
			<-done
		})
	}
	return dst, &got
}

// benchDrain reads datagrams from uc into 64 KiB buffers, counting them in
// got, until uc is closed; it closes ready once it has allocated all it
// needs. It must not allocate after that: ReportAllocs counts every
// goroutine's allocations (which rules out x/net's ReadBatch). This portable
// one makes a system call per datagram; on Linux it is replaced by a
// recvmmsg loop, which keeps up with a GSO sender so that nothing is dropped
// early at a full receive buffer.
var benchDrain = func(uc *net.UDPConn, got *atomic.Int64, ready chan<- struct{}) {
	buf := make([]byte, 1<<16)
	close(ready)
	for {
		if _, _, err := uc.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
		got.Add(1)
	}
}

// benchDest returns the index of the destination of message k of an op.
func benchDest(k, dests int) int {
	if dests == 1 {
		return 0
	}
	return k / benchRun % dests
}

// benchSender opens the sending socket.
func benchSender(b *testing.B) *net.UDPConn {
	b.Helper()
	return testnet.ListenUDP(b, "udp4")
}

// benchStart sets the byte count and starts the clock; benchDone reports
// how many datagrams per op the receivers missed, after giving them a
// moment (off the clock) to catch up.
func benchStart(b *testing.B) {
	b.SetBytes(benchMsgs * benchSize)
	b.ReportAllocs()
	b.ResetTimer()
}

func benchDone(b *testing.B, got *atomic.Int64) {
	b.StopTimer()
	sent := int64(b.N) * benchMsgs
	for last := int64(-1); got.Load() < sent && got.Load() != last; {
		last = got.Load()
		time.Sleep(20 * time.Millisecond)
	}
	b.ReportMetric(float64(sent-got.Load())/float64(b.N), "lost/op")
}

// benchEach runs fn as a sub-benchmark for each destination count.
func benchEach(b *testing.B, fn func(b *testing.B, dests int)) {
	for _, d := range benchDests {
		b.Run(fmt.Sprintf("dests=%d", d), func(b *testing.B) { fn(b, d) })
	}
}

func BenchmarkWriteToLoop(b *testing.B) {
	benchEach(b, func(b *testing.B, dests int) {
		dst, got := benchSinks(b, dests)
		uc := benchSender(b)
		benchStart(b)
		for range b.N {
			for k := range benchMsgs {
				if _, err := uc.WriteToUDPAddrPort(benchPayload, dst[benchDest(k, dests)]); err != nil {
					b.Fatal(err)
				}
			}
		}
		benchDone(b, got)
	})
}

func BenchmarkXNetWriteBatch(b *testing.B) {
	benchEach(b, func(b *testing.B, dests int) {
		dst, got := benchSinks(b, dests)
		pc := ipv4.NewPacketConn(benchSender(b))
		ms := make([]ipv4.Message, benchMsgs)
		for k := range ms {
			ms[k] = ipv4.Message{Buffers: [][]byte{benchPayload}, Addr: net.UDPAddrFromAddrPort(dst[benchDest(k, dests)])}
		}
		benchStart(b)
		for range b.N {
			for m := ms; len(m) > 0; {
				n, err := pc.WriteBatch(m, 0)
				if err != nil {
					b.Fatal(err)
				}
				m = m[n:]
			}
		}
		benchDone(b, got)
	})
}

func benchWriteMessages(b *testing.B, gso bool) {
	benchEach(b, func(b *testing.B, dests int) {
		dst, got := benchSinks(b, dests)
		c, err := batchconn.New(benchSender(b), batchconn.WithGSO(gso))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if gso && !c.GSOEnabled() {
			b.Skipf("UDP GSO is not in use: %s", c.Stats().GSOOff)
		}
		msgs := make([]batchconn.Message, benchMsgs)
		for k := range msgs {
			msgs[k] = batchconn.Message{Addr: dst[benchDest(k, dests)], Buffers: [][]byte{benchPayload}}
		}
		ctx := context.Background()
		benchStart(b)
		for range b.N {
			for m := msgs; len(m) > 0; {
				n, err := c.WriteMessages(ctx, m, 0)
				if err != nil {
					b.Fatal(err)
				}
				m = m[n:]
			}
		}
		benchDone(b, got)
		st := c.Stats()
		b.ReportMetric(float64(st.Syscalls)/float64(b.N), "syscalls/op")
		if gso && (st.GSOBatches == 0 || st.GSOFallbacks != 0) {
			b.Errorf("GSO on, but Stats %+v", st)
		}
	})
}

func BenchmarkWriteMessagesGSOOff(b *testing.B) { benchWriteMessages(b, false) }
func BenchmarkWriteMessagesGSOOn(b *testing.B)  { benchWriteMessages(b, true) }
