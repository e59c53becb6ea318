// Package testnet provides the real network hosts that batchconn's tests
// send to: UDP sockets on loopback, a [Receiver] that records every datagram
// a socket gets, and pairs of Linux network namespaces joined by a veth link
// ([NewPair]), optionally rate limited so that a sender's socket buffer
// really fills and sendmsg returns EAGAIN.
//
// Everything a helper creates is torn down in t.Cleanup, also when the test
// fails. Helpers that need a kernel feature or privilege the machine lacks
// call t.Skipf with the reason instead of failing.
//
// A typical loopback test:
//
//	rx := testnet.NewReceiver(t, testnet.ListenUDP(t, "udp4"))
//	tx := testnet.ListenUDP(t, "udp4")
//	// ... send n datagrams from tx to rx.Addr() ...
//	got := rx.Collect(n, 5*time.Second)
//
// and across a veth link between two namespaces:
//
//	p := testnet.NewPair(t, testnet.LinkConfig{MTU: 1400})
//	tx := p.A.ListenUDP(t, "udp6", 0)
//	rx := testnet.NewReceiver(t, p.B.ListenUDP(t, "udp6", 0))
//
// # Linux
//
// Namespaces are made with the ip(8) and tc(8) commands and need root. A
// socket is opened inside a namespace by moving one locked OS thread there
// with setns(2) for the duration of the socket(2) call; the socket stays in
// that namespace, so the rest of the test uses it from any goroutine.
//
// # Other platforms
//
// Loopback helpers work wherever the net package does. [NewPair] and
// [RequireRoot] skip the test.
package testnet
