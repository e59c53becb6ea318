// Command quic-transfer moves data between a QUIC server and client in one
// process, both sending through quicbatch, and prints the throughput and
// what the wrapper did.
//
//	go run ./examples/quic-transfer -conns 8 -bytes 1GiB
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	quicbatch "github.com/batchconn/batchconn/integration/quic"
)

func main() {
	conns := flag.Int("conns", 4, "concurrent QUIC connections on one server socket")
	size := flag.String("bytes", "512MiB", "bytes the server sends, over all connections")
	flag.Parse()
	total, err := parseBytes(*size)
	if err != nil {
		log.Fatal(err)
	}

	// Server: one socket, wrapped; quic-go sees a *net.UDPConn look-alike.
	srvUDP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	srvConn, err := quicbatch.Wrap(srvUDP) // was: srvConn := srvUDP
	if err != nil {
		log.Fatal(err)
	}
	srvTr := &quic.Transport{Conn: srvConn}
	ln, err := srvTr.Listen(serverTLS(), quicConfig())
	if err != nil {
		log.Fatal(err)
	}
	go serve(ln)

	// Client: another wrapped socket, shared by all client connections.
	cliUDP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	cliConn, err := quicbatch.Wrap(cliUDP)
	if err != nil {
		log.Fatal(err)
	}
	cliTr := &quic.Transport{Conn: cliConn}

	per := total / int64(*conns)
	start := time.Now()
	var wg sync.WaitGroup
	var gso sync.Map
	for i := range *conns {
		wg.Go(func() {
			if err := fetch(cliTr, ln.Addr(), per, i, &gso); err != nil {
				log.Fatalf("connection %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	moved := per * int64(*conns)
	fmt.Printf("%d connections moved %.0f MiB in %v: %.2f Gbit/s\n",
		*conns, float64(moved)/(1<<20), elapsed.Round(time.Millisecond), float64(moved)*8/elapsed.Seconds()/1e9)
	if v, ok := gso.Load(0); ok {
		fmt.Printf("quic-go uses GSO through the wrapper: %v\n", v)
	}
	for _, e := range []struct {
		name string
		c    *quicbatch.Conn
	}{{"server", srvConn}, {"client", cliConn}} {
		st := e.c.Stats()
		fmt.Printf("%s: %d packets (%d queued behind a send in flight) in %d send system calls: %.2f per call, largest batch %d\n",
			e.name, st.Messages, st.Queued, st.Syscalls, st.MessagesPerSyscall(), st.MaxBatch)
	}

	ln.Close()
	cliTr.Close()
	srvTr.Close()
	cliConn.Close()
	srvConn.Close()
}

func serve(ln *quic.Listener) {
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	for {
		c, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		go func() {
			str, err := c.AcceptStream(context.Background())
			if err != nil {
				return
			}
			var hdr [8]byte
			if _, err := io.ReadFull(str, hdr[:]); err != nil {
				return
			}
			for n := int64(binary.BigEndian.Uint64(hdr[:])); n > 0; {
				p := payload[:min(int64(len(payload)), n)]
				if _, err := str.Write(p); err != nil {
					return
				}
				n -= int64(len(p))
			}
			str.Close()
			<-c.Context().Done()
		}()
	}
}

func fetch(tr *quic.Transport, addr net.Addr, size int64, i int, gso *sync.Map) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := tr.Dial(ctx, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"quic-transfer"}}, quicConfig())
	if err != nil {
		return err
	}
	defer c.CloseWithError(0, "")
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(size))
	if _, err := str.Write(hdr[:]); err != nil {
		return err
	}
	str.Close()
	n, err := io.Copy(io.Discard, str)
	if err == nil && n != size {
		err = fmt.Errorf("got %d of %d bytes", n, size)
	}
	gso.Store(i, c.ConnectionState().GSO)
	return err
}

func quicConfig() *quic.Config {
	return &quic.Config{
		MaxStreamReceiveWindow:     1 << 30,
		MaxConnectionReceiveWindow: 1 << 30,
	}
}

// serverTLS returns a throwaway self-signed certificate. The client skips
// verification: this is a loopback demo, never do that on a network.
func serverTLS() *tls.Config {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		log.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		NextProtos:   []string{"quic-transfer"},
	}
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad -bytes %q", s)
	}
	return n * mult, nil
}
