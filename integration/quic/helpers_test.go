package quicbatch

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

const alpn = "quicbatch-test"

// testSize scales a transfer size down under the race detector.
func testSize(full int64) int64 {
	if raceEnabled {
		return min(full, 16<<20)
	}
	return full
}

var (
	tlsOnce        sync.Once
	tlsSrv, tlsCli *tls.Config
)

// tlsConfigs returns a server and a client TLS configuration sharing one
// self-signed ed25519 certificate for 127.0.0.1.
func tlsConfigs(t testing.TB) (srv, cli *tls.Config) {
	tlsOnce.Do(func() {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:              []string{"localhost"},
			BasicConstraintsValid: true,
			IsCA:                  true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			panic(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		tlsSrv = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
			NextProtos:   []string{alpn},
		}
		tlsCli = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{alpn}}
	})
	return tlsSrv, tlsCli
}

func quicConfig() *quic.Config {
	return &quic.Config{
		MaxIdleTimeout:             30 * time.Second,
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     16 << 20,
		MaxConnectionReceiveWindow: 32 << 20,
	}
}

// A side is one endpoint: a UDP socket, plain or wrapped, and its Transport.
type side struct {
	udp  *net.UDPConn
	qb   *Conn // nil when plain
	tr   *quic.Transport
	addr net.Addr // where clients dial it
}

func newSide(t testing.TB, wrap bool, opts ...Option) *side {
	t.Helper()
	return newSideOn(t, "udp4", "127.0.0.1:0", wrap, opts...)
}

// newSideOn is newSide on a socket bound to address on network.
func newSideOn(t testing.TB, network, address string, wrap bool, opts ...Option) *side {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP(network, la)
	if err != nil {
		t.Fatal(err)
	}
	return newSideWith(t, udp, wrap, opts...)
}

// newSideWith is newSide on udp, which it closes when the test ends.
func newSideWith(t testing.TB, udp *net.UDPConn, wrap bool, opts ...Option) *side {
	t.Helper()
	var err error
	s := &side{udp: udp, addr: udp.LocalAddr()}
	var pc net.PacketConn = udp
	if wrap {
		if s.qb, err = Wrap(udp, opts...); err != nil {
			udp.Close()
			t.Fatal(err)
		}
		pc = s.qb
	}
	s.tr = &quic.Transport{Conn: pc}
	t.Cleanup(func() {
		s.tr.Close()
		if s.qb != nil {
			s.qb.Close()
		} else {
			udp.Close()
		}
	})
	return s
}

// transferResult holds what the checks need after a transfer.
type transferResult struct {
	client, server []quic.ConnectionState
}

// transfer runs conns QUIC connections from cli to srv, each moving size
// bytes (server to client when download, else client to server), and fails
// the test unless every byte arrives intact (SHA-256).
func transfer(t testing.TB, srv, cli *side, conns int, size int64, download bool) transferResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srvTLS, cliTLS := tlsConfigs(t)
	ln, err := srv.tr.Listen(srvTLS, quicConfig())
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()

	var res transferResult
	var mu sync.Mutex
	errc := make(chan error, 2*conns)
	var wg sync.WaitGroup
	wg.Go(func() {
		var hw sync.WaitGroup
		for range conns {
			c, err := ln.Accept(ctx)
			if err != nil {
				errc <- fmt.Errorf("Accept: %w", err)
				return
			}
			hw.Go(func() {
				if err := serve(ctx, c); err != nil {
					errc <- fmt.Errorf("server: %w", err)
				}
				mu.Lock()
				res.server = append(res.server, c.ConnectionState())
				mu.Unlock()
			})
		}
		hw.Wait()
	})
	for i := range conns {
		wg.Go(func() {
			st, err := fetch(ctx, cli.tr, srv.addr, cliTLS, size, uint64(i), download)
			if err != nil {
				errc <- fmt.Errorf("client %d: %w", i, err)
				cancel()
				return
			}
			mu.Lock()
			res.client = append(res.client, st)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return res
}

// The stream protocol: the client sends size, seed and direction; the
// sender then sends size bytes and their SHA-256; an upload is acknowledged
// with one byte.
func serve(ctx context.Context, c *quic.Conn) error {
	defer c.CloseWithError(0, "")
	str, err := c.AcceptStream(ctx)
	if err != nil {
		return err
	}
	var hdr [17]byte
	if _, err := io.ReadFull(str, hdr[:]); err != nil {
		return err
	}
	size, seed := int64(binary.BigEndian.Uint64(hdr[:])), binary.BigEndian.Uint64(hdr[8:])
	if hdr[16] == 1 {
		if err := sendData(str, size, seed); err != nil {
			return err
		}
	} else {
		if err := recvData(str, size); err != nil {
			return err
		}
		if _, err := str.Write([]byte{1}); err != nil {
			return err
		}
	}
	if err := str.Close(); err != nil {
		return err
	}
	// Wait for the client to close, so that nothing is cut short.
	select {
	case <-c.Context().Done():
	case <-ctx.Done():
	}
	return nil
}

func fetch(ctx context.Context, tr *quic.Transport, addr net.Addr, tlsConf *tls.Config, size int64, seed uint64, download bool) (quic.ConnectionState, error) {
	c, err := tr.Dial(ctx, addr, tlsConf, quicConfig())
	if err != nil {
		return quic.ConnectionState{}, fmt.Errorf("Dial: %w", err)
	}
	defer c.CloseWithError(0, "")
	return fetchOn(ctx, c, size, seed, download)
}

// fetchOn runs the stream protocol on c, a connection already established.
func fetchOn(ctx context.Context, c *quic.Conn, size int64, seed uint64, download bool) (quic.ConnectionState, error) {
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return quic.ConnectionState{}, err
	}
	var hdr [17]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(size))
	binary.BigEndian.PutUint64(hdr[8:], seed)
	if download {
		hdr[16] = 1
	}
	if _, err := str.Write(hdr[:]); err != nil {
		return quic.ConnectionState{}, err
	}
	if download {
		if err := str.Close(); err != nil {
			return quic.ConnectionState{}, err
		}
		if err := recvData(str, size); err != nil {
			return quic.ConnectionState{}, err
		}
	} else {
		if err := sendData(str, size, seed); err != nil {
			return quic.ConnectionState{}, err
		}
		if err := str.Close(); err != nil {
			return quic.ConnectionState{}, err
		}
		var ack [1]byte
		if _, err := io.ReadFull(str, ack[:]); err != nil {
			return quic.ConnectionState{}, fmt.Errorf("reading ack: %w", err)
		}
	}
	return c.ConnectionState(), nil
}

// sendData writes size pseudo-random bytes and their SHA-256.
func sendData(w io.Writer, size int64, seed uint64) error {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	rng := mrand.NewChaCha8(key)
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for size > 0 {
		p := buf[:min(int64(len(buf)), size)]
		rng.Read(p)
		h.Write(p)
		if _, err := w.Write(p); err != nil {
			return err
		}
		size -= int64(len(p))
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

// recvData reads size bytes and checks them against the SHA-256 that follows.
func recvData(r io.Reader, size int64) error {
	h := sha256.New()
	if n, err := io.CopyBuffer(h, io.LimitReader(r, size), make([]byte, 64<<10)); err != nil || n != size {
		return fmt.Errorf("received %d of %d bytes: %v", n, size, err)
	}
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return fmt.Errorf("reading SHA-256: %w", err)
	}
	if got := h.Sum(nil); string(got) != string(sum[:]) {
		return errors.New("SHA-256 mismatch: data corrupted")
	}
	return nil
}
