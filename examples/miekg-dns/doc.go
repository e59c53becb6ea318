// Command miekg-dns is a DNS server nobody here wrote, miekg/dns v1, run
// on a *batchconn.Conn: the one change is the conn handed to dns.Server.
//
//	pc, err := batchconn.Listen("udp4", ":53", batchconn.WithGRO(true)) // was net.ListenPacket("udp4", ":53")
//	srv := &dns.Server{PacketConn: pc, Handler: handler}
//	err = srv.ActivateAndServe()
//
// On a concrete *net.UDPConn miekg/dns takes a path of its own (one
// ReadMsgUDP per query, with the query's destination address from
// IP_PKTINFO, which it writes back as the reply's source with WriteMsgUDP);
// any other conn goes through ReadFrom and WriteTo. On a Conn with GRO on,
// ReadFrom is served from recvmmsg batches, and the replies, which
// miekg/dns writes from a goroutine per query, are sent by group commit
// (one sendmmsg for the writers that meet); with WithWriteQueue they are
// copied into the Conn's write queue and sent in batches.
//
// serve answers a small zone, example.test. (an SOA, an NS, and A records
// host-0 to host-999), on the socket -socket names: udpconn (miekg's own
// path), packetconn (the same *net.UDPConn seen as a net.PacketConn: the
// generic path), conn, or conn-queue:
//
//	go run . serve -socket conn -addr 127.0.0.1:5353
//	dig @127.0.0.1 -p 5353 host-7.example.test A
//
// bench measures the server on each socket under dnsperf (Debian package
// dnsperf), a child server process per socket and round, modes alternating
// round by round on internal/bench: queries per second, the server's CPU
// time per query (getrusage of the server process, all threads), lost
// queries, as medians of same-round ratios against udpconn. Every answer
// must be NOERROR, or the run fails:
//
//	go run . bench -count 9
//
// The tests check every answer of the zone on every socket, IPv4 and
// IPv6, the commands' flags, and the wildcard check: a server bound to
// 0.0.0.0 (or [::]) must answer from the address each query was sent to,
// on loopback (127.0.0.1 and 127.0.0.2) and, as root, across a veth link
// to a namespace with two addresses of each family. miekg/dns sets the
// reply's source itself only on a concrete *net.UDPConn; on a Conn, the
// Conn does (WithReplySource, on by default for a wildcard-bound Conn).
// The packetconn case shows the check tells a wrong source from a right
// one: there the kernel picks the source, and the reply to a query at the
// second address comes from the first.
//
// It is its own module, so that the library's go.mod does not gain
// miekg/dns.
package main
