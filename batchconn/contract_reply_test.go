//go:build linux

package batchconn_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// Tests of replies from the address the peer wrote to (WithReplySource),
// rule C23, and of reads that show no more than a *net.UDPConn's (R10), on
// veth test hosts: the server host B has a second address on its link, the
// client on host A writes to that one, and the kernel's own choice of
// source for B's replies is B's first address.

// twoAddrs is a server host with two addresses per family and a client
// host.
type twoAddrs struct {
	pair            *testnet.Pair
	first4, second4 netip.Addr
	first6, second6 netip.Addr
}

func newTwoAddrs(t *testing.T) *twoAddrs {
	t.Helper()
	if !batchconn.ReplySourceSupported {
		t.Skip("reply sources need Linux's recvmmsg path (not the batchconn_sendmsg build)")
	}
	p := testnet.NewPair(t, testnet.LinkConfig{})
	h := &twoAddrs{pair: p, first4: p.B.Addr4, second4: p.B.Addr4.Next(), first6: p.B.Addr6, second6: p.B.Addr6.Next()}
	p.B.Exec(t, "ip", "addr", "add", h.second4.String()+"/24", "dev", p.B.Link)
	p.B.Exec(t, "ip", "addr", "add", h.second6.String()+"/64", "dev", p.B.Link, "nodad")
	return h
}

// server listens on B's wildcard address of network.
func (h *twoAddrs) server(t *testing.T, network string, opts ...batchconn.Option) *batchconn.Conn {
	t.Helper()
	addr := "0.0.0.0:0"
	if network != "udp4" {
		addr = "[::]:0"
	}
	var c *batchconn.Conn
	if err := h.pair.B.Run(func() (err error) {
		c, err = batchconn.Listen(network, addr, opts...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client returns a socket on A of the family of to.
func (h *twoAddrs) client(t *testing.T, to netip.Addr) *net.UDPConn {
	if to.Is4() {
		return h.pair.A.ListenUDP(t, "udp4", 0)
	}
	return h.pair.A.ListenUDP(t, "udp6", 0)
}

// A replyRead reads one datagram on the server and returns its source.
type replyRead struct {
	name string
	read func(c *batchconn.Conn, b []byte) (int, netip.AddrPort, error)
}

var replyReads = []replyRead{
	{"ReadFrom", func(c *batchconn.Conn, b []byte) (int, netip.AddrPort, error) {
		n, a, err := c.ReadFrom(b)
		if err != nil {
			return n, netip.AddrPort{}, err
		}
		return n, a.(*net.UDPAddr).AddrPort(), nil
	}},
	{"ReadFromUDPAddrPort", func(c *batchconn.Conn, b []byte) (int, netip.AddrPort, error) { return c.ReadFromUDPAddrPort(b) }},
	{"ReadMsgUDP", func(c *batchconn.Conn, b []byte) (int, netip.AddrPort, error) {
		n, _, _, a, err := c.ReadMsgUDP(b, make([]byte, 128))
		if err != nil {
			return n, netip.AddrPort{}, err
		}
		return n, a.AddrPort(), nil
	}},
	{"ReadMessages", func(c *batchconn.Conn, b []byte) (int, netip.AddrPort, error) {
		ms := []batchconn.Message{{Buffers: [][]byte{b}, OOB: make([]byte, 128)}}
		_, err := c.ReadMessages(context.Background(), ms, 0)
		return ms[0].N, ms[0].Addr, err
	}},
}

// A replyWrite writes one datagram from the server to a peer.
type replyWrite struct {
	name  string
	write func(c *batchconn.Conn, b []byte, to netip.AddrPort) error
}

var replyWrites = []replyWrite{
	{"WriteTo", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
		_, err := c.WriteTo(b, net.UDPAddrFromAddrPort(to))
		return err
	}},
	{"WriteToUDP", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
		_, err := c.WriteToUDP(b, net.UDPAddrFromAddrPort(to))
		return err
	}},
	{"WriteToUDPAddrPort", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
		_, err := c.WriteToUDPAddrPort(b, to)
		return err
	}},
	{"WriteToAddrPort", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
		_, err := c.WriteToAddrPort(b, to)
		return err
	}},
	{"WriteMsgUDP", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
		n, oobn, err := c.WriteMsgUDP(b, nil, net.UDPAddrFromAddrPort(to))
		if err == nil && (n != len(b) || oobn != 0) {
			err = fmt.Errorf("WriteMsgUDP = %d, %d; want %d, 0", n, oobn, len(b))
		}
		return err
	}},
	{"WriteMsgUDPAddrPort", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
		n, oobn, err := c.WriteMsgUDPAddrPort(b, nil, to)
		if err == nil && (n != len(b) || oobn != 0) {
			err = fmt.Errorf("WriteMsgUDPAddrPort = %d, %d; want %d, 0", n, oobn, len(b))
		}
		return err
	}},
}

// roundTrip sends a datagram from cl to dst, reads it on srv with rd,
// answers with wr (queued behind a held gate when queued), and returns the
// source of the answer as the client sees it.
func roundTrip(t *testing.T, srv *batchconn.Conn, cl *net.UDPConn, dst netip.AddrPort, rd replyRead, wr replyWrite, queued bool) netip.AddrPort {
	t.Helper()
	if _, err := cl.WriteToUDPAddrPort([]byte("ping"), dst); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64)
	n, from, err := rd.read(srv, b)
	if err != nil || string(b[:n]) != "ping" {
		t.Fatalf("%s: %q, %v", rd.name, b[:n], err)
	}
	if queued {
		srv.HoldGate() // a send in flight: the answer goes through group commit
		done := make(chan error, 1)
		go func() { done <- wr.write(srv, []byte("pong"), from) }()
		for srv.QueuedWriters() == 0 && srv.Stats().QueueWrites == 0 {
			time.Sleep(time.Millisecond)
		}
		srv.ReleaseGate()
		err = <-done
	} else {
		err = wr.write(srv, []byte("pong"), from)
	}
	if err != nil {
		t.Fatalf("%s: %v", wr.name, err)
	}
	if err := srv.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, src, err := cl.ReadFromUDPAddrPort(b)
	if err != nil || string(b[:n]) != "pong" {
		t.Fatalf("the client's read of the answer: %q, %v", b[:n], err)
	}
	return netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
}

// TestContractC23RepliesLeaveFromTheAddressThePeerWroteTo: on a wildcard
// address, every single-datagram write method answers a peer from the
// address its datagram arrived on, whatever read method took it, GRO off
// and on, alone, through group commit and through the write queue, for
// IPv4, IPv6 and a dual-stack socket's IPv4 peers.
func TestContractC23RepliesLeaveFromTheAddressThePeerWroteTo(t *testing.T) {
	h := newTwoAddrs(t)
	for _, fam := range []struct {
		network string
		second  netip.Addr
	}{{"udp4", h.second4}, {"udp6", h.second6}, {"udp", h.second4}} {
		for _, gro := range []bool{false, true} {
			for _, queue := range []bool{false, true} {
				name := fmt.Sprintf("%s to %v, %s, queue %v", fam.network, fam.second, groName(gro), queue)
				t.Run(name, func(t *testing.T) {
					opts := []batchconn.Option{batchconn.WithGRO(gro)}
					if queue {
						opts = append(opts, batchconn.WithWriteQueue(64<<10))
					}
					srv := h.server(t, fam.network, opts...)
					cl := h.client(t, fam.second)
					dst := netip.AddrPortFrom(fam.second, uint16(srv.LocalAddr().(*net.UDPAddr).Port))
					for _, rd := range replyReads {
						for _, wr := range replyWrites {
							for _, held := range []bool{false, true} {
								if got := roundTrip(t, srv, cl, dst, rd, wr, held); got != dst {
									t.Errorf("read by %s, answered by %s (held %v): the answer came from %v, want %v", rd.name, wr.name, held, got, dst)
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestContractC23Controls: without the option, or with a source of the
// writer's own, the answer leaves from where the Kernel (or the writer)
// says; and when the remembered address is gone from the host, it leaves
// from the kernel's choice, with no error.
func TestContractC23Controls(t *testing.T) {
	h := newTwoAddrs(t)
	rd, wr := replyReads[1], replyWrites[2] // ReadFromUDPAddrPort, WriteToUDPAddrPort
	t.Run("WithReplySource(false): the kernel's choice", func(t *testing.T) {
		srv := h.server(t, "udp4", batchconn.WithReplySource(false))
		dst := netip.AddrPortFrom(h.second4, uint16(srv.LocalAddr().(*net.UDPAddr).Port))
		if got := roundTrip(t, srv, h.client(t, h.second4), dst, rd, wr, false); got.Addr() != h.first4 {
			t.Fatalf("the answer came from %v; without reply sources the kernel picks %v", got, h.first4)
		}
	})
	t.Run("a source of the writer's own wins", func(t *testing.T) {
		srv := h.server(t, "udp4")
		cl := h.client(t, h.second4)
		dst := netip.AddrPortFrom(h.second4, uint16(srv.LocalAddr().(*net.UDPAddr).Port))
		own := replyWrite{"WriteMsgUDPAddrPort with its own source", func(c *batchconn.Conn, b []byte, to netip.AddrPort) error {
			_, _, err := c.WriteMsgUDPAddrPort(b, batchconn.AppendPacketInfo(nil, h.first4, 0), to)
			return err
		}}
		if got := roundTrip(t, srv, cl, dst, rd, own, false); got.Addr() != h.first4 {
			t.Fatalf("the answer came from %v, want the writer's own %v", got, h.first4)
		}
	})
	for _, queue := range []bool{false, true} {
		t.Run(fmt.Sprintf("the remembered address is gone, queue %v", queue), func(t *testing.T) {
			h := newTwoAddrs(t)
			var opts []batchconn.Option
			if queue {
				opts = append(opts, batchconn.WithWriteQueue(64<<10))
			}
			srv := h.server(t, "udp4", opts...)
			cl := h.client(t, h.second4)
			dst := netip.AddrPortFrom(h.second4, uint16(srv.LocalAddr().(*net.UDPAddr).Port))
			if got := roundTrip(t, srv, cl, dst, rd, wr, false); got != dst {
				t.Fatalf("the first answer came from %v, want %v", got, dst)
			}
			h.pair.B.Exec(t, "ip", "addr", "del", h.second4.String()+"/24", "dev", h.pair.B.Link)
			if _, err := srv.WriteToUDPAddrPort([]byte("pong"), netip.AddrPortFrom(h.pair.A.Addr4, uint16(cl.LocalAddr().(*net.UDPAddr).Port))); err != nil {
				t.Fatalf("answering after the address went: %v", err)
			}
			if err := srv.Flush(context.Background()); err != nil {
				t.Fatalf("Flush after the address went: %v", err)
			}
			b := make([]byte, 64)
			cl.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, src, err := cl.ReadFromUDPAddrPort(b)
			if err != nil || string(b[:n]) != "pong" || src.Addr() != h.first4 {
				t.Fatalf("the answer after the address went: %q from %v, %v; want it from %v", b[:n], src, err, h.first4)
			}
		})
	}
}

// TestContractR10ReadsShowWhatAUDPConnShows: a Conn asks the kernel for
// packet info to learn its peers' local addresses, and takes it out of
// what reads return, so a read shows what a *net.UDPConn's shows: no
// control message the user did not ask for, no MSG_CTRUNC; once the user
// asks for it (x/net's SetControlMessage), it is there.
func TestContractR10ReadsShowWhatAUDPConnShows(t *testing.T) {
	h := newTwoAddrs(t)
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			srv := h.server(t, "udp4", batchconn.WithGRO(gro))
			cl := h.client(t, h.second4)
			dst := netip.AddrPortFrom(h.second4, uint16(srv.LocalAddr().(*net.UDPAddr).Port))
			b, oob := make([]byte, 64), make([]byte, 128)
			for _, room := range []int{0, 16, 128} {
				cl.WriteToUDPAddrPort([]byte("ping"), dst)
				srv.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, oobn, flags, _, err := srv.ReadMsgUDP(b, oob[:room])
				if err != nil || oobn != 0 || flags != 0 {
					t.Errorf("ReadMsgUDP with %d bytes of OOB = oobn %d, flags %#x, %v; a UDPConn gives 0, 0", room, oobn, flags, err)
				}
				cl.WriteToUDPAddrPort([]byte("ping"), dst)
				ms := []batchconn.Message{{Buffers: [][]byte{b}, OOB: oob[:room]}}
				if _, err := srv.ReadMessages(context.Background(), ms, 0); err != nil || ms[0].NN != 0 || ms[0].Flags != 0 {
					t.Errorf("ReadMessages with %d bytes of OOB = NN %d, Flags %#x, %v; want 0, 0", room, ms[0].NN, ms[0].Flags, err)
				}
			}
			// The user asks for packet info: it is there, and right.
			if err := ipv4.NewPacketConn(srv).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
				t.Fatal(err)
			}
			cl.WriteToUDPAddrPort([]byte("ping"), dst)
			_, oobn, _, _, err := srv.ReadMsgUDP(b, oob)
			local, _, ok := batchconn.ParsePacketInfo(oob[:oobn])
			if err != nil || !ok || local != h.second4 {
				t.Fatalf("after SetControlMessage: packet info %v (%v), %v; want %v", local, ok, err, h.second4)
			}
			// And it still answers from there.
			if got := roundTrip(t, srv, cl, dst, replyReads[1], replyWrites[2], false); got != dst {
				t.Fatalf("the answer came from %v, want %v", got, dst)
			}
		})
	}
}

// TestContractC23NoAllocation: a round trip through a Conn with reply
// sources allocates nothing (the AddrPort methods), GRO off and on.
func TestContractC23NoAllocation(t *testing.T) {
	h := newTwoAddrs(t)
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			srv := h.server(t, "udp4", batchconn.WithGRO(gro))
			cl := h.client(t, h.second4)
			dst := netip.AddrPortFrom(h.second4, uint16(srv.LocalAddr().(*net.UDPAddr).Port))
			b := make([]byte, 64)
			ping := []byte("ping")
			trip := func() {
				cl.WriteToUDPAddrPort(ping, dst)
				n, from, err := srv.ReadFromUDPAddrPort(b)
				if err != nil {
					t.Fatal(err)
				}
				srv.WriteToUDPAddrPort(b[:n], from)
				cl.ReadFromUDPAddrPort(b)
			}
			srv.SetReadDeadline(time.Now().Add(time.Minute))
			cl.SetReadDeadline(time.Now().Add(time.Minute))
			trip()
			if a := testing.AllocsPerRun(100, trip); a != 0 {
				t.Errorf("a round trip allocates %v times", a)
			}
		})
	}
}
