package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/bench"
)

// The sockets the SFU can run on, as -socket names them.
var sockets = bench.Choices{
	{Name: "udpconn", Doc: "a *net.UDPConn"},
	{Name: "conn", Doc: "a *batchconn.Conn: pion's writers meet in group commit, its reads are the Conn's"},
	{Name: "conn-queue", Doc: "a *batchconn.Conn with WithWriteQueue(-queue): WriteRTP's datagrams are copied into the queue and sent in batches (sendmmsg, GSO runs)"},
	{Name: "conn-queue-gro", Doc: "conn-queue with WithGRO(true) too: the mux's reads served from recvmmsg batches"},
}

// defaultSockets are the sockets the benchmark compares unless told.
var defaultSockets = []string{"udpconn", "conn", "conn-queue"}

// readBuffer is the mux socket's receive buffer, in every mode alike: an
// SFU's one port takes every publisher's packets.
const readBuffer = 4 << 20

// listen opens the socket named socket on address (udp4). queue is the
// write queue's size in bytes, for the conn-queue sockets. The result is
// what webrtc.NewICEUDPMux takes: a net.PacketConn whose LocalAddr is a
// *net.UDPAddr.
func listen(socket, address string, queue int) (net.PacketConn, error) {
	var pc interface {
		net.PacketConn
		SetReadBuffer(int) error
	}
	var err error
	switch socket {
	case "udpconn":
		var a *net.UDPAddr
		if a, err = net.ResolveUDPAddr("udp4", address); err == nil {
			pc, err = net.ListenUDP("udp4", a)
		}
	case "conn":
		pc, err = batchconn.Listen("udp4", address)
	case "conn-queue":
		pc, err = batchconn.Listen("udp4", address, batchconn.WithWriteQueue(queue))
	case "conn-queue-gro":
		pc, err = batchconn.Listen("udp4", address, batchconn.WithWriteQueue(queue), batchconn.WithGRO(true))
	default:
		return nil, fmt.Errorf("no socket %q (want one of %s)", socket, strings.Join(sockets.Names(), ", "))
	}
	if err != nil {
		return nil, err
	}
	if err := pc.SetReadBuffer(readBuffer); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}
