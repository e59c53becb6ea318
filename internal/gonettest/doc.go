// Package gonettest runs the Go standard library's own tests of UDP sockets
// on a *batchconn.Conn, side by side with the *net.UDPConn they were
// written for. It has no code of its own: only tests, ported from go1.26.8
// src/net (BSD-licensed; see LICENSE-GO), each file saying which it holds.
//
// Every test runs three times, as subtests named after what it runs on:
//
//	UDPConn        the *net.UDPConn itself: the reference
//	Conn/GRO off   a *batchconn.Conn wrapping it (batchconn.Listen or batchconn.New)
//	Conn/GRO on    the same with batchconn.WithGRO(true); skipped where GRO
//	               cannot be turned on (a kernel before Linux 5.0, or
//	               BATCHCONN_DISABLE_GRO)
//
// Every socket a test opens is of its mode: the ports call the mode's
// ListenPacket, ListenUDP, ListenMulticastUDP, Dial and the rest where Go's
// tests call the net package's, so a test's peer is of the mode too. A
// socket that needs dialing is dialed by the net package and wrapped with
// batchconn.New, as batchconn has no Dial. A Conn bound to a wildcard
// address and not connected has reply sources (batchconn.WithReplySource,
// on by default there), and the mode checks that its socket does ask for
// packet info, so the tests that bind a wildcard exercise them.
//
// The ports keep Go's checks and inputs. What changed is only what the
// net package's internals gave the tests: a UDPConn's methods are called
// on an interface holding its method set (where Go writes c.(*UDPConn));
// the socket's address family is read with getsockname (where Go reads
// the netFD); the net package's unexported errors are recognised by their
// type and message, or by identity where a UDPConn can be made to return
// them; a failing name lookup is a net.DefaultResolver that cannot reach
// its server (where Go replaces the lookup with a test hook). Go's tests
// that skip in -short mode for want of an external network (they bind a
// wildcard address, or join a multicast group, on this host only) run here
// in -short mode too. The ports are Unix-only (CI runs them on Linux).
//
// # The tests
//
// Go's UDP tests, 32:
//
//	udpsock_test.go     TestWriteToUDP, TestUDPConnLocalName,
//	                    TestUDPConnLocalAndRemoteNames, TestIPv6LinkLocalUnicastUDP,
//	                    TestUDPZeroBytePayload, TestUDPZeroByteBuffer,
//	                    TestUDPReadSizeError, TestUDPReadTimeout, TestAllocs,
//	                    TestUDPIPVersionReadMsg,
//	                    TestIPv6WriteMsgUDPAddrPortTargetAddrIPVersion,
//	                    TestIPv4WriteMsgUDPAddrPortTargetAddrIPVersion,
//	                    TestReadWriteMsgUDPAddrPortEmptyCmsg               (13)
//	packetconn_test.go  TestPacketConn, TestConnAndPacketConn ("udp")      (2)
//	protoconn_test.go   TestUDPConnSpecificMethods                         (1)
//	timeout_test.go     TestReadFromTimeout, TestWriteToTimeout,
//	                    TestReadFromTimeoutFluctuation                     (3)
//	net_test.go         TestPacketConnClose ("udp"), TestCloseUnblocksReadUDP (2)
//	error_test.go       TestListenPacketError, TestProtocolListenError ("udp"),
//	                    TestCloseError ("udp")                             (3)
//	listen_test.go      TestUDPListener, TestDualStackUDPListener,
//	                    TestWildWildcardListener (its UDP half),
//	                    TestIPv4MulticastListener, TestIPv6MulticastListener,
//	                    TestListenConfigControl (PacketListen)             (6)
//	dial_test.go        TestDialerControl, TestDialContext (PacketDial)    (2)
//
// Go's tests of a conn's deadlines and close that Go runs on a stream
// connection, run here on a connected UDP socket (dialed to a packet
// listener, which stands for the accepted connection), 13:
//
//	timeout_test.go     TestReadTimeout, TestReadTimeoutMustNotReturn,
//	                    TestWriteTimeout, TestReadTimeoutFluctuation,
//	                    TestVariousDeadlines, TestVariousDeadlines1Proc,
//	                    TestVariousDeadlines4Proc, TestReadWriteProlongedTimeout,
//	                    TestReadWriteDeadlineRace, TestConcurrentSetDeadline (10)
//	net_test.go         TestConnClose, TestZeroByteRead,
//	                    TestReadTimeoutUnblocksRead                        (3)
//
// testVariousDeadlines uses Go's -short settings unless the test binary is
// given -gonettest.long (Go's full ones take some 6 s a mode and test).
//
// Left out, with the reason:
//
//   - TestResolveUDPAddr: address parsing, no socket.
//   - TestDialError and TestProtocolDialError (their "udp" cases): the
//     dial fails in the net package before there is a socket to wrap;
//     batchconn has no Dial.
//   - TestWriteTimeoutMustNotReturn, TestWriteTimeoutFluctuation: they
//     need a write that blocks on a full send buffer, which a UDP write
//     on loopback never does (the kernel drops at the receiver instead).
//   - TestCloseUnblocksRead: Go's UDP version, TestCloseUnblocksReadUDP,
//     is ported; the stream one expects io.EOF.
//   - TestNotTemporaryRead (ECONNRESET), TestCloseRead, TestCloseWrite,
//     TestAcceptIgnoreAbortedConnRequest, TestListenerClose, TestAcceptTimeout*,
//     TestDialTimeout*, TestTCPListener, TestDualStackTCPListener,
//     TestClosingListener, TestDialerLocalAddr and the other dial tests, and
//     the IP, Unix and TCP halves of the tests above: not UDP, and nothing
//     a UDP socket has.
//   - TestErrors, TestContextError, TestFileError: the net package's error
//     types, no UDP socket.
//   - The benchmarks (BenchmarkUDP6LinkLocalUnicast,
//     BenchmarkReadWriteMsgUDPAddrPort, BenchmarkWriteToReadFromUDP,
//     BenchmarkWriteToReadFromUDPAddrPort): speed is measured by batchconn's
//     own benchmarks (batchconn's bench_*_test.go, cmd/batchbench).
//
// TestIPv6LinkLocalUnicastUDP needs an IPv6 link-local address on the
// loopback interface, which Linux does not give it (Go's test then passes
// having tested nothing); as root the port gives one, fe80::1, to the
// loopback interface of a network namespace of its own and runs there,
// and it skips otherwise. TestIPv6MulticastListener needs root, as Go's
// does.
package gonettest
