package quicbatch

import (
	"net"
	"sync"
	"testing"
)

// BenchmarkWriteMsgUDP compares one GSO-sized write through a plain socket
// and through the wrapper, with 1 and 8 concurrent writers.
func BenchmarkWriteMsgUDP(b *testing.B) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	dst := rx.LocalAddr().(*net.UDPAddr)
	payload, oob := make([]byte, benchSize), benchOOB()
	for _, wrap := range []bool{false, true} {
		for _, writers := range []int{1, 8} {
			name := "plain"
			if wrap {
				name = "quicbatch"
			}
			b.Run(name+"/writers="+string(rune('0'+writers)), func(b *testing.B) {
				udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				var w interface {
					WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error)
				} = udp
				var qb *Conn
				if wrap {
					qb, _ = Wrap(udp)
					w = qb
					defer qb.Close()
				} else {
					defer udp.Close()
				}
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				var wg sync.WaitGroup
				per := b.N / writers
				for range writers {
					wg.Go(func() {
						p := make([]byte, len(payload))
						for range per {
							if _, _, err := w.WriteMsgUDP(p, oob, dst); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if qb != nil {
					qb.Flush()
					st := qb.Stats()
					b.ReportMetric(st.MessagesPerSyscall(), "msgs/syscall")
				}
			})
		}
	}
}

// One unsegmented packet, as quic-go writes with GSO off.
const benchSize = 1452

func benchOOB() []byte { return nil }
