//go:build linux

package batchconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// The tests in this file read the same traffic through a Conn with GRO on,
// one with GRO off and, where no flags are involved, a *net.UDPConn, call
// for call, and require everything a caller sees to be the same (R4, R6):
// counts, errors, sources, bytes, N, NN, Flags, and every byte of the
// control room, written or not.

// A callResult is what one read call reported.
type callResult struct {
	N       int
	Errno   syscall.Errno
	Syscall string
	Msgs    []gotRoom
}

// A gotRoom is what one Message reported, with the whole of its control
// room (filled with 0xee before the read), so that a write past NN shows.
type gotRoom struct {
	Addr         netip.AddrPort
	Data, Room   string
	N, NN, Flags int
}

func (g gotRoom) String() string {
	return fmt.Sprintf("from %v N=%d NN=%d Flags=%#x data[%d]=%x... room=%x", g.Addr, g.N, g.NN, g.Flags, len(g.Data), head([]byte(g.Data)), g.Room)
}

// roomMsgs returns n messages of one size-byte buffer each and oob bytes of
// control room filled with 0xee.
func roomMsgs(n, size, oob int) []batchconn.Message {
	msgs := recvMsgs(n, size, oob)
	for i := range msgs {
		for j := range msgs[i].OOB {
			msgs[i].OOB[j] = 0xee
		}
	}
	return msgs
}

func gotRoomOf(m batchconn.Message, self netip.AddrPort) gotRoom {
	g := gotOf(m)
	room := bytes.Clone(m.OOB)
	zeroOrigDstPort(room[:min(m.NN, len(room))], self)
	return gotRoom{g.Addr, g.Data, string(room), g.N, g.NN, g.Flags}
}

// zeroOrigDstPort zeroes the port of an IP_ORIGDSTADDR or
// IPV6_ORIGDSTADDR control message in oob, cut or not: it is the reader's
// own, which differs between the readers compared.
func zeroOrigDstPort(oob []byte, self netip.AddrPort) {
	for len(oob) >= unix.CmsgLen(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(oob) {
			return
		}
		orig := (h.Level == unix.SOL_IP && h.Type == unix.IP_ORIGDSTADDR) || (h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_ORIGDSTADDR)
		if d := oob[unix.CmsgLen(0):l]; orig && len(d) >= 4 && binary.BigEndian.Uint16(d[2:]) == self.Port() {
			d[2], d[3] = 0, 0
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
}

// readOnce makes one ReadMessages call of n messages and records it.
func readOnce(c *batchconn.Conn, n, size, oob, flags int) callResult {
	msgs := roomMsgs(n, size, oob)
	k, err := c.ReadMessages(context.Background(), msgs, flags)
	r := callResult{N: k, Errno: errnoOf(err)}
	var se *os.SyscallError
	if errors.As(err, &se) {
		r.Syscall = se.Syscall
	}
	var oe *net.OpError
	switch {
	case errors.Is(err, batchconn.ErrWouldBlock):
		r.Errno = unix.EAGAIN
	case err != nil && r.Errno == 0 && errors.As(err, &oe):
		r.Syscall = oe.Err.Error() // not a kernel error
	case err != nil && r.Errno == 0:
		r.Syscall = err.Error()
	}
	for _, m := range msgs[:k] {
		r.Msgs = append(r.Msgs, gotRoomOf(m, addrOf(c)))
	}
	return r
}

func diffResults(t *testing.T, what string, on, off callResult) {
	t.Helper()
	if on.N != off.N || on.Errno != off.Errno || on.Syscall != off.Syscall {
		t.Fatalf("%s: GRO on returned %d (%v, %q); GRO off %d (%v, %q)", what, on.N, on.Errno, on.Syscall, off.N, off.Errno, off.Syscall)
	}
	for i := range on.Msgs {
		if on.Msgs[i] != off.Msgs[i] {
			t.Fatalf("%s: message %d differs:\nGRO on:  %v\nGRO off: %v", what, i, on.Msgs[i], off.Msgs[i])
		}
	}
}

// sockopts sets integer socket options on c's socket.
func sockopts(t *testing.T, c interface {
	SyscallConn() (syscall.RawConn, error)
}, opts ...[3]int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), o[0], o[1], o[2]) })
		if serr != nil {
			t.Fatalf("setsockopt(%d, %d, %d): %v", o[0], o[1], o[2], serr)
		}
	}
}

// TestContractR6ControlDataAsGROOffGivesIt sends datagrams whose control
// messages take more room than any fixed guess (40 bytes of IPv4 options
// echoed twice among seven other messages; a 264-byte IPv6 destination
// options header) and reads them with control rooms from none to 2 KiB:
// with GRO on, a Conn must store what GRO off and a *net.UDPConn store,
// including a control message the room cuts (Linux stores it cut, its
// cmsg_len rewritten) and MSG_CTRUNC.
func TestContractR6ControlDataAsGROOffGivesIt(t *testing.T) {
	// Record route: type 7, length 39, pointer 4, room for 9 addresses,
	// then end of options: 40 bytes.
	rr := make([]byte, 40)
	rr[0], rr[1], rr[2] = 7, 39, 4
	// A destination options header of 264 bytes: next header and length
	// (32: (32+1)*8 bytes), an unknown option the kernel skips (type
	// 0x1e, 255 bytes of data), and a PadN of 3.
	dstopts := make([]byte, 264)
	dstopts[1] = 32
	dstopts[2], dstopts[3] = 0x1e, 255
	dstopts[259], dstopts[260] = 1, 3
	traffic := []struct {
		name   string
		net    string
		sender [3]int // the sticky option; its value is set by name below
		value  []byte
		recv   [][3]int
	}{
		{"IPv4, 40 bytes of options and seven other control messages", "udp4",
			[3]int{unix.IPPROTO_IP, unix.IP_OPTIONS}, rr, [][3]int{
				{unix.IPPROTO_IP, unix.IP_PKTINFO, 1}, {unix.IPPROTO_IP, unix.IP_RECVTTL, 1},
				{unix.IPPROTO_IP, unix.IP_RECVTOS, 1}, {unix.IPPROTO_IP, unix.IP_RECVOPTS, 1},
				{unix.IPPROTO_IP, unix.IP_RETOPTS, 1}, {unix.IPPROTO_IP, unix.IP_RECVORIGDSTADDR, 1},
				{unix.SOL_SOCKET, unix.SO_RCVMARK, 1}}},
		{"IPv6, a 264-byte destination options header", "udp6",
			[3]int{unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS}, dstopts, [][3]int{
				{unix.IPPROTO_IPV6, unix.IPV6_RECVDSTOPTS, 1}, {unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
				{unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1}, {unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1},
				{unix.IPPROTO_IPV6, unix.IPV6_RECVORIGDSTADDR, 1}}},
	}
	rooms := []int{0, 15, 16, 20, 40, 64, 100, 128, 200, 240, 256, 300, 2048}
	// Calls of 4 keep datagrams queued across calls; calls of 64 read
	// straight into the messages after a call that met no coalesced
	// buffer; single reads go through ReadMsgUDP.
	for _, tr := range traffic {
		t.Run(tr.name, func(t *testing.T) {
			tx := listen(t, tr.net)
			rc, _ := tx.SyscallConn()
			var serr error
			rc.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), tr.sender[0], tr.sender[1], string(tr.value)) })
			if errors.Is(serr, unix.EPERM) {
				t.Skipf("sending these options needs CAP_NET_RAW: %v", serr)
			}
			if serr != nil {
				t.Fatalf("setting the sender's options: %v", serr)
			}
			for _, room := range rooms {
				for _, batch := range []int{4, 64, 0} {
					t.Run(readsName(room, batch), func(t *testing.T) {
						on, off := reader(t, tr.net, true), reader(t, tr.net, false)
						uc := testnet.ListenUDP(t, tr.net)
						for _, s := range []interface {
							SyscallConn() (syscall.RawConn, error)
						}{on, off, uc} {
							sockopts(t, s, tr.recv...)
						}
						// A GSO run, plain datagrams, and a run with a
						// short last datagram.
						total := 0
						for _, turn := range []struct{ count, size, last int }{{10, 1000, 0}, {1, 500, 0}, {1, 0, 0}, {1, 1400, 0}, {8, 1200, 700}} {
							for _, dst := range []netip.AddrPort{addrOf(on), addrOf(off), uc.LocalAddr().(*net.UDPAddr).AddrPort()} {
								msgs := messages(dst, turn.count, turn.size)
								if turn.last > 0 {
									msgs[len(msgs)-1].Buffers[0] = msgs[len(msgs)-1].Buffers[0][:turn.last]
								}
								sendFrom(t, tx, msgs)
							}
							total += turn.count
						}
						read := func(c *batchconn.Conn) []gotRoom {
							c.SetReadDeadline(time.Now().Add(recvWait))
							var out []gotRoom
							for len(out) < total {
								if batch > 0 {
									r := readOnce(c, min(batch, total-len(out)), 2000, room, 0)
									if r.N == 0 {
										t.Fatalf("ReadMessages after %d datagrams: %v %s", len(out), r.Errno, r.Syscall)
									}
									out = append(out, r.Msgs...)
									continue
								}
								m := roomMsgs(1, 2000, room)[0]
								n, oobn, flags, addr, err := c.ReadMsgUDP(m.Buffers[0], m.OOB)
								if err != nil {
									t.Fatalf("ReadMsgUDP after %d datagrams: %v", len(out), err)
								}
								m.N, m.NN, m.Flags, m.Addr = n, oobn, flags, addr.AddrPort()
								out = append(out, gotRoomOf(m, addrOf(c)))
							}
							return out
						}
						gotOn, gotOff := read(on), read(off)
						uc.SetReadDeadline(time.Now().Add(recvWait))
						for i := range total {
							m := roomMsgs(1, 2000, room)[0]
							n, oobn, flags, addr, err := uc.ReadMsgUDPAddrPort(m.Buffers[0], m.OOB)
							if err != nil {
								t.Fatalf("the UDPConn's ReadMsgUDPAddrPort after %d datagrams: %v", i, err)
							}
							m.N, m.NN, m.Flags, m.Addr = n, oobn, flags, addr
							want := gotRoomOf(m, uc.LocalAddr().(*net.UDPAddr).AddrPort())
							if gotOn[i] != want || gotOff[i] != want {
								t.Fatalf("datagram %d of %d:\nGRO on:  %v\nGRO off: %v\nUDPConn: %v", i, total, gotOn[i], gotOff[i], want)
							}
						}
						if tr.net == "udp4" && tx.GSOEnabled() && on.Stats().GROBuffers == 0 {
							t.Errorf("no coalesced buffer met: the test did not exercise GRO (Stats %+v)", on.Stats())
						}
					})
				}
			}
		})
	}
}

// TestContractR6ReadFlagsAsGROOffGivesThem reads the same traffic (a GSO
// run, which a Conn with GRO on takes from the kernel as one buffer and
// keeps queued while it hands it out, plain datagrams, and ICMP errors in
// the socket's error queue) through a Conn with GRO on and one with GRO
// off, call for call, with each flag Linux has for a read: every call must
// give the same results.
func TestContractR6ReadFlagsAsGROOffGivesThem(t *testing.T) {
	flags := []struct {
		name string
		flag int
	}{
		{"none", 0},
		{"MSG_OOB", unix.MSG_OOB},
		{"MSG_PEEK", unix.MSG_PEEK},
		{"MSG_DONTROUTE", unix.MSG_DONTROUTE},
		{"MSG_CTRUNC", unix.MSG_CTRUNC},
		{"MSG_TRUNC", unix.MSG_TRUNC},
		{"MSG_PEEK|MSG_TRUNC", unix.MSG_PEEK | unix.MSG_TRUNC},
		{"MSG_EOR", unix.MSG_EOR},
		{"MSG_WAITALL", unix.MSG_WAITALL},
		{"MSG_CONFIRM", unix.MSG_CONFIRM},
		{"MSG_ERRQUEUE", unix.MSG_ERRQUEUE},
		{"MSG_ERRQUEUE|MSG_PEEK", unix.MSG_ERRQUEUE | unix.MSG_PEEK},
		{"MSG_ERRQUEUE|MSG_TRUNC", unix.MSG_ERRQUEUE | unix.MSG_TRUNC},
		{"MSG_NOSIGNAL", unix.MSG_NOSIGNAL},
		{"MSG_MORE", unix.MSG_MORE},
		{"MSG_WAITFORONE", unix.MSG_WAITFORONE},
		{"MSG_BATCH", unix.MSG_BATCH},
		{"MSG_ZEROCOPY", unix.MSG_ZEROCOPY},
		{"MSG_FASTOPEN", unix.MSG_FASTOPEN},
		{"MSG_CMSG_CLOEXEC", unix.MSG_CMSG_CLOEXEC},
		{"MSG_CMSG_CLOEXEC|MSG_PEEK", unix.MSG_CMSG_CLOEXEC | unix.MSG_PEEK},
		{"MSG_CMSG_COMPAT (EINVAL)", math.MinInt32}, // bit 31, on 32-bit ints too
		{"a bit no flag has", 1 << 25},
	}
	closed := closedPort(t, "udp4")
	for _, f := range flags {
		t.Run(f.name, func(t *testing.T) {
			// Each pair of readers has loopback addresses of its own, so
			// that the kernel's ICMP rate limit (per destination) does
			// not tell them apart.
			on, off := readerOn(t, true), readerOn(t, false)
			tx := listen(t, "udp4")
			for _, c := range []*batchconn.Conn{on, off} {
				sockopts(t, c, [3]int{unix.IPPROTO_IP, unix.IP_RECVERR, 1}, [3]int{unix.IPPROTO_IP, unix.IP_RECVTOS, 1})
				sendFrom(t, tx, messages(addrOf(c), 12, 500))
				sendFrom(t, tx, messages(addrOf(c), 2, 100))
				queueErrors(t, c, closed, 2)
			}
			step := func(what string, n, flags int) {
				t.Helper()
				diffResults(t, what, readOnce(on, n, 300, 64, flags|unix.MSG_DONTWAIT), readOnce(off, n, 300, 64, flags|unix.MSG_DONTWAIT))
			}
			step("a read that leaves datagrams queued with GRO on", 1, 0)
			step("a call of 2 with the flag", 2, f.flag)
			step("a call of 1 with the flag", 1, f.flag)
			step("a call of 1 with the flag", 1, f.flag)
			for i := range 8 {
				step(fmt.Sprintf("draining the data, call %d", i), 4, 0)
			}
			for i := range 3 {
				step(fmt.Sprintf("draining the error queue, call %d", i), 4, unix.MSG_ERRQUEUE)
			}
			if tx.GSOEnabled() && on.Stats().GROBuffers == 0 {
				t.Errorf("no coalesced buffer met: the test did not exercise GRO (Stats %+v)", on.Stats())
			}
		})
	}
}

// TestContractR6ErrorQueueIsNotData is the error queue's case on its own:
// with GRO on, a read of one error takes one error and nothing else, the
// next read of data gets data, and a read of the error queue with datagrams
// held by the Conn gets errors, never a datagram.
func TestContractR6ErrorQueueIsNotData(t *testing.T) {
	c := readerOn(t, true)
	tx := listen(t, "udp4")
	sockopts(t, c, [3]int{unix.IPPROTO_IP, unix.IP_RECVERR, 1})
	closed := closedPort(t, "udp4")
	sendFrom(t, tx, messages(addrOf(c), 12, 500))
	queueErrors(t, c, closed, 2)
	if r := readOnce(c, 1, 1500, 0, unix.MSG_DONTWAIT); r.N != 1 || r.Msgs[0].Data != string(payload(0, 500)) {
		t.Fatalf("the first read of data = %+v; want datagram 0", r)
	}
	r := readOnce(c, 1, 1500, 128, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if r.N != 1 || r.Msgs[0].Flags&unix.MSG_ERRQUEUE == 0 || r.Msgs[0].Data != "to a closed port" || r.Msgs[0].Addr != closed {
		t.Fatalf("a read of the error queue with datagrams held = %+v; want an error from %v", r, closed)
	}
	for i := 1; i < 12; i++ {
		r := readOnce(c, 1, 1500, 0, unix.MSG_DONTWAIT)
		if r.N != 1 || r.Msgs[0].Data != string(payload(i, 500)) || r.Msgs[0].Flags != 0 {
			t.Fatalf("read %d of data = %+v; want datagram %d", i, r, i)
		}
	}
	if r := readOnce(c, 1, 1500, 128, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT); r.N != 1 || r.Msgs[0].Flags&unix.MSG_ERRQUEUE == 0 {
		t.Fatalf("the second read of the error queue = %+v; want the second error", r)
	}
	if r := readOnce(c, 1, 1500, 0, unix.MSG_DONTWAIT); r.Errno != unix.EAGAIN {
		t.Fatalf("a read of data after both errors = %+v; want EAGAIN: the errors are not data", r)
	}
	if tx.GSOEnabled() && c.Stats().GROBuffers == 0 {
		t.Errorf("no coalesced buffer met: the test did not exercise GRO (Stats %+v)", c.Stats())
	}
}

// readerOn returns a Conn, GRO as asked, on a udp4 socket bound to an
// address of 127.0.0.0/8 of its own.
func readerOn(t *testing.T, gro bool) *batchconn.Conn {
	t.Helper()
	ip := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(1 + rand.IntN(250))})
	uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := batchconn.New(uc, batchconn.WithGRO(gro))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if gro && !c.GROEnabled() {
		t.Skipf("no UDP GRO here: %s", c.Stats().GROOff)
	}
	return c
}

// queueErrors sends n datagrams from c to closed, one at a time, each
// after the ICMP port unreachable error for the one before it came back:
// the errors are queued in c's error queue. Each error also sets the
// socket error, which a send would report instead of sending; reading it
// (SO_ERROR) says the error came, and clears it.
func queueErrors(t *testing.T, c *batchconn.Conn, closed netip.AddrPort, n int) {
	t.Helper()
	rc, _ := c.SyscallConn()
	for range n {
		if _, err := c.WriteToUDPAddrPort([]byte("to a closed port"), closed); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(recvWait); ; time.Sleep(time.Millisecond) {
			var soerr int
			rc.Control(func(fd uintptr) { soerr, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR) })
			if soerr == int(unix.ECONNREFUSED) {
				break
			}
			if soerr != 0 || time.Now().After(deadline) {
				t.Fatalf("waiting for an ICMP error: socket error %d", soerr)
			}
		}
	}
}

func readsName(room, batch int) string {
	if batch == 0 {
		return fmt.Sprintf("room %d, single ReadMsgUDP calls", room)
	}
	return fmt.Sprintf("room %d, calls of %d", room, batch)
}
