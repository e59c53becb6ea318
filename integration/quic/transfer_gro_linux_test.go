package quicbatch

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"
)

// checkGROUse fails unless the receiving side r split coalesced buffers
// exactly when it should: GRO on for its socket and quic-go's peer sending
// GSO buffers.
func checkGROUse(t *testing.T, name string, r *side, gro bool) {
	t.Helper()
	if r.qb == nil {
		return
	}
	on := wantGRO(t, r.qb, gro)
	st := r.qb.Stats()
	t.Logf("%s receive: ReadBatch %d, syscalls %d, packets %d (%.1f per syscall), GRO buffers %d (%.1f packets each), GRO %v %s",
		name, st.ReadBatches, st.RecvSyscalls, st.RecvPackets, st.PacketsPerRecvSyscall(), st.GROBuffers, st.PacketsPerGROBuffer(), st.GRO, st.GROOff)
	switch {
	case on && quicGoGSO(t) && st.GROBuffers == 0:
		t.Errorf("%s: GRO on and the peer sends GSO buffers, but nothing was coalesced: %+v", name, st)
	case !on && st.GROBuffers != 0:
		t.Errorf("%s: GRO off, but %d coalesced buffers were split", name, st.GROBuffers)
	}
	if st.RecvPackets == 0 || st.ReadBatches == 0 {
		t.Errorf("%s: quic-go did not read through ReadBatch: %+v", name, st)
	}
}

func TestTransferWithGROOnAndOff(t *testing.T) {
	for _, gro := range []bool{true, false} {
		for _, tc := range []struct {
			conns    int
			download bool
		}{{1, true}, {1, false}, {16, true}, {16, false}} {
			dir := "upload"
			if tc.download {
				dir = "download"
			}
			t.Run(fmt.Sprintf("GRO %v, %d connections %s", gro, tc.conns, dir), func(t *testing.T) {
				srv, cli := newSide(t, true, WithGRO(gro)), newSide(t, true, WithGRO(gro))
				transfer(t, srv, cli, tc.conns, testSize(64<<20)/int64(tc.conns), tc.download)
				if tc.download {
					checkGROUse(t, "client", cli, gro)
				} else {
					checkGROUse(t, "server", srv, gro)
				}
			})
		}
	}
}

// A plain quic-go peer talking to a quicbatch peer, both ways: the
// quicbatch side receives the plain side's GSO buffers through GRO.
func TestTransferPlainPeerSendsToGROPeer(t *testing.T) {
	for _, tc := range []struct {
		name             string
		srvWrap, cliWrap bool
		download         bool
	}{
		{"plain server sends to quicbatch client", false, true, true},
		{"plain client sends to quicbatch server", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := newSide(t, tc.srvWrap), newSide(t, tc.cliWrap)
			transfer(t, srv, cli, 4, testSize(64<<20)/4, tc.download)
			if tc.download {
				checkGROUse(t, "client", cli, true)
			} else {
				checkGROUse(t, "server", srv, true)
			}
		})
	}
}

func TestTransferIPv6(t *testing.T) {
	skipWithoutIPv6(t)
	for _, download := range []bool{true, false} {
		t.Run(fmt.Sprintf("download %v", download), func(t *testing.T) {
			srv, cli := newSideOn(t, "udp6", "[::1]:0", true), newSideOn(t, "udp6", "[::1]:0", true)
			transfer(t, srv, cli, 4, testSize(32<<20)/4, download)
			if download {
				checkGROUse(t, "client", cli, true)
			} else {
				checkGROUse(t, "server", srv, true)
			}
		})
	}
}

// A server on a dual-stack socket ([::]) gets packet info with every
// datagram (quic-go asks for it on an unspecified address and answers from
// the address the packet came to): every split packet carries it.
func TestTransferDualStackServer(t *testing.T) {
	clients := []struct{ network, address, dial string }{{"udp4", "127.0.0.1:0", "127.0.0.1"}}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
		c.Close()
		clients = append(clients, struct{ network, address, dial string }{"udp6", "[::1]:0", "::1"})
	} else {
		t.Logf("no IPv6 loopback (%v): IPv4 clients only", err)
	}
	for _, cl := range clients {
		for _, download := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s client, download %v", cl.network, download), func(t *testing.T) {
				srv := newSideOn(t, "udp", ":0", true)
				srv.addr = &net.UDPAddr{IP: net.ParseIP(cl.dial), Port: srv.udp.LocalAddr().(*net.UDPAddr).Port}
				cli := newSideOn(t, cl.network, cl.address, true)
				transfer(t, srv, cli, 4, testSize(32<<20)/4, download)
				if download {
					checkGROUse(t, "client", cli, true)
				} else {
					checkGROUse(t, "server", srv, true)
				}
			})
		}
	}
}

// Closing the Conns in the middle of a transfer ends every goroutine of
// quicbatch and of the Transports using them.
func TestCloseDuringTransferLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, cli := newSide(t, true), newSide(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srvTLS, cliTLS := tlsConfigs(t)
	ln, err := srv.tr.Listen(srvTLS, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if c, err := ln.Accept(ctx); err == nil {
			serve(ctx, c)
		}
	})
	wg.Go(func() {
		fetch(ctx, cli.tr, srv.addr, cliTLS, 1<<40, 1, true) // ends when the Conns close
	})
	waitFor(t, "the transfer to start", func() bool { return cli.qb.Stats().RecvPackets > 1000 })
	if err := cli.qb.Close(); err != nil {
		t.Errorf("client Close: %v", err)
	}
	if err := srv.qb.Close(); err != nil {
		t.Errorf("server Close: %v", err)
	}
	cli.tr.Close()
	srv.tr.Close()
	ln.Close()
	cancel()
	wg.Wait()
	var stacks string
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if runtime.NumGoroutine() <= before && !strings.Contains(stacks, "quicbatch") {
			return
		}
		if time.Now().After(end) {
			break
		}
	}
	t.Fatalf("%d goroutines before, %d after closing:\n%s", before, runtime.NumGoroutine(), stacks)
}

// readShape records how quic-go calls ReadBatch.
type readShape struct {
	*Conn
	mu      sync.Mutex
	calls   int
	sizes   map[int]int // len(ms) -> calls
	bufLens map[int]int // len(Buffers[0]) -> messages
	oobLens map[int]int // len(OOB) -> messages
	nbufs   map[int]int // len(Buffers) -> messages
	flags   map[int]int
	prev    []*byte // the buffers of the previous call
	prevN   int
	swapped int // consumed buffers replaced before the next call
	reused  int // consumed buffers handed in again
}

func (r *readShape) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	r.mu.Lock()
	r.calls++
	r.sizes[len(ms)]++
	r.flags[flags]++
	cur := make([]*byte, len(ms))
	for i, m := range ms {
		r.nbufs[len(m.Buffers)]++
		r.oobLens[len(m.OOB)]++
		if len(m.Buffers) > 0 {
			r.bufLens[len(m.Buffers[0])]++
			if len(m.Buffers[0]) > 0 {
				cur[i] = &m.Buffers[0][0]
			}
		}
	}
	for i := range min(r.prevN, len(cur)) {
		if cur[i] == r.prev[i] {
			r.reused++
		} else {
			r.swapped++
		}
	}
	r.mu.Unlock()
	n, err := r.Conn.ReadBatch(ms, flags)
	r.mu.Lock()
	r.prev, r.prevN = cur, n
	r.mu.Unlock()
	return n, err
}

// If this fails after a quic-go upgrade, quic-go changed how it reads:
// the batch size, buffer size or OOB room quicbatch's receive path and its
// measurements assume (internal/udp/conn_oob.go in v0.66: 8 messages of one
// 1452-byte buffer and 128 bytes of OOB on Linux, flags 0, and buffers from
// its pool in place of the ones it consumed).
func TestGuardQuicGoReadShape(t *testing.T) {
	srv, cli := newSide(t, true), newSide(t, true)
	rec := &readShape{Conn: cli.qb, sizes: map[int]int{}, bufLens: map[int]int{}, oobLens: map[int]int{}, nbufs: map[int]int{}, flags: map[int]int{}}
	cli.tr = &quic.Transport{Conn: rec}
	t.Cleanup(func() { cli.tr.Close() })
	transfer(t, srv, cli, 1, 4<<20, true)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	one := func(name string, m map[int]int, want int) {
		if len(m) != 1 || m[want] == 0 {
			t.Errorf("quic-go's ReadBatch calls: %s %v, want always %d", name, m, want)
		}
	}
	one("len(ms)", rec.sizes, quicGoBatch)
	one("len(Buffers)", rec.nbufs, 1)
	one("len(Buffers[0])", rec.bufLens, quicGoBufSize)
	one("len(OOB)", rec.oobLens, quicGoOOBSize)
	one("flags", rec.flags, 0)
	// quic-go takes fresh buffers from a pool for the consumed ones, so a
	// buffer it has released may come back at once: replaced buffers show
	// that it swaps, a few repeats are the pool's.
	if rec.swapped == 0 || rec.reused > rec.swapped/10 {
		t.Errorf("quic-go replaced %d consumed buffers and handed %d in again; want them replaced", rec.swapped, rec.reused)
	}
	t.Logf("%d ReadBatch calls", rec.calls)
}
