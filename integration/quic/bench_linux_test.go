package quicbatch

import (
	"net"
	"sync"
	"testing"

	"golang.org/x/net/ipv4"
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

// BenchmarkReadBatch reads quic-go-shaped batches (8 messages of 1452
// bytes) of 1400-byte datagrams that a peer sent as GSO buffers of 16, as
// quic-go with GSO does: golang.org/x/net/ipv4 on a plain socket (what
// quic-go uses on a *net.UDPConn) against quicbatch with GRO off and on.
// Each op sends and reads 64 datagrams; the sending is the same for all.
func BenchmarkReadBatch(b *testing.B) {
	const segs, seg, perOp = 16, 1400, 64
	for _, mode := range []string{"xnet", "quicbatch-gro-off", "quicbatch-gro-on"} {
		b.Run(mode, func(b *testing.B) {
			udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			udp.SetReadBuffer(4 << 20)
			var read func(ms []ipv4.Message) (int, error)
			switch mode {
			case "xnet":
				defer udp.Close()
				pc := ipv4.NewPacketConn(udp)
				read = func(ms []ipv4.Message) (int, error) { return pc.ReadBatch(ms, 0) }
			default:
				c, err := Wrap(udp, WithGRO(mode == "quicbatch-gro-on"))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				read = func(ms []ipv4.Message) (int, error) { return c.ReadBatch(ms, 0) }
			}
			tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			dst := udp.LocalAddr().(*net.UDPAddr)
			buf, oob := make([]byte, segs*seg), segmentOOB(seg)
			ms := make([]ipv4.Message, 8)
			for i := range ms {
				ms[i].Buffers = [][]byte{make([]byte, 1452)}
				ms[i].OOB = make([]byte, 128)
			}
			b.SetBytes(perOp * seg)
			b.ReportAllocs()
			for b.Loop() {
				for range perOp / segs {
					if _, _, err := tx.WriteMsgUDP(buf, oob, dst); err != nil {
						b.Fatal(err)
					}
				}
				for got := 0; got < perOp; {
					n, err := read(ms)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
