package batchconn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/batchconn/batchconn/batchconn"
)

// Send three datagrams, with gathered buffers, in one call, and read them.
func Example() {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer recv.Close()
	dst := recv.LocalAddr().(*net.UDPAddr).AddrPort()

	c, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	msgs := []batchconn.Message{
		{Addr: dst, Buffers: [][]byte{[]byte("hello, ")}},
		{Addr: dst, Buffers: [][]byte{[]byte("batched "), []byte("world")}},
		{Addr: dst}, // an empty datagram
	}
	n, err := c.WriteMessages(context.Background(), msgs, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent", n, "messages;", msgs[0].N, msgs[1].N, msgs[2].N, "bytes")

	buf := make([]byte, 1500)
	for range n {
		k, _, err := recv.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q\n", buf[:k])
	}
	// Output:
	// sent 3 messages; 7 13 0 bytes
	// "hello, "
	// "batched world"
	// ""
}

// Send a batch larger than one call takes, looping on the count returned.
// The loop ends at the first message that cannot be sent, with its error.
func ExampleConn_WriteMessages() {
	c, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()

	dst := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	msgs := make([]batchconn.Message, 3000)
	for i := range msgs {
		msgs[i] = batchconn.Message{Addr: dst, Buffers: [][]byte{make([]byte, 100)}}
	}
	msgs[2500].Addr = netip.AddrPortFrom(dst.Addr(), 0) // port 0: cannot be sent

	sent := 0
	for len(msgs) > 0 {
		n, err := c.WriteMessages(context.Background(), msgs, 0)
		if err != nil {
			var oe *net.OpError
			errors.As(err, &oe) // errors are *net.OpError; print the cause
			fmt.Println("message", sent, "failed:", oe.Err)
			break
		}
		sent += n
		msgs = msgs[n:]
	}
	fmt.Println("sent", sent)
	// Output:
	// message 2500 failed: batchconn: port 0 is not a valid destination: 127.0.0.1:0
	// sent 2500
}

// Turn UDP GSO off for one Conn, and see why it is off.
func ExampleWithGSO() {
	c, err := batchconn.Listen("udp4", "127.0.0.1:0", batchconn.WithGSO(false))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.GSOEnabled(), c.Stats().GSOOff)
	// Output: false disabled by WithGSO(false)
}

// A forwarding loop writes one packet to every subscriber, then the next:
// one goroutine, one datagram per call, as a media server does. With a
// write queue each write copies its datagram and returns, and the Conn
// sends them in batches; Flush waits until they are out and reports the
// first one the kernel refused.
func ExampleWithWriteQueue() {
	var subs []*net.UDPConn
	for range 3 {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		subs = append(subs, s)
	}
	c, err := batchconn.Listen("udp4", "127.0.0.1:0", batchconn.WithWriteQueue(64<<10))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	packet := make([]byte, 1200)
	for seq := range 10 {
		packet[0] = byte(seq)
		for _, s := range subs {
			if _, err := c.WriteToUDPAddrPort(packet, s.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				log.Fatal(err) // refused before queueing, as a *net.UDPConn refuses it
			}
		}
	}
	if err := c.Flush(context.Background()); err != nil {
		log.Fatal(err) // the first queued datagram the kernel refused
	}
	st := c.Stats()
	fmt.Println("queued", st.QueueWrites, "sent", st.Messages, "failed", st.QueueFailures.Total())
	// Output: queued 30 sent 30 failed 0
}
