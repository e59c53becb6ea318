//go:build linux

package batchconn_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// The receive benchmarks drain a pre-filled socket: each op first sends
// recvBenchDatagrams datagrams of 1400 bytes with the clock stopped, as
// plain datagrams or as GSO sends of 14 (what quic-go sends), then reads them
// all with the clock running. They report wall time, the reading thread's
// CPU time and the process's CPU time per datagram (ns/dgram, cpu-ns/dgram,
// proc-cpu-ns/dgram: the last includes the garbage collector's work); compare
// modes with benchstat, or by the ratios of alternating runs on a shared
// machine:
//
//	go test -run '^$' -bench 'Recv' -count 5 ./batchconn
//
// Batched modes read recvBenchBatches messages per call (batch=8 is what
// quic-go reads per ReadBatch), every mode into buffers of
// recvBenchBufSize bytes (quic-go's).
const (
	recvBenchSize      = 1400
	recvBenchRun       = 14 // datagrams per GSO send
	recvBenchDatagrams = 32 * recvBenchRun
	recvBenchBufSize   = 1452
)

var (
	recvBenchTraffic = []string{"plain", "gso"}
	recvBenchBatches = []int{8, 64}
)

// recvBench runs drain for both traffic shapes and, for batched modes
// (batches not nil), each batch size. open returns a drain function for
// count datagrams that reads batch messages per call.
func recvBench(b *testing.B, gro bool, batches []int, open func(b *testing.B, c *batchconn.Conn, batch int) func(count int)) {
	for _, traffic := range recvBenchTraffic {
		if batches == nil {
			b.Run(traffic, func(b *testing.B) { recvBenchRun1(b, gro, traffic, 0, open) })
			continue
		}
		for _, batch := range batches {
			b.Run(fmt.Sprintf("%s/batch=%d", traffic, batch), func(b *testing.B) { recvBenchRun1(b, gro, traffic, batch, open) })
		}
	}
}

// recvBenchRun1 measures one mode on one traffic shape.
func recvBenchRun1(b *testing.B, gro bool, traffic string, batch int, open func(b *testing.B, c *batchconn.Conn, batch int) func(count int)) {
	rx, err := batchconn.New(testnet.ListenUDP(b, "udp4"), batchconn.WithGRO(gro))
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	if gro && !rx.GROEnabled() {
		b.Skip("no UDP GRO")
	}
	tx, err := batchconn.New(testnet.ListenUDP(b, "udp4"), batchconn.WithGSO(traffic == "gso"))
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	if traffic == "gso" && !tx.GSOEnabled() {
		b.Skip("no UDP GSO")
	}
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	msgs := make([]batchconn.Message, recvBenchRun)
	for i := range msgs {
		msgs[i] = batchconn.Message{Addr: dst, Buffers: [][]byte{make([]byte, recvBenchSize)}}
	}
	fill := func() {
		for range recvBenchDatagrams / recvBenchRun {
			if n, err := tx.WriteMessages(context.Background(), msgs, 0); n != len(msgs) || err != nil {
				b.Fatalf("WriteMessages = %d, %v", n, err)
			}
		}
	}
	drain := open(b, rx, batch)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fill()
	drain(recvBenchDatagrams) // warm up
	var wall time.Duration
	var cpu, proc int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fill()
		b.StartTimer()
		p0, c0, t0 := cpuTime(unix.CLOCK_PROCESS_CPUTIME_ID), cpuTime(unix.CLOCK_THREAD_CPUTIME_ID), time.Now()
		drain(recvBenchDatagrams)
		wall += time.Since(t0)
		cpu += cpuTime(unix.CLOCK_THREAD_CPUTIME_ID) - c0
		proc += cpuTime(unix.CLOCK_PROCESS_CPUTIME_ID) - p0
	}
	b.StopTimer()
	d := float64(b.N * recvBenchDatagrams)
	b.ReportMetric(float64(wall.Nanoseconds())/d, "ns/dgram")
	b.ReportMetric(float64(cpu)/d, "cpu-ns/dgram")
	b.ReportMetric(float64(proc)/d, "proc-cpu-ns/dgram")
	b.ReportMetric(0, "ns/op")
}

// cpuTime reads a CPU-time clock in nanoseconds: the reading thread's
// (CLOCK_THREAD_CPUTIME_ID; getrusage's RUSAGE_THREAD counts in scheduler
// ticks, too coarse for one drain), or the whole process's, which also
// counts the garbage collector's work on other threads.
func cpuTime(clock int32) int64 {
	var ts unix.Timespec
	unix.ClockGettime(clock, &ts)
	return ts.Nano()
}

// BenchmarkRecvReadFromLoop is the baseline: a *net.UDPConn ReadFrom loop.
func BenchmarkRecvReadFromLoop(b *testing.B) {
	recvBench(b, false, nil, func(b *testing.B, c *batchconn.Conn, _ int) func(int) {
		uc := c.UDPConn()
		buf := make([]byte, recvBenchBufSize)
		return func(count int) {
			for range count {
				if _, _, err := uc.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkRecvXNetReadBatch is what Go code batches reads with today.
func BenchmarkRecvXNetReadBatch(b *testing.B) {
	recvBench(b, false, recvBenchBatches, func(b *testing.B, c *batchconn.Conn, batch int) func(int) {
		p := ipv4.NewPacketConn(c.UDPConn())
		msgs := make([]ipv4.Message, batch)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, recvBenchBufSize)}
		}
		return func(count int) {
			for got := 0; got < count; {
				n, err := p.ReadBatch(msgs[:min(len(msgs), count-got)], 0)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
		}
	})
}

func benchReadMessages(b *testing.B, gro bool) {
	recvBench(b, gro, recvBenchBatches, func(b *testing.B, c *batchconn.Conn, batch int) func(int) {
		msgs := make([]batchconn.Message, batch)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, recvBenchBufSize)}
		}
		ctx := context.Background()
		return func(count int) {
			for got := 0; got < count; {
				n, err := c.ReadMessages(ctx, msgs[:min(len(msgs), count-got)], 0)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
		}
	})
}

func BenchmarkRecvReadMessagesGROOff(b *testing.B) { benchReadMessages(b, false) }
func BenchmarkRecvReadMessagesGROOn(b *testing.B)  { benchReadMessages(b, true) }

// BenchmarkRecvReadFromGRO is an unchanged ReadFrom loop on a GRO Conn.
func BenchmarkRecvReadFromGRO(b *testing.B) {
	recvBench(b, true, nil, func(b *testing.B, c *batchconn.Conn, _ int) func(int) {
		buf := make([]byte, recvBenchBufSize)
		return func(count int) {
			for range count {
				if _, _, err := c.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkRecvRawRecvmmsg is the ceiling without GRO: recvmmsg on the file
// descriptor with prebuilt headers, no poller and no library.
func BenchmarkRecvRawRecvmmsg(b *testing.B) {
	recvBench(b, false, recvBenchBatches, func(b *testing.B, c *batchconn.Conn, batch int) func(int) {
		rc, err := c.SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		var fd uintptr
		rc.Control(func(f uintptr) { fd = f })
		hdrs := make([]unix.Mmsghdr, batch)
		iovs := make([]unix.Iovec, batch)
		names := make([]unix.RawSockaddrInet6, batch)
		for i := range hdrs {
			buf := make([]byte, recvBenchBufSize)
			iovs[i] = unix.Iovec{Base: &buf[0]}
			iovs[i].SetLen(len(buf))
			hdrs[i].Hdr.Iov = &iovs[i]
			hdrs[i].Hdr.SetIovlen(1)
			hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		}
		return func(count int) {
			for got := 0; got < count; {
				k := min(len(hdrs), count-got)
				for i := range k {
					hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
				}
				r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
				if e != 0 && e != unix.EINTR {
					b.Fatal(e)
				}
				got += int(r)
			}
		}
	})
}
