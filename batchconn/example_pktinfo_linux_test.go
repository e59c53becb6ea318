package batchconn_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
)

// Send many datagrams to one peer without building a Message for each.
func ExampleConn_WriteBuffersTo() {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer recv.Close()
	c, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	packets := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	dst := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	n, err := c.WriteBuffersTo(context.Background(), packets, nil, dst, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent", n)
	buf := make([]byte, 100)
	for range n {
		k, _, err := recv.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s ", buf[:k])
	}
	fmt.Println()
	// Output:
	// sent 3
	// one two three
}

// Answer each peer from the address its datagram arrived on, on a socket
// bound to every address (a "sticky" source): the kernel reports the local
// address with IP_PKTINFO, and the same control message sends from it.
func ExampleParsePacketInfo() {
	c, err := batchconn.Listen("udp4", "0.0.0.0:0")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	})
	if err != nil {
		log.Fatal(err)
	}

	// A peer sends to 127.0.0.2, one of loopback's addresses.
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer peer.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), c.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	if _, err := peer.WriteToUDPAddrPort([]byte("ping"), to); err != nil {
		log.Fatal(err)
	}

	msgs := []batchconn.Message{{Buffers: [][]byte{make([]byte, 1500)}, OOB: make([]byte, batchconn.PacketInfoSpace)}}
	if _, err := c.ReadMessages(context.Background(), msgs, 0); err != nil {
		log.Fatal(err)
	}
	local, _, ok := batchconn.ParsePacketInfo(msgs[0].OOB[:msgs[0].NN])
	fmt.Println("arrived on", local, ok)

	oob := batchconn.AppendPacketInfo(nil, local, 0)
	if _, err := c.WriteBuffersTo(context.Background(), [][]byte{[]byte("pong")}, oob, msgs[0].Addr, 0); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 100)
	k, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s from %v\n", buf[:k], from.Addr())
	// Output:
	// arrived on 127.0.0.2 true
	// pong from 127.0.0.2
}
