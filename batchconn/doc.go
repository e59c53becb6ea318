// Package batchconn sends and receives many UDP datagrams per system call.
//
// A [Conn] wraps a *net.UDPConn and adds [Conn.WriteMessages], which sends a
// batch of datagrams, each with its own destination, scatter/gather buffers
// and control messages, with the semantics of GLib's
// g_socket_send_messages(), and [Conn.ReadMessages], which receives a batch,
// after g_socket_receive_messages(). Both return how many messages they
// handled, fail only when there were none, block or not as asked, and can
// be cancelled through a context. One [Message] type serves both
// directions, so a relay reads a batch and writes it back out. Everything
// else a *net.UDPConn does, a Conn does too (it has the whole method set of
// *net.UDPConn and is a [net.PacketConn]), so it can replace the socket it
// wraps.
//
// The behaviour is specified rule by rule in CONTRACT.md at the root of the
// repository, whose rule numbers (C1, C2, ...) the tests are named after;
// what follows is its summary.
//
// # Usage
//
// WriteMessages considers at most [MaxMessages] messages and stops at the
// first one that fails, so a caller that must send everything loops, and
// learns exactly which message failed:
//
//	c, err := batchconn.Listen("udp", ":0")
//	...
//	for len(msgs) > 0 {
//		n, err := c.WriteMessages(ctx, msgs, 0)
//		if err != nil {
//			return fmt.Errorf("sending to %v: %w", msgs[0].Addr, err)
//		}
//		msgs = msgs[n:]
//	}
//
// Each sent message's N holds the bytes the kernel accepted. Messages that
// were not sent are left exactly as they were.
//
// # Receiving
//
// ReadMessages fills msgs[0], msgs[1], ... with one datagram each and
// returns how many; each message's Addr is the source, N the bytes stored,
// NN the bytes of control messages, and Flags says MSG_TRUNC or MSG_CTRUNC
// when the datagram or its control messages did not fit. A blocking call
// waits for the first datagram only, then returns everything already
// queued, so a read loop is:
//
//	msgs := make([]batchconn.Message, 64)
//	for i := range msgs {
//		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
//	}
//	for {
//		n, err := c.ReadMessages(ctx, msgs, 0)
//		if err != nil {
//			return err
//		}
//		for _, m := range msgs[:n] {
//			handle(m.Addr, m.Buffers[0][:m.N])
//		}
//	}
//
// Reads take turns among themselves and never hold up writes.
//
// # One peer, and the address to answer from
//
// [Conn.WriteBuffersTo] sends many datagrams to one destination, all with the
// same control messages, without a Message for each: a QUIC connection's or
// a VPN tunnel's packets.
//
// A Conn bound to a wildcard address (0.0.0.0, ::) answers each peer from
// the address the peer wrote to: its single-datagram writes (WriteTo,
// WriteToUDPAddrPort, WriteMsgUDP, ...) and its write queue add the
// IP_PKTINFO or IPV6_PKTINFO control message that makes a reply leave from
// the local address the peer's last datagram arrived on, remembered per
// peer in a bounded table ([WithReplySource], on by default there; Linux).
// A *net.UDPConn there answers from the address the kernel picks, which on a
// host with several addresses is often not the one the client wrote to, and
// a client that checks (a DNS resolver, dig) takes that for no answer. So an
// unchanged server on a Conn answers correctly. WriteMessages and
// WriteBuffersTo send as they are told: [ParsePacketInfo] reads the local
// address from a received message's IP_PKTINFO or IPV6_PKTINFO control
// message, and [AppendPacketInfo] builds the one that makes a reply leave
// from it; neither allocates (Linux).
//
// # Concurrent writers
//
// Code written for a *net.UDPConn that calls WriteTo (or WriteToUDP,
// WriteToUDPAddrPort, WriteMsgUDP, WriteMsgUDPAddrPort, Write) from many
// goroutines, one datagram each, gains without a change: the Conn uses group
// commit. A writer that finds no send in flight sends its own datagram at
// once, with the *net.UDPConn method it called (one system call, nothing
// added); writers that arrive while a send is in flight wait, uncopied, and
// the next of them sends them all in one batch (sendmmsg and GSO runs on
// Linux). Each writer gets its own n and error, shaped as the UDPConn's, and
// a datagram that fails fails alone. A waiting datagram is sent only by a
// send that starts before the write deadline and before Close; otherwise it
// fails with os.ErrDeadlineExceeded or net.ErrClosed and is never sent
// later. There are no copies, timers or goroutines of the Conn, and nothing
// is allocated per write.
//
// # One writer: the write queue
//
// Code that writes from one goroutine (an SFU's forwarding loop, a game
// tick, a relay) never collides with itself, so group commit gives it
// nothing. [WithWriteQueue] gives the Conn a write queue: the
// single-datagram write methods then copy the datagram into it and return
// at once, and a goroutine of the Conn sends the queue in batches, sendmmsg
// and GSO runs, the datagrams of each destination grouped so that a writer
// that sends packet k to every subscriber, then packet k+1, gets GSO runs.
// No timer is involved: a datagram waits at most for the send in flight.
//
//	c, err := batchconn.Listen("udp", ":5004", batchconn.WithWriteQueue(256<<10))
//	...
//	for _, sub := range subscribers {
//		c.WriteToUDPAddrPort(packet, sub) // copied; returns at once
//	}
//
// What changes is when errors are known. What a *net.UDPConn refuses before
// sending (a closed Conn, a passed deadline, a bad address, an oversized
// datagram, malformed control data) the write still refuses, with the
// UDPConn's result; a failure the kernel reports later (a path MTU, no
// route, a full device queue) is charged to that datagram alone: counted by
// cause in [Stats].QueueFailures, the first one since the last
// [Conn.Flush] returned by Flush, and each one told to [WithWriteQueueErrors].
// Datagrams to one destination leave in the order they were written, also
// across WriteMessages and WriteBuffersTo, which send what was queued before
// them first. A full queue makes a writer wait, up to the write deadline, or
// return ErrWouldBlock after SetBlocking(false). Close sends what is queued
// for at most 100 ms first.
//
// # Waiting
//
// A Conn is blocking by default: a full send buffer makes WriteMessages wait
// in the Go runtime's network poller, without a goroutine or a timer of its
// own, until the batch is sent or the context, the write deadline or Close
// ends the wait. [Conn.SetBlocking](false), or unix.MSG_DONTWAIT in flags,
// makes it send what fits and return [ErrWouldBlock] if nothing did;
// [Conn.WaitWritable] waits for room. Reads wait the same way, for a
// datagram, bounded by the context, the read deadline and Close.
//
// # Linux
//
// Batches go out through sendmmsg(2), up to 1024 messages per system call.
// Where the kernel supports UDP generic segmentation offload (Linux 4.18 and
// later), runs of consecutive messages to the same destination, with the
// same control messages and the same length (a shorter last one ends a run),
// are coalesced into single GSO sends of up to 64 datagrams, or 128 where
// the kernel takes them (Linux 6.9 and later, and some backports; a probe
// between two loopback sockets of the package's own learns which, once per
// process): the kernel builds the datagrams from the callers' own buffers,
// so nothing is copied, and the receiver sees exactly the datagrams it
// would have seen without GSO. A call whose flags include any but
// MSG_DONTWAIT, MSG_NOSIGNAL, MSG_CONFIRM and MSG_DONTROUTE (MSG_MORE, say,
// which corks datagrams together) is not coalesced, and neither are
// datagrams to destinations of a family whose error reporting is on
// (IP_RECVERR; IPV6_RECVERR for IPv6): with it, Linux reports a datagram its
// qdisc drops as ENOBUFS, but a GSO send as accepted if any of its segments
// was queued, which would change the count WriteMessages returns. The Conn
// reads those options when it is made and after each Control call through
// [Conn.SyscallConn] (how golang.org/x/net/ipv4 and quic-go set options), so
// it costs no system call per send; an option set through the wrapped
// UDPConn's own SyscallConn, File or another descriptor is not seen.
//
// GSO is off for a Conn from the start after [WithGSO](false), with the
// environment variable BATCHCONN_DISABLE_GSO=1 (for kernels and drivers
// known to mangle GSO traffic without reporting an error), or where the
// kernel lacks UDP GSO; it goes off for good when the kernel fails a GSO
// send with EIO (the device or route cannot segment). A GSO send refused
// with EINVAL or EMSGSIZE (a segment larger than the path MTU; newer
// kernels say EMSGSIZE) is resent at once as plain datagrams in the same
// call, and after 4 such refusals in a row to one destination that
// destination gets plain sends while every other destination keeps GSO (a
// Conn remembers up to 64 such destinations). After 4096 datagrams sent to it
// plain, or 10 seconds, whichever comes first, it is offered GSO again, so a
// path whose MTU grows back regains it; one more refusal turns it off again,
// at the cost of one refused send per round. Malformed OOB never
// counts: it is refused before anything is sent. [Conn.GSOEnabled] and
// [Conn.Stats] say what happened.
//
// Batches come in through recvmmsg(2), up to 1024 messages per system call,
// straight into the callers' buffers. With [WithGRO](true) (off by default)
// the socket also uses UDP generic receive offload (Linux 5.0 and later): the
// kernel may hand up many datagrams of one flow as one buffer, into the
// Conn's own 64 KiB slots, and the Conn splits it again by copying each
// datagram into a caller's message, with the control messages repeated for
// each and the UDP_GRO one removed. The kernel stores the control messages
// into room of the Conn's as large as the largest OOB a call has offered,
// and the Conn lays them out in each caller's OOB as the kernel would have
// with GRO off: one that does not fit whole is cut to the room left, its
// length saying so, and MSG_CTRUNC is set. Datagrams that do not fit in one
// call stay queued, in order, for the next read, and come before anything
// read later. Read flags give what they give with GRO off: MSG_PEEK peeks
// at the first queued datagram, MSG_ERRQUEUE reads the socket's error queue
// straight into the messages (its entries are never coalesced) and leaves
// queued datagrams queued, and a flag the Conn does not know is put to the
// kernel first, so one it refuses (MSG_CMSG_COMPAT: EINVAL) fails the call
// as it would with GRO off. Every read method of
// the Conn (ReadMessages, ReadFrom, ReadMsgUDP, Read, ...) goes through the
// same split, so nothing reading through the Conn ever sees a coalesced
// buffer, and an unchanged ReadFrom loop gets recvmmsg and GRO. A Conn with
// GRO holds 8 slots (512 KiB) from its first read; when plain datagrams fill
// every slot of a call that had room for more, the slots double, up to 64
// (4 MiB). After a call that
// met no coalesced buffer, a call with a message for every slot has the
// kernel write into the messages' buffers first, with the rest of a slot
// behind each, so plain datagrams are not copied. Code that reads
// the socket behind the Conn's back (through [Conn.SyscallConn],
// [Conn.UDPConn], [Conn.File], or golang.org/x/net/ipv4's ReadBatch on the
// Conn) bypasses both the split and the queue: it sees coalesced buffers,
// and datagrams the Conn already took are not there for it. That is why GRO
// is off by default. The environment variable BATCHCONN_DISABLE_GRO=1 keeps
// it off whatever the code says; [Conn.GROEnabled] and [Conn.Stats] report
// it.
//
// # Other platforms
//
// On other Unix systems each message is one sendmsg(2) or recvmsg(2), with
// the same results, errors and waiting rules. On Windows and the remaining
// ports each message is one WriteMsgUDPAddrPort, and each ReadMessages call
// one ReadMsgUDPAddrPort (one datagram per call); there a non-blocking Conn
// cannot promise not to wait (Windows rarely makes a UDP sender wait at
// all), flags are not passed on, and WaitWritable returns at once.
// GSOEnabled and GROEnabled are false off Linux.
//
// # Errors
//
// Errors are *net.OpError values with Op "write" (Op "read" for reads, as
// *net.UDPConn reports them). Kernel errors keep their
// *os.SyscallError and errno, so errors.Is(err, syscall.EMSGSIZE) works; the
// other errors are [ErrWouldBlock], net.ErrClosed, os.ErrDeadlineExceeded and
// the context's error. A destination the socket cannot use (an IPv6 address
// on an IPv4 socket, an IPv4 one on an IPv6-only socket, port 0) is
// reported with the errno sendto(2) gives for it, EAFNOSUPPORT, ENETUNREACH
// or EINVAL, and an explanation. A kernel error queued
// on the socket, such as ECONNREFUSED on a connected socket whose peer
// refused an earlier datagram, is reported by the read that meets it.
package batchconn
