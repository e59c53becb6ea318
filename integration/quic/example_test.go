package quicbatch_test

import (
	"context"
	"crypto/tls"
	"log"
	"net"

	"github.com/quic-go/quic-go"

	quicbatch "github.com/batchconn/batchconn/integration/quic"
)

// Wrap a UDP socket and give it to quic-go: the only line that differs from
// plain quic-go is the call to Wrap.
func Example() {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := quicbatch.Wrap(udp) // was: conn := udp
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close() // after the Transport: Transport.Close does not close it
	tr := &quic.Transport{Conn: conn}
	defer tr.Close()

	var tlsConf *tls.Config // your server's certificate and ALPN
	ln, err := tr.Listen(tlsConf, nil)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		go func() {
			defer c.CloseWithError(0, "")
			// ... serve c; all its packets leave through the batched conn.
			log.Printf("GSO in use: %v, sends so far: %+v", c.ConnectionState().GSO, conn.Stats())
		}()
	}
}
