package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// wgConfig is what the parent tells a wireguard-go process, as one JSON
// line on its standard input.
type wgConfig struct {
	Label         string // for logs and profile names: "r1-a2b-A-std"
	Bind          string // "std" or "batch"
	GRO, GSO      bool   // wgbatch's options
	TUN           string // the TUN device's name
	MTU           int    // the TUN's
	PrivateKey    string // hex, as the UAPI takes it
	PeerPublicKey string
	ListenPort    int
	PeerEndpoint  string // the peer's veth address and port
	PeerAllowedIP string // the peer's tunnel address, a /32
	PeerTunnelIP  string // the same, without the prefix length
}

// The commands a wireguard-go process answers on its standard input, one a
// line, each with one line on its standard output ("ERR ..." on failure).
// The parent closing the input ends the process.
const (
	cmdHandshake = "HANDSHAKE" // make sure the handshake with the peer is done
	cmdRusage    = "RUSAGE"    // report user and system CPU so far, in µs
)

// runWireGuard is a wireguard-go process: one device on a kernel TUN, with
// the Bind and peer the configuration on stdin names.
func runWireGuard(stdin io.Reader, stdout, stderr io.Writer) error {
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return fmt.Errorf("no configuration on stdin: %v", in.Err())
	}
	var cfg wgConfig
	if err := json.Unmarshal(in.Bytes(), &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	stop, err := bench.ChildProfile(envProfile, "wg-"+cfg.Label)
	if err != nil {
		return err
	}
	defer stop()
	bind, err := newBind(cfg.Bind, cfg.GRO, cfg.GSO)
	if err != nil {
		return err
	}
	tdev, err := tun.CreateTUN(cfg.TUN, cfg.MTU)
	if err != nil {
		return err
	}
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf:   log.New(stderr, "wireguard-go "+cfg.Label+": ", log.Lmicroseconds).Printf,
	}
	dev := device.NewDevice(tdev, bind, logger) // owns tdev and bind from here on
	defer dev.Close()
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\nreplace_peers=true\npublic_key=%s\nendpoint=%s\nallowed_ip=%s\n",
		cfg.PrivateKey, cfg.ListenPort, cfg.PeerPublicKey, cfg.PeerEndpoint, cfg.PeerAllowedIP)); err != nil {
		return fmt.Errorf("IpcSet: %w", err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("device up: %w", err)
	}
	fmt.Fprintln(stdout, "READY")
	for in.Scan() {
		switch cmd := in.Text(); cmd {
		case cmdHandshake:
			if err := handshake(dev, cfg.PeerTunnelIP, 10*time.Second); err != nil {
				fmt.Fprintf(stdout, "ERR %v\n", err)
				continue
			}
			fmt.Fprintln(stdout, "OK")
		case cmdRusage:
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
				fmt.Fprintf(stdout, "ERR getrusage: %v\n", err)
				continue
			}
			fmt.Fprintf(stdout, "%d %d\n", ru.Utime.Nano()/1000, ru.Stime.Nano()/1000)
		default:
			fmt.Fprintf(stdout, "ERR unknown command %q\n", cmd)
		}
	}
	return in.Err() // nil at EOF: the parent is done
}

// handshake sends UDP datagrams through the tunnel to the peer's tunnel
// address (its discard port, where nothing listens) until the device
// reports a completed handshake, so no run's window includes one.
func handshake(dev *device.Device, peerIP string, timeout time.Duration) error {
	c, err := net.Dial("udp4", net.JoinHostPort(peerIP, "9"))
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for next := time.Now(); ; {
		if time.Now().After(next) {
			c.Write([]byte("wgbench")) // errors (ICMP port unreachable from the peer) are of no interest
			next = time.Now().Add(250 * time.Millisecond)
		}
		state, err := dev.IpcGet()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(state, "\n") {
			if v, ok := strings.CutPrefix(line, "last_handshake_time_sec="); ok && v != "0" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no handshake with %s within %v", peerIP, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// envProfile names a directory: each wireguard-go process writes its CPU
// profile there (wg-<label>-<pid>.pprof).
const envProfile = "WGBENCH_CPUPROFILE"

// ---- the TCP endpoints ----

// The payload: a run of 1 MiB blocks, all one fixed pseudo-random block
// except for their first 8 bytes, which hold the block's number, so no two
// blocks are alike and a lost, repeated or misplaced block changes the
// checksum too. The sender writes the block itself (no generation cost per
// byte); both ends compute CRC-32C (Castagnoli, in hardware on amd64 and
// arm64) of the stream, so the check costs the same little in every mode.
const blockSize = 1 << 20

var (
	block = func() []byte {
		b := make([]byte, blockSize)
		mrand.NewChaCha8([32]byte{'w', 'g', 'b', 'e', 'n', 'c', 'h'}).Read(b)
		return b
	}()
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// endReport is what the TCP sender and receiver print, as JSON.
type endReport struct {
	Bytes   int64
	CRC     uint32  // CRC-32C of the stream: the sender's of what it meant to send
	Seconds float64 // the receiver's, from accept to the end of the stream
}

// sendPayload writes size bytes of the payload to w and returns the
// CRC-32C of the payload. With 0 <= corrupt < size, the byte at that
// offset is flipped on the wire but not in the checksum.
func sendPayload(w io.Writer, size, corrupt int64) (uint32, error) {
	var crc uint32
	buf := make([]byte, blockSize)
	copy(buf, block)
	for k, off := int64(0), int64(0); off < size; k, off = k+1, off+blockSize {
		n := min(blockSize, size-off)
		binary.BigEndian.PutUint64(buf, uint64(k))
		b := buf[:n]
		crc = crc32.Update(crc, castagnoli, b)
		if corrupt >= off && corrupt < off+n {
			b = append([]byte(nil), b...)
			b[corrupt-off] ^= 0x01
		}
		if _, err := w.Write(b); err != nil {
			return crc, err
		}
	}
	return crc, nil
}

// runSender connects to the receiver, sends the payload and reports.
func runSender(cfg config, stdout io.Writer) error {
	c, err := net.DialTimeout("tcp4", cfg.addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	crc, err := sendPayload(c, cfg.total, cfg.corrupt)
	if err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	// Wait for the receiver to close: then it has every byte.
	if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
		return fmt.Errorf("waiting for the receiver to close: %d bytes, %v", n, err)
	}
	return json.NewEncoder(stdout).Encode(endReport{Bytes: cfg.total, CRC: crc})
}

// runReceiver accepts one connection, reads it to its end and reports.
func runReceiver(cfg config, stdout io.Writer) error {
	ln, err := net.Listen("tcp4", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintln(stdout, "LISTEN")
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	buf := make([]byte, 256<<10)
	var (
		crc uint32
		got int64
	)
	for {
		n, err := c.Read(buf)
		crc = crc32.Update(crc, castagnoli, buf[:n])
		got += int64(n)
		if got > cfg.total {
			return fmt.Errorf("got %d bytes or more, more than the %d sent", got, cfg.total)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
	elapsed := time.Since(start)
	return json.NewEncoder(stdout).Encode(endReport{Bytes: got, CRC: crc, Seconds: elapsed.Seconds()})
}
