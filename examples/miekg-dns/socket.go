package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/bench"
)

// The sockets the server can run on, as -socket names them.
var sockets = bench.Choices{
	{Name: "udpconn", Doc: "a *net.UDPConn: miekg/dns's own path for it (ReadMsgUDP and WriteMsgUDP with the queried address as the reply's source)"},
	{Name: "packetconn", Doc: "the same *net.UDPConn seen only as a net.PacketConn: miekg/dns's generic path (ReadFrom, WriteTo), the one any other conn takes"},
	{Name: "conn", Doc: "a *batchconn.Conn with WithGRO(true): the generic path, ReadFrom served from recvmmsg batches, replies by group commit"},
	{Name: "conn-queue", Doc: "a *batchconn.Conn with WithGRO(true) and WithWriteQueue(-queue): replies copied into the write queue and sent in batches"},
}

// plainPacketConn hides every method of the conn but net.PacketConn's, so
// miekg/dns takes its generic path on a *net.UDPConn.
type plainPacketConn struct{ net.PacketConn }

// listen opens the socket named socket on network ("udp4", "udp6" or
// "udp") and address. queue is the write queue's size in bytes, for
// conn-queue.
func listen(socket, network, address string, queue int) (net.PacketConn, error) {
	switch socket {
	case "udpconn":
		return net.ListenPacket(network, address)
	case "packetconn":
		c, err := net.ListenPacket(network, address)
		if err != nil {
			return nil, err
		}
		return plainPacketConn{c}, nil
	case "conn":
		return batchconn.Listen(network, address, batchconn.WithGRO(true))
	case "conn-queue":
		return batchconn.Listen(network, address, batchconn.WithGRO(true), batchconn.WithWriteQueue(queue))
	}
	return nil, fmt.Errorf("no socket %q (want one of %s)", socket, strings.Join(sockets.Names(), ", "))
}

// newServer is the whole change a miekg/dns server makes to run on
// batchconn: the PacketConn it is given.
func newServer(pc net.PacketConn) *dns.Server {
	return &dns.Server{PacketConn: pc, Handler: newZone()}
}

// start serves pc in a goroutine and returns once the server is
// started; ended is closed when it stops serving, and stop shuts it down
// and returns what ActivateAndServe returned.
func start(pc net.PacketConn) (stop func() error, ended <-chan struct{}, err error) {
	srv := newServer(pc)
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	end := make(chan struct{})
	var serveErr error
	go func() {
		serveErr = srv.ActivateAndServe()
		close(end)
	}()
	select {
	case <-started:
	case <-end:
		pc.Close()
		return nil, nil, serveErr
	}
	return func() error {
		if err := srv.Shutdown(); err != nil {
			select {
			case <-end: // it had stopped by itself (Shutdown: "server not started")
				return serveErr
			default:
				return err
			}
		}
		<-end
		return serveErr
	}, end, nil
}
