//go:build linux

package batchconn_test

import (
	"net"
	"testing"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// BenchmarkWriteToParallel measures WriteTo from many goroutines (b.SetParallelism
// times GOMAXPROCS) on a *net.UDPConn and on a Conn, 1200-byte datagrams to
// one loopback sink. Compare the two with benchstat; dg/syscall is the
// Conn's datagrams per send system call.
func BenchmarkWriteToParallel(b *testing.B) {
	for _, par := range []int{0, 4, 32} {
		for _, impl := range []string{"UDPConn", "Conn"} {
			name := impl + "/writers=1"
			if par > 0 {
				name = impl + "/parallelism=" + itoa(par)
			}
			b.Run(name, func(b *testing.B) {
				dst := testnet.ListenUDP(b, "udp4").LocalAddr()
				u := testnet.ListenUDP(b, "udp4")
				var w interface {
					WriteTo([]byte, net.Addr) (int, error)
				} = u
				var c *batchconn.Conn
				if impl == "Conn" {
					var err error
					if c, err = batchconn.New(u, batchconn.WithGSO(false)); err != nil {
						b.Fatal(err)
					}
					w = c
				}
				p := make([]byte, 1200)
				b.SetBytes(1200)
				b.ReportAllocs()
				if par == 0 {
					for b.Loop() {
						if _, err := w.WriteTo(p, dst); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(par)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := w.WriteTo(p, dst); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				if c != nil {
					st := c.Stats()
					alone := uint64(b.N) - st.Messages
					b.ReportMetric(float64(b.N)/float64(st.Syscalls+alone), "dg/syscall")
				}
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
