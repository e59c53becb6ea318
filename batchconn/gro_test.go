//go:build linux

// UDP GRO is a Linux feature. With the batchconn_sendmsg tag GRO is off, and
// these tests skip.

package batchconn_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// A readStep is one read of a plan: a ReadMessages call of batch messages,
// or (batch == 0) one ReadMsgUDP.
type readStep struct {
	batch int
	flags int
}

// readShape is how a plan's messages are laid out.
type readShape struct {
	bufs []int // buffer sizes of each message
	oob  int   // control room of each message
}

func (s readShape) msg() batchconn.Message {
	var m batchconn.Message
	for _, n := range s.bufs {
		m.Buffers = append(m.Buffers, make([]byte, n))
	}
	if s.oob > 0 {
		m.OOB = make([]byte, s.oob)
	}
	return m
}

// readPlan reads want datagrams from c, cycling through steps, and returns
// what each message reported, in order.
func readPlan(t *testing.T, c *batchconn.Conn, want int, shape readShape, steps []readStep) []got {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(recvWait))
	defer c.SetReadDeadline(time.Time{})
	var out []got
	for k := 0; len(out) < want; k++ {
		st := steps[k%len(steps)]
		if st.batch == 0 {
			m := shape.msg()
			var all []byte
			for _, b := range shape.bufs {
				all = append(all, make([]byte, b)...)
			}
			m.Buffers = [][]byte{all}
			n, oobn, flags, addr, err := c.ReadMsgUDP(all, m.OOB)
			if err != nil {
				t.Fatalf("ReadMsgUDP after %d datagrams: %v", len(out), err)
			}
			m.N, m.NN, m.Flags, m.Addr = n, oobn, flags, addr.AddrPort()
			out = append(out, gotOf(m))
			continue
		}
		msgs := make([]batchconn.Message, min(st.batch, want-len(out)))
		for i := range msgs {
			msgs[i] = shape.msg()
		}
		n, err := c.ReadMessages(context.Background(), msgs, st.flags)
		if err != nil {
			t.Fatalf("ReadMessages after %d datagrams: %v", len(out), err)
		}
		for _, m := range msgs[:n] {
			out = append(out, gotOf(m))
		}
	}
	return out
}

// groTraffic is a test's traffic: what each sender sends, in turns.
type groTraffic struct {
	name  string
	net   string
	turns []groTurn
}

// A groTurn is one WriteMessages call of a sender: count datagrams of size
// bytes (a shorter last one of last bytes if last > 0), with OOB.
type groTurn struct {
	from        int
	count, size int
	last        int
	oob         []byte
}

// TestContractR6GROTransparency sends the same GSO traffic to a Conn with GRO
// and one without, reads both the same way, and compares everything a
// caller can observe.
func TestContractR6GROTransparency(t *testing.T) {
	tos := func(v byte) []byte { return tosOOB(v) }
	tclass := func(v uint32) []byte { return gsoTClass(v) }
	traffic := []groTraffic{
		{"14 × 1400 bytes per GSO send, one sender", "udp4", []groTurn{
			{0, 14, 1400, 0, nil}, {0, 14, 1400, 0, nil}, {0, 14, 1400, 0, nil}}},
		{"runs with a short last datagram, and single ones", "udp4", []groTurn{
			{0, 20, 1000, 333, nil}, {0, 1, 77, 0, nil}, {0, 64, 100, 0, nil}, {0, 1, 0, 0, nil}, {0, 5, 1200, 1, nil}}},
		{"two senders in turns", "udp4", []groTurn{
			{0, 10, 1400, 0, nil}, {1, 10, 1400, 0, nil}, {0, 3, 500, 0, nil}, {1, 30, 300, 299, nil}}},
		{"TOS differing between GSO sends", "udp4", []groTurn{
			{0, 10, 1000, 0, tos(0x28)}, {0, 10, 1000, 0, tos(0x01)}, {0, 10, 1000, 0, tos(0x02)}, {0, 10, 1000, 0, nil}}},
		{"IPv6 traffic class differing between GSO sends", "udp6", []groTurn{
			{0, 10, 1000, 0, tclass(0x28)}, {0, 10, 1000, 0, tclass(0x01)}, {1, 10, 1000, 500, tclass(0x02)}}},
		{"IPv4 senders to a dual-stack socket", "udp", []groTurn{
			{0, 10, 1400, 0, nil}, {1, 7, 900, 10, nil}}},
		// A call that meets no coalesced buffer makes the next one read
		// into the callers' buffers; a GSO run arriving then must still
		// be split, in order with the plain datagrams around it.
		{"plain datagrams before and between GSO runs", "udp4", slices.Concat(
			repeatTurn(groTurn{0, 1, 1000, 0, nil}, 9),
			[]groTurn{{0, 14, 1400, 0, nil}},
			repeatTurn(groTurn{1, 1, 700, 0, nil}, 9),
			[]groTurn{{0, 20, 1000, 333, nil}, {1, 1, 1400, 0, nil}, {0, 3, 500, 0, nil}},
			repeatTurn(groTurn{0, 1, 1400, 0, nil}, 20),
			[]groTurn{{1, 10, 100, 0, nil}})},
	}
	shapes := []struct {
		name  string
		shape readShape
		steps []readStep
	}{
		{"batches of 64 into 1500-byte buffers", readShape{bufs: []int{1500}, oob: 128}, []readStep{{batch: 64}}},
		{"batches of 3: leftovers across calls", readShape{bufs: []int{1500}, oob: 128}, []readStep{{batch: 3}}},
		{"scattered into 3 buffers", readShape{bufs: []int{100, 0, 1000, 400}, oob: 128}, []readStep{{batch: 8}}},
		{"truncated into 600-byte buffers", readShape{bufs: []int{600}, oob: 128}, []readStep{{batch: 16}}},
		{"truncated, with MSG_TRUNC", readShape{bufs: []int{600}, oob: 128}, []readStep{{batch: 16, flags: unix.MSG_TRUNC}}},
		{"no control room", readShape{bufs: []int{1500}}, []readStep{{batch: 16}}},
		{"control room for a header only", readShape{bufs: []int{1500}, oob: unix.CmsgLen(0)}, []readStep{{batch: 16}}},
		// Batches with a message for every slot read into the messages
		// directly after a call that met no coalesced buffer.
		{"truncated into 600-byte buffers, batches of 64", readShape{bufs: []int{600}, oob: 128}, []readStep{{batch: 64}}},
		{"truncated, with MSG_TRUNC, batches of 64", readShape{bufs: []int{600}, oob: 128}, []readStep{{batch: 64, flags: unix.MSG_TRUNC}}},
		{"control room for a header only, batches of 64", readShape{bufs: []int{1500}, oob: unix.CmsgLen(0)}, []readStep{{batch: 64}}},
		{"single reads between batch reads", readShape{bufs: []int{1500}, oob: 128}, []readStep{{batch: 5}, {batch: 0}, {batch: 0}, {batch: 2}}},
		{"single reads only", readShape{bufs: []int{1500}, oob: 128}, []readStep{{batch: 0}}},
	}
	for _, tr := range traffic {
		for _, sh := range shapes {
			t.Run(tr.name+"/"+sh.name, func(t *testing.T) {
				on := reader(t, tr.net, true)
				off := reader(t, tr.net, false)
				for _, c := range []*batchconn.Conn{on, off} {
					setRecvTOSClass(t, c, tr.net)
				}
				senderNet := tr.net
				if tr.net == "udp" {
					senderNet = "udp4"
				}
				senders := []*batchconn.Conn{listen(t, senderNet), listen(t, senderNet)}
				total := 0
				for _, turn := range tr.turns {
					total += turn.count
					for _, dst := range []*batchconn.Conn{on, off} {
						to := addrOf(dst)
						if tr.net == "udp" {
							to = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), to.Port())
						}
						msgs := messages(to, turn.count, turn.size)
						if turn.last > 0 {
							msgs[len(msgs)-1].Buffers[0] = msgs[len(msgs)-1].Buffers[0][:turn.last]
						}
						for i := range msgs {
							msgs[i].OOB = turn.oob
						}
						sendFrom(t, senders[turn.from], msgs)
					}
				}
				gotOn := readPlan(t, on, total, sh.shape, sh.steps)
				gotOff := readPlan(t, off, total, sh.shape, sh.steps)
				for i := range gotOff {
					if !reflect.DeepEqual(gotOn[i], gotOff[i]) {
						t.Fatalf("datagram %d of %d differs:\nGRO on:  %s\nGRO off: %s", i, total, describe(gotOn[i]), describe(gotOff[i]))
					}
				}
				if senders[0].GSOEnabled() && on.Stats().GROBuffers == 0 {
					t.Errorf("no coalesced buffer met: the test did not exercise GRO (Stats %+v)", on.Stats())
				}
				if s := off.Stats(); s.GROBuffers != 0 {
					t.Errorf("GRO off, yet Stats %+v", s)
				}
			})
		}
	}
}

// repeatTurn returns n copies of t: n sends of its datagrams.
func repeatTurn(t groTurn, n int) []groTurn {
	ts := make([]groTurn, n)
	for i := range ts {
		ts[i] = t
	}
	return ts
}

func describe(g got) string {
	return fmt.Sprintf("from %v N=%d NN=%d Flags=%#x data[%d]=%x... oob=%x", g.Addr, g.N, g.NN, g.Flags, len(g.Data), head([]byte(g.Data)), g.OOB)
}

// setRecvTOSClass asks for the TOS (IPv4) or traffic class (IPv6) of every
// datagram as a control message.
func setRecvTOSClass(t *testing.T, c *batchconn.Conn, network string) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		if network == "udp4" {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
			return
		}
		if err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1); err == nil {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestContractR6GROOffByDefault checks the defaults and the switches.
func TestContractR6GROOffByDefault(t *testing.T) {
	c := listen(t, "udp4")
	if c.GROEnabled() || c.Stats().GROOff == "" {
		t.Errorf("a default Conn: GROEnabled() = %v, GROOff = %q; want off, with a reason", c.GROEnabled(), c.Stats().GROOff)
	}
	t.Setenv("BATCHCONN_DISABLE_GRO", "1")
	c = listen(t, "udp4", batchconn.WithGRO(true))
	if c.GROEnabled() || c.Stats().GROOff != "disabled by BATCHCONN_DISABLE_GRO" {
		t.Errorf("with BATCHCONN_DISABLE_GRO=1: GROEnabled() = %v, GROOff = %q", c.GROEnabled(), c.Stats().GROOff)
	}
	rc, _ := c.SyscallConn()
	var v int
	var err error
	rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO) })
	if err == nil && v != 0 {
		t.Errorf("UDP_GRO is %d on the socket of a Conn with GRO off", v)
	}
}

// TestContractR6GROStats checks that a GSO send arrives as coalesced buffers
// with GRO on, and that Stats count them.
func TestContractR6GROStats(t *testing.T) {
	c := reader(t, "udp4", true)
	tx := listen(t, "udp4")
	if !tx.GSOEnabled() {
		t.Skip("no GSO: nothing would coalesce")
	}
	sendFrom(t, tx, messages(addrOf(c), 14, 1400))
	gots := readN(t, c, 14, func(n int) []batchconn.Message { return recvMsgs(n, 1500, 0) }, 64, 0)
	expectNumbered(t, gots, 1400, addrOf(tx))
	s := c.Stats()
	if s.GROBuffers != 1 || s.GROMessages != 14 || s.RecvMessages != 14 || s.RecvBytes != 14*1400 {
		t.Errorf("Stats = %+v; want 1 GRO buffer of 14 datagrams, 14 × 1400 bytes", s)
	}
}

// TestGROSplitsForCodeThatNeverHeardOfIt runs an unchanged ReadFrom loop on a
// Conn with GRO on: it gets one datagram per call.
func TestGROSplitsForCodeThatNeverHeardOfIt(t *testing.T) {
	c := reader(t, "udp4", true)
	tx := listen(t, "udp4")
	sendFrom(t, tx, messages(addrOf(c), 30, 1000))
	c.SetReadDeadline(time.Now().Add(recvWait))
	buf := make([]byte, 2000)
	for i := range 30 {
		n, from, err := c.ReadFrom(buf)
		if err != nil || n != 1000 || string(buf[:n]) != string(payload(i, 1000)) || from.String() != tx.LocalAddr().String() {
			t.Fatalf("ReadFrom %d = %d, %v, %v", i, n, from, err)
		}
	}
}

// TestGROEnvironmentSwitchInAChild checks BATCHCONN_DISABLE_GRO in a fresh
// process, as an operator would set it.
func TestGROEnvironmentSwitchInAChild(t *testing.T) {
	if os.Getenv("BATCHCONN_GRO_CHILD") == "1" {
		c, err := batchconn.Listen("udp4", "127.0.0.1:0", batchconn.WithGRO(true))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.GROEnabled() {
			t.Fatal("GRO on despite BATCHCONN_DISABLE_GRO=1")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGROEnvironmentSwitchInAChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BATCHCONN_GRO_CHILD=1", "BATCHCONN_DISABLE_GRO=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

var _ = net.ErrClosed

// TestContractR3LeftoversThenTheSocket: a call that serves datagrams left
// over from an earlier one goes on to read what the socket holds, in order.
func TestContractR3LeftoversThenTheSocket(t *testing.T) {
	c := reader(t, "udp4", true)
	tx := listen(t, "udp4")
	if !tx.GSOEnabled() {
		t.Skip("no GSO: nothing coalesces, so nothing is left over")
	}
	sendFrom(t, tx, messages(addrOf(c), 14, 1000))
	first := readN(t, c, 3, func(n int) []batchconn.Message { return recvMsgs(n, 1500, 0) }, 3, 0)
	later := messages(addrOf(c), 19, 1000)[14:]
	for i := range later {
		later[i].Buffers[0] = payload(14+i, 1000)
	}
	sendFrom(t, listen(t, "udp4", batchconn.WithGSO(false)), later)
	msgs := recvMsgs(64, 1500, 0)
	n, err := c.ReadMessages(context.Background(), msgs, unix.MSG_DONTWAIT)
	if n != 16 || err != nil {
		t.Fatalf("ReadMessages = %d, %v; want the 11 left over and the 5 queued since", n, err)
	}
	all := first
	for _, m := range msgs[:n] {
		all = append(all, gotOf(m))
	}
	for i, g := range all {
		if g.Data != string(payload(i, 1000)) {
			t.Fatalf("datagram %d out of order", i)
		}
	}
}

// TestPeekLeavesDatagramsQueued checks MSG_PEEK with GRO on and off: the
// peeked datagrams are read again by the next call.
func TestPeekLeavesDatagramsQueued(t *testing.T) {
	for _, gro := range []bool{false, true} {
		for _, leftovers := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/leftovers %v", groName(gro), leftovers), func(t *testing.T) {
				c := reader(t, "udp4", gro)
				tx := listen(t, "udp4")
				sendFrom(t, tx, messages(addrOf(c), 14, 1000))
				skip := 0
				if leftovers {
					readN(t, c, 2, func(n int) []batchconn.Message { return recvMsgs(n, 1500, 0) }, 2, 0)
					skip = 2
				}
				c.SetReadDeadline(time.Now().Add(recvWait))
				peek := recvMsgs(4, 1500, 0)
				n, err := c.ReadMessages(context.Background(), peek, unix.MSG_PEEK)
				if n != 1 || err != nil || peek[1].N != 0 {
					t.Fatalf("peek = %d, %v; want the first datagram only", n, err)
				}
				rest := readN(t, c, 14-skip, func(n int) []batchconn.Message { return recvMsgs(n, 1500, 0) }, 64, 0)
				for i, m := range peek[:n] {
					if g := gotOf(m); g != rest[i] || g.Data != string(payload(skip+i, 1000)) {
						t.Fatalf("peeked datagram %d: %s; read afterwards: %s", i, describe(g), describe(rest[i]))
					}
				}
				for i, g := range rest {
					if g.Data != string(payload(skip+i, 1000)) {
						t.Fatalf("datagram %d out of order after a peek", skip+i)
					}
				}
			})
		}
	}
}

// TestContractR6GROTransparencyOverVeth repeats the transparency check across
// a veth link between two network namespaces, where the datagrams really
// cross a device, with TOS changing between GSO sends.
func TestContractR6GROTransparencyOverVeth(t *testing.T) {
	p := testnet.NewPair(t, testnet.LinkConfig{})
	wrap := func(uc *net.UDPConn, gro bool) *batchconn.Conn {
		c, err := batchconn.New(uc, batchconn.WithGRO(gro))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	on, off := wrap(p.B.ListenUDP(t, "udp4", 0), true), wrap(p.B.ListenUDP(t, "udp4", 0), false)
	if !on.GROEnabled() {
		t.Skipf("no UDP GRO: %s", on.Stats().GROOff)
	}
	setRecvTOS(t, on)
	setRecvTOS(t, off)
	tx := wrap(p.A.ListenUDP(t, "udp4", 0), false)
	total := 0
	for _, turn := range []struct {
		count, size int
		tos         byte
	}{{14, 1400, 0}, {14, 1400, 0x28}, {20, 1000, 0x01}, {1, 50, 0}, {30, 1200, 0x02}} {
		for _, dst := range []*batchconn.Conn{on, off} {
			msgs := withTOS(messages(addrOf(dst), turn.count, turn.size), turn.tos)
			for i := range msgs {
				msgs[i].Buffers[0] = payload(total+i, turn.size)
			}
			sendFrom(t, tx, msgs)
		}
		total += turn.count
	}
	shape := readShape{bufs: []int{1500}, oob: 64}
	steps := []readStep{{batch: 5}, {batch: 0}, {batch: 64}}
	gotOn := readPlan(t, on, total, shape, steps)
	gotOff := readPlan(t, off, total, shape, steps)
	for i := range gotOff {
		if !reflect.DeepEqual(gotOn[i], gotOff[i]) {
			t.Fatalf("datagram %d of %d differs:\nGRO on:  %s\nGRO off: %s", i, total, describe(gotOn[i]), describe(gotOff[i]))
		}
	}
	if s := on.Stats(); tx.GSOEnabled() && s.GROBuffers == 0 {
		t.Errorf("no coalesced buffer met over veth: the test did not exercise GRO (Stats %+v)", s)
	}
}

// TestGROReadIntoMessagesOf1024Buffers reads plain datagrams with GRO on into
// messages of 1024 buffers, the kernel's iovec limit (UIO_MAXIOV), as GRO
// off reads them: reading straight into the messages must not put a slot's
// iovec behind them (EMSGSIZE).
func TestGROReadIntoMessagesOf1024Buffers(t *testing.T) {
	on, off := reader(t, "udp4", true), reader(t, "udp4", false)
	tx := listen(t, "udp4")
	const count = 40
	for _, dst := range []*batchconn.Conn{on, off} {
		for i := range count {
			sendFrom(t, tx, messages(addrOf(dst), 1, 100+i)) // one per send: nothing to coalesce
		}
	}
	mk := func(n int) []batchconn.Message {
		msgs := make([]batchconn.Message, n)
		for i := range msgs {
			for range 1024 {
				msgs[i].Buffers = append(msgs[i].Buffers, make([]byte, 1))
			}
		}
		return msgs
	}
	gotOn := readN(t, on, count, mk, 64, 0)
	gotOff := readN(t, off, count, mk, 64, 0)
	if !reflect.DeepEqual(gotOn, gotOff) {
		t.Errorf("GRO on read\n%v\nGRO off read\n%v", gotOn, gotOff)
	}
}
