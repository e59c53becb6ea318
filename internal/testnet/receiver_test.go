package testnet

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// sendNumbered sends n datagrams from tx to dst whose payloads are their
// index in decimal, "0" to "n-1".
func sendNumbered(t *testing.T, tx *net.UDPConn, dst netip.AddrPort, n int) {
	t.Helper()
	for i := range n {
		if _, err := tx.WriteToUDPAddrPort([]byte(strconv.Itoa(i)), dst); err != nil {
			t.Fatalf("sending datagram %d to %v: %v", i, dst, err)
		}
	}
}

// checkNumbered checks that got holds exactly the n datagrams sendNumbered
// sent, in order, all from the address from.
func checkNumbered(t *testing.T, got []Datagram, n int, from netip.AddrPort) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("received %d datagrams, want %d", len(got), n)
	}
	for i, d := range got {
		if want := strconv.Itoa(i); string(d.Payload) != want {
			t.Fatalf("datagram %d has payload %q, want %q", i, d.Payload, want)
		}
		if d.From.Addr().Unmap() != from.Addr() || d.From.Port() != from.Port() {
			t.Fatalf("datagram %d is from %v, want %v", i, d.From, from)
		}
	}
}

func TestReceiverGetsEveryDatagramInOrder(t *testing.T) {
	const n = 2000
	tests := []struct {
		name       string
		rxNet      string // network of the receiving socket
		txNet      string // network of the sending socket
		mapToIPv4  bool   // send to 127.0.0.1 rather than rx.Addr()
		wantRxAddr netip.Addr
	}{
		{"IPv4 to IPv4", "udp4", "udp4", false, netip.MustParseAddr("127.0.0.1")},
		{"IPv6 to IPv6", "udp6", "udp6", false, netip.IPv6Loopback()},
		{"IPv4 to dual-stack", "udp", "udp4", true, netip.IPv6Loopback()},
		{"IPv6 to dual-stack", "udp", "udp6", false, netip.IPv6Loopback()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rx := NewReceiver(t, ListenUDP(t, tt.rxNet))
			tx := ListenUDP(t, tt.txNet)
			if got := rx.Addr().Addr(); got != tt.wantRxAddr {
				t.Errorf("Addr() = %v, want address %v", rx.Addr(), tt.wantRxAddr)
			}
			dst := rx.Addr()
			if tt.mapToIPv4 {
				dst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dst.Port())
			}
			sendNumbered(t, tx, dst, n)
			checkNumbered(t, rx.Collect(n, 10*time.Second), n, localAddrPort(tx))
		})
	}
}

// chargePerDatagram bounds what the kernel charges a socket's receive buffer
// for one queued 1200-byte datagram on loopback (its skb's truesize): 2304
// bytes on Linux 6.18, read from /proc/net/udp's rx_queue with 100 datagrams
// queued. A page leaves room for kernels that charge more.
const chargePerDatagram = 4096

// burstFor returns how many datagrams of a burst of at most want a socket
// with the receive buffer rc can queue whole while its reader has not yet
// read any: the loss-free burst a test can send at a Receiver, whose reader
// may fall far behind (under -race it is ten times slower than a batched
// sender). rc < 0 means the size is unknown: one batch of 1024.
func burstFor(rc, want int) int {
	if rc < 0 {
		return min(want, 1024)
	}
	return max(1, min(want, rc/chargePerDatagram))
}

func TestBurstForFitsTheReceiveBuffer(t *testing.T) {
	tests := []struct {
		name         string
		rc, want, is int
	}{
		{"root: SO_RCVBUFFORCE got 128 MiB, so all 20 batches fit", 128 << 20, 20 * 1024, 20 * 1024},
		{"non-root: rmem_max of 4 MiB caps it at 8 MiB", 8 << 20, 20 * 1024, 2048},
		{"Linux's default rmem_max of 208 KiB", 2 * 212992, 20 * 1024, 104},
		{"a buffer too small for one datagram still sends one", 100, 20 * 1024, 1},
		{"unknown size: one batch", -1, 20 * 1024, 1024},
		{"never more than asked for", 128 << 20, 10, 10},
	}
	for _, tt := range tests {
		if got := burstFor(tt.rc, tt.want); got != tt.is {
			t.Errorf("%s: burstFor(%d, %d) = %d, want %d", tt.name, tt.rc, tt.want, got, tt.is)
		}
	}
}

func TestReceiverKeepsUpWithABatchedSender(t *testing.T) {
	// Up to 20 full sendmmsg(2) batches of 1024 (UIO_MAXIOV) datagrams,
	// sent as fast as the kernel takes them: as many as the receive buffer
	// the socket actually got can hold. Without CAP_NET_ADMIN the kernel
	// refuses SO_RCVBUFFORCE and caps SO_RCVBUF at net.core.rmem_max, and a
	// burst larger than the buffer loses datagrams whenever the reader falls
	// behind, which is a fact about the buffer, not about Receiver.
	const want, batch, size = 20 * 1024, 1024, 1200
	c := ListenUDP(t, "udp4")
	rc, err := receiveBuffer(c)
	if err != nil {
		t.Logf("cannot read back SO_RCVBUF (%v): sending one batch", err)
		rc = -1
	}
	n := burstFor(rc, want)
	t.Logf("SO_RCVBUF is %d bytes: sending %d datagrams of %d bytes", rc, n, size)
	rx := NewReceiver(t, c)
	tx := ListenUDP(t, "udp4")
	pc := ipv4.NewPacketConn(tx)
	dst := net.UDPAddrFromAddrPort(rx.Addr())
	ms := make([]ipv4.Message, batch)
	for sent := 0; sent < n; {
		next := ms[:min(batch, n-sent)]
		for i := range next {
			payload := make([]byte, size)
			binary.BigEndian.PutUint32(payload, uint32(sent+i))
			next[i] = ipv4.Message{Buffers: [][]byte{payload}, Addr: dst}
		}
		k, err := pc.WriteBatch(next, 0)
		if err != nil {
			t.Fatalf("sendmmsg after %d datagrams: %v", sent, err)
		}
		sent += k
	}
	got := rx.Collect(n, 20*time.Second)
	if len(got) != n {
		t.Fatalf("received %d datagrams, want %d", len(got), n)
	}
	for i, d := range got {
		if seq := binary.BigEndian.Uint32(d.Payload); seq != uint32(i) || len(d.Payload) != size {
			t.Fatalf("datagram %d is number %d of %d bytes, want number %d of %d bytes", i, seq, len(d.Payload), i, size)
		}
	}
}

func TestReceiverQuietShowsNoExtraDatagrams(t *testing.T) {
	rx := NewReceiver(t, ListenUDP(t, "udp4"))
	tx := ListenUDP(t, "udp4")
	sendNumbered(t, tx, rx.Addr(), 3)
	if got := rx.Quiet(100 * time.Millisecond); len(got) != 3 {
		t.Fatalf("Quiet returned %d datagrams, want 3", len(got))
	}
	if !rx.Wait(3, 0) {
		t.Error("Wait(3, 0) = false after 3 datagrams arrived")
	}
	if got := rx.Collect(3, time.Second); len(got) != 3 {
		t.Errorf("Collect after Quiet returned %d datagrams, want them again (3)", len(got))
	}
}

func TestReceiverResetForgetsDatagrams(t *testing.T) {
	rx := NewReceiver(t, ListenUDP(t, "udp6"))
	tx := ListenUDP(t, "udp6")
	sendNumbered(t, tx, rx.Addr(), 5)
	if !rx.Wait(5, 10*time.Second) {
		t.Fatalf("got %d datagrams, want 5", rx.Count())
	}
	rx.Reset()
	if n := rx.Count(); n != 0 {
		t.Fatalf("Count() = %d after Reset, want 0", n)
	}
	if rx.Wait(1, 50*time.Millisecond) {
		t.Fatal("Wait(1) = true after Reset with nothing sent")
	}
	if _, err := tx.WriteToUDPAddrPort([]byte("after"), rx.Addr()); err != nil {
		t.Fatal(err)
	}
	got := rx.Collect(1, 10*time.Second)
	if len(got) != 1 || !bytes.Equal(got[0].Payload, []byte("after")) {
		t.Fatalf("after Reset got %v, want the one datagram sent since", got)
	}
}

func TestReceiverCollectReturnsWhatArrivedOnTimeout(t *testing.T) {
	rx := NewReceiver(t, ListenUDP(t, "udp4"))
	tx := ListenUDP(t, "udp4")
	sendNumbered(t, tx, rx.Addr(), 2)
	rx.Wait(2, 10*time.Second)
	start := time.Now()
	got := rx.Collect(3, 50*time.Millisecond)
	if len(got) != 2 {
		t.Fatalf("Collect(3) returned %d datagrams, want the 2 that arrived", len(got))
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Fatalf("Collect(3) returned after %v, before its timeout", elapsed)
	}
}

func TestReceiverKeepsLargeDatagramsWhole(t *testing.T) {
	rx := NewReceiver(t, ListenUDP(t, "udp4"))
	tx := ListenUDP(t, "udp4")
	// 65507 = 65535 - 20 byte IPv4 header - 8 byte UDP header.
	payload := bytes.Repeat([]byte{0xa5}, 65507)
	if _, err := tx.WriteToUDPAddrPort(payload, rx.Addr()); err != nil {
		t.Fatal(err)
	}
	got := rx.Collect(1, 10*time.Second)
	if len(got) != 1 || !bytes.Equal(got[0].Payload, payload) {
		t.Fatalf("got %d datagrams, want one of %d bytes", len(got), len(payload))
	}
}

func TestSendableAddrReplacesWildcards(t *testing.T) {
	tests := []struct{ bound, want string }{
		{"[::]:53", "[::1]:53"},
		{"0.0.0.0:53", "127.0.0.1:53"},
		{"127.0.0.1:53", "127.0.0.1:53"},
		{"[2001:2::1]:53", "[2001:2::1]:53"},
	}
	for _, tt := range tests {
		got := sendableAddr(netip.MustParseAddrPort(tt.bound))
		if got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("sendableAddr(%s) = %v, want %s", tt.bound, got, tt.want)
		}
	}
}
