package batchconn_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/batchconn/batchconn/batchconn"
)

// A relay: read a batch of datagrams and write them back out, to another
// address, with the same Message values.
func ExampleConn_ReadMessages() {
	ctx := context.Background()
	backend, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	relay, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer relay.Close()
	client, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The client sends three datagrams to the relay.
	to := relay.LocalAddr().(*net.UDPAddr).AddrPort()
	_, err = client.WriteMessages(ctx, []batchconn.Message{
		{Addr: to, Buffers: [][]byte{[]byte("one")}},
		{Addr: to, Buffers: [][]byte{[]byte("two")}},
		{Addr: to, Buffers: [][]byte{[]byte("three")}},
	}, 0)
	if err != nil {
		log.Fatal(err)
	}

	// The relay reads what is queued, up to 8 at a time, and forwards each
	// datagram as it came: the bytes received, to the backend.
	msgs := make([]batchconn.Message, 8)
	bufs := make([][]byte, len(msgs))
	for i := range msgs {
		bufs[i] = make([]byte, 1500)
	}
	backendAddr := backend.LocalAddr().(*net.UDPAddr).AddrPort()
	for relayed := 0; relayed < 3; {
		for i := range msgs {
			msgs[i].Buffers = bufs[i : i+1] // full size again for reading
		}
		n, err := relay.ReadMessages(ctx, msgs, 0)
		if err != nil {
			log.Fatal(err)
		}
		batch := msgs[:n]
		for i := range batch {
			fmt.Printf("from client: %q\n", bufs[i][:batch[i].N])
			batch[i].Addr = backendAddr
			batch[i].Buffers[0] = bufs[i][:batch[i].N]
		}
		for len(batch) > 0 {
			k, err := relay.WriteMessages(ctx, batch, 0)
			if err != nil {
				log.Fatal(err)
			}
			batch = batch[k:]
		}
		relayed += n
	}

	buf := make([]byte, 1500)
	for range 3 {
		n, from, err := backend.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("backend got %q from the relay: %v\n", buf[:n], from.String() == relay.LocalAddr().String())
	}
	// Output:
	// from client: "one"
	// from client: "two"
	// from client: "three"
	// backend got "one" from the relay: true
	// backend got "two" from the relay: true
	// backend got "three" from the relay: true
}
