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
// are coalesced into single GSO sends of up to 64 datagrams: the kernel
// builds the datagrams from the callers' own buffers, so nothing is copied,
// and the receiver sees exactly the datagrams it would have seen without
// GSO. If the kernel refuses a GSO send (EIO where the device or route
// cannot segment; EINVAL or, on newer kernels, EMSGSIZE for a segment larger
// than the path MTU), the run is resent at once as plain datagrams in the
// same call; after EIO, GSO stays off for the Conn. [WithGSO](false) or the environment variable
// BATCHCONN_DISABLE_GSO=1 turn GSO off, for kernels and drivers known to
// mangle GSO traffic without reporting an error. [Conn.GSOEnabled] and
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
