// Package batchconn sends many UDP datagrams per system call.
//
// A [Conn] wraps a *net.UDPConn and adds [Conn.WriteMessages], which sends a
// batch of datagrams, each with its own destination, scatter/gather buffers
// and control messages, with the semantics of GLib's
// g_socket_send_messages(): it returns how many messages were sent, fails
// only when none could be, blocks or not as asked, and can be cancelled
// through a context. Everything else a *net.UDPConn does, a Conn does too
// (it is a [net.PacketConn]), so it can replace the socket it wraps.
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
// # Waiting
//
// A Conn is blocking by default: a full send buffer makes WriteMessages wait
// in the Go runtime's network poller, without a goroutine or a timer of its
// own, until the batch is sent or the context, the write deadline or Close
// ends the wait. [Conn.SetBlocking](false), or unix.MSG_DONTWAIT in flags,
// makes it send what fits and return [ErrWouldBlock] if nothing did;
// [Conn.WaitWritable] waits for room.
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
// which corks datagrams together) is not coalesced.
//
// GSO is off for a Conn from the start after [WithGSO](false), with the
// environment variable BATCHCONN_DISABLE_GSO=1 (for kernels and drivers
// known to mangle GSO traffic without reporting an error), or where the
// kernel lacks UDP GSO; it goes off for good when the kernel fails a GSO
// send with EIO (the device or route cannot segment). A GSO send refused
// with EINVAL or EMSGSIZE (a segment larger than the path MTU; newer
// kernels say EMSGSIZE) is resent at once as plain datagrams in the same
// call, and after 4 such refusals in a row to one destination that
// destination gets no more GSO sends while every other destination keeps
// them (a Conn remembers up to 64 such destinations). Malformed OOB never
// counts: it is refused before anything is sent. [Conn.GSOEnabled] and
// [Conn.Stats] say what happened.
//
// # Other platforms
//
// On other Unix systems each message is one sendmsg(2), with the same
// results, errors and waiting rules. On Windows and the remaining ports each
// message is one WriteMsgUDPAddrPort; there a non-blocking Conn cannot
// promise not to wait (Windows rarely makes a UDP sender wait at all), flags
// are not passed on, and WaitWritable returns at once. GSOEnabled is false
// off Linux.
//
// # Errors
//
// Errors are *net.OpError values with Op "write". Kernel errors keep their
// *os.SyscallError and errno, so errors.Is(err, syscall.EMSGSIZE) works; the
// other errors are [ErrWouldBlock], net.ErrClosed, os.ErrDeadlineExceeded and
// the context's error. A destination the socket cannot use (an IPv6 address
// on an IPv4 socket, port 0) is reported with the errno the kernel would
// give, EAFNOSUPPORT or EINVAL, and an explanation.
package batchconn
