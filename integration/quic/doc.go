// Package quicbatch makes quic-go send and receive through batchconn: packets
// that several QUIC connections write to one UDP socket at about the same
// time leave in one sendmmsg system call instead of one sendmsg each, and
// packets arrive through recvmmsg with UDP GRO, which quic-go lacks, split
// back into the packets quic-go expects.
//
// Exactly one line differs from plain quic-go:
//
//	udp, _ := net.ListenUDP("udp", laddr)
//	conn, _ := quicbatch.Wrap(udp) // was: conn := udp
//	tr := &quic.Transport{Conn: conn}
//
// The [Conn] returned by [Wrap] has the method set quic-go looks for in a
// *net.UDPConn (quic.OOBCapablePacketConn, SetWriteBuffer and ReadBatch), so
// quic-go keeps every optimisation it applies to a plain socket: DF and
// DPLPMTUD, ECN, packet info, socket buffer sizing, batched reads (recvmmsg)
// and UDP GSO. ConnectionState().GSO stays true where the kernel supports it.
//
// # What is batched
//
// By default every short-header packet (the bulk of a connection's traffic)
// is queued: WriteMsgUDP copies the packet and its control messages into
// batchconn's write queue ([batchconn.WithWriteQueue], sized by
// [WithQueueBytes]) and returns at once; a goroutine of the batchconn.Conn
// sends the queue in batches, sendmmsg with UDP GSO runs. So the packets
// one connection writes back to back leave together, and quic-go packs the
// next packets while the last ones are being sent. When the queue is full,
// writers block (bounded by the write deadline): that is the only
// backpressure signal quic-go understands. There are no timers: a packet
// waits at most for the system call in flight.
//
// [WithAsync](false) selects combining instead: nothing is copied, and
// every packet goes to batchconn's group commit ([batchconn.Conn.Write]): a
// WriteMsgUDP that finds no send in flight sends its own packet at once,
// and writers that arrive during a send wait and leave together in the
// next sendmmsg, each with the exact error of its own packet. It copies
// nothing but batches only when connections collide.
//
// Long-header packets (Initial, Handshake, 0-RTT, Retry, Version
// Negotiation) are never queued: their writer waits until they are sent and
// gets their exact error, which quic-go needs during the handshake. Such a
// packet leaves after the packets queued before it (batchconn's
// WriteMessages sends the queue first), so the packets of one QUIC
// connection are never reordered.
//
// The gains of batched sending are largest where quic-go cannot use GSO
// (QUIC_GO_DISABLE_GSO, kernels before 5.0, or a connection that got EIO),
// where each packet would otherwise be a system call. A connection with GSO
// already sends about eleven packets per system call; there the gain is on
// the receiving side.
//
// # Receiving
//
// quic-go reads through [Conn.ReadBatch] (8 packets per call, into its own
// 1452-byte buffers), which reads through batchconn: recvmmsg on Linux,
// with UDP generic receive offload (GRO) on by default. With GRO the kernel
// hands up the segments of a peer's GSO send (or a run of datagrams of one
// flow) as one buffer of up to 64 datagrams, and saves most of its
// per-datagram work; quic-go has no GRO of its own and cannot parse such a
// buffer, so the Conn splits each one back into datagrams, copying each
// into the buffer quic-go handed in, with the buffer's control messages (ECN
// marks, packet info) repeated on every datagram: the kernel coalesces only
// datagrams with the same TOS or traffic class, so the ECN mark of each is
// exact. Datagrams that do not fit in one call wait, in order, for the next.
// quic-go sees exactly the datagrams it would have read from the socket;
// [Conn.ReadMsgUDP] and [Conn.ReadFrom] go through the same split. Plain
// datagrams are not coalesced, and cost no more than without GRO.
//
// ReadBatch allocates nothing per packet: the *net.UDPAddr quic-go needs
// with each packet is shared by the packets of one source (quicbatch
// remembers the last 16), where golang.org/x/net/ipv4 allocates two objects
// per packet. Errors keep x/net's shape, and a read deadline ends a
// ReadBatch in progress with a timeout, as quic.Transport.Close needs.
//
// [WithGRO](false), or the environment variable BATCHCONN_DISABLE_GRO=1,
// turns GRO off; on kernels before 5.0 it stays off by itself. [Stats]
// counts the receive side: system calls, packets, and buffers the kernel
// coalesced. Only code that reads the socket behind the Conn's back (through
// [Conn.SyscallConn]) would see coalesced buffers: read through the Conn.
//
// # Errors
//
// Errors returned by WriteMsgUDP keep the shape quic-go tests for:
// *net.OpError{Op: "write"} wrapping *os.SyscallError{Syscall: "sendmsg"}
// with the errno, so quic-go's reactions still work (EIO: resend without GSO;
// EMSGSIZE: packet lost; EPERM on the first packet: retry). A destination
// batchconn refuses before any system call (port 0, an address of the wrong
// family) gives batchconn's error instead, which unwraps to the errno the
// kernel would have returned (EINVAL, EAFNOSUPPORT, ENETUNREACH).
//
// An error belongs to the one packet that met it: to its destination (which
// a remote peer chooses), its size, its control messages, or a moment's
// shortage of buffers. So it is charged to that packet alone, and the
// packets queued after it are still sent. A writer that waits for its own
// packet (long-header packets, and combining) gets the error. A write the
// queue does not take, because its destination is one batchconn refuses
// before any system call (port 0, an address of the wrong family, a zone),
// is sent at once with the socket's own method and gets that error too. A
// queued packet has no caller left to tell; batchconn's write queue counts
// its failure by cause, and quicbatch adds its policy:
//
//   - EIO on a GSO buffer (or on any packet with UDP_SEGMENT: the kernel
//     refuses those whatever their length): resent as separate packets at
//     once, and later GSO buffers are split before sending; batchconn's
//     own GSO goes off (counted in [Stats].GSOSplits).
//   - EMSGSIZE: dropped and counted in [Stats].DropMsgSize (quic-go sees a
//     lost packet, which is what DPLPMTUD expects).
//   - EPERM: retried once, then dropped.
//   - any other error (EINVAL, EACCES, ENETUNREACH, EHOSTUNREACH,
//     ECONNREFUSED, EAFNOSUPPORT, EADDRNOTAVAIL, ENOBUFS, an expired write
//     deadline, and errors not named here): dropped and counted in
//     [Stats].Dropped.
//
// Only a closed socket stops the Conn: once the socket is closed, every
// later write fails with net.ErrClosed, so the connections using the
// socket close. No other error is kept, so nothing a peer sends can stop
// the socket for other connections.
//
// # Close
//
// [Conn.Close] stops accepting writes, flushes the queue for at most 100 ms
// (so CONNECTION_CLOSE frames queued just before still leave) and closes the
// socket, which also ends a ReadBatch in progress. quic.Transport.Close does
// not close a conn it did not create: close the Conn after the Transport.
//
// # Other platforms
//
// Off Linux, [Wrap] returns a Conn with the same API that sends each packet
// with one system call (batchconn without a queue: there would be nothing
// to batch) and reads one datagram per system call through batchconn,
// without GRO.
package quicbatch
