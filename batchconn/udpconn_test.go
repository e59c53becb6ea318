//go:build linux

package batchconn_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// signature is a method's type without its receiver.
func signature(m reflect.Method) string {
	t := m.Type
	var in, out []string
	for i := 1; i < t.NumIn(); i++ {
		in = append(in, t.In(i).String())
	}
	for i := range t.NumOut() {
		out = append(out, t.Out(i).String())
	}
	return fmt.Sprintf("(%s) (%s)", strings.Join(in, ", "), strings.Join(out, ", "))
}

// TestMethodSetCoversUDPConn compares *Conn's methods with *net.UDPConn's:
// every method of the UDPConn, with the same signature. A Go release that
// adds a method to *net.UDPConn fails this test until the Conn has it too.
func TestMethodSetCoversUDPConn(t *testing.T) {
	udp := reflect.TypeOf((*net.UDPConn)(nil))
	conn := reflect.TypeOf((*batchconn.Conn)(nil))
	for i := range udp.NumMethod() {
		um := udp.Method(i)
		cm, ok := conn.MethodByName(um.Name)
		if !ok {
			t.Errorf("*Conn lacks %s%s", um.Name, signature(um))
			continue
		}
		if signature(cm) != signature(um) {
			t.Errorf("*Conn.%s%s, *net.UDPConn.%s%s", cm.Name, signature(cm), um.Name, signature(um))
		}
	}
	if udp.NumMethod() < 22 {
		t.Errorf("*net.UDPConn has %d methods; the test is not looking at the right type", udp.NumMethod())
	}
}

// TestXNetPacketConn checks that x/net's ipv4.NewPacketConn, which pion and
// kcp-go call on their socket, works on a Conn.
func TestXNetPacketConn(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			c := reader(t, "udp4", gro)
			p := ipv4.NewPacketConn(c)
			if err := p.SetTOS(0x28); err != nil {
				t.Fatalf("SetTOS: %v", err)
			}
			if tos, err := p.TOS(); err != nil || tos != 0x28 {
				t.Fatalf("TOS = %#x, %v", tos, err)
			}
			if err := p.SetControlMessage(ipv4.FlagTTL, true); err != nil {
				t.Fatalf("SetControlMessage: %v", err)
			}
			dst := listen(t, "udp4")
			if _, err := p.WriteTo([]byte("x/net"), nil, dst.LocalAddr()); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			dst.SetReadDeadline(time.Now().Add(recvWait))
			buf := make([]byte, 10)
			if n, from, err := dst.ReadFrom(buf); err != nil || string(buf[:n]) != "x/net" || from.String() != c.LocalAddr().String() {
				t.Fatalf("ReadFrom = %q, %v, %v", buf[:n], from, err)
			}
		})
	}
}

// readResult is what one read method call returned, comparable between a
// Conn and a *net.UDPConn.
type readResult struct {
	N, OOBN, Flags int
	Addr, Data     string
	Err            string
}

// readMethods are the single-datagram read methods of a *net.UDPConn.
var readMethods = []string{"Read", "ReadFrom", "ReadFromUDP", "ReadFromUDPAddrPort", "ReadMsgUDP", "ReadMsgUDPAddrPort"}

// readCall calls u's read method name.
func readCall(name string, buf, oob []byte, u any) readResult {
	var r readResult
	var err error
	var addr net.Addr
	var ap netip.AddrPort
	switch name {
	case "Read":
		r.N, err = u.(interface{ Read([]byte) (int, error) }).Read(buf)
	case "ReadFrom":
		r.N, addr, err = u.(net.PacketConn).ReadFrom(buf)
	case "ReadFromUDP":
		var ua *net.UDPAddr
		r.N, ua, err = u.(interface {
			ReadFromUDP([]byte) (int, *net.UDPAddr, error)
		}).ReadFromUDP(buf)
		if ua != nil {
			addr = ua
		}
	case "ReadFromUDPAddrPort":
		r.N, ap, err = u.(interface {
			ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
		}).ReadFromUDPAddrPort(buf)
	case "ReadMsgUDP":
		var ua *net.UDPAddr
		r.N, r.OOBN, r.Flags, ua, err = u.(interface {
			ReadMsgUDP([]byte, []byte) (int, int, int, *net.UDPAddr, error)
		}).ReadMsgUDP(buf, oob)
		if ua != nil {
			addr = ua
		}
	case "ReadMsgUDPAddrPort":
		r.N, r.OOBN, r.Flags, ap, err = u.(interface {
			ReadMsgUDPAddrPort([]byte, []byte) (int, int, int, netip.AddrPort, error)
		}).ReadMsgUDPAddrPort(buf, oob)
	}
	if addr != nil {
		r.Addr = addr.String()
	} else if ap.IsValid() {
		r.Addr = ap.String()
	}
	r.Data = string(buf[:max(0, min(r.N, len(buf)))]) // a failed ReadMsgUDP of a UDPConn returns n = -1
	if err != nil {
		r.Err = errShape(err)
	}
	return r
}

// TestReadMethodsMatchUDPConn reads the same GSO traffic through a plain
// *net.UDPConn and through each read method of a Conn with GRO on, and
// compares what every call returned.
func TestReadMethodsMatchUDPConn(t *testing.T) {
	for _, name := range readMethods {
		t.Run(name, func(t *testing.T) {
			c := reader(t, "udp4", true)
			setRecvTOS(t, c)
			uc := listen(t, "udp4").UDPConn() // a plain socket, read directly
			rc, _ := uc.SyscallConn()
			rc.Control(func(fd uintptr) { setRecvTOSfd(t, fd) })
			tx := listen(t, "udp4")
			for _, dst := range []netip.AddrPort{addrOf(c), uc.LocalAddr().(*net.UDPAddr).AddrPort()} {
				msgs := withTOS(messages(dst, 14, 1400), 0x28)
				msgs = append(msgs, messages(dst, 3, 10)...)
				msgs[15].Buffers = nil // 0 bytes
				sendFrom(t, tx, msgs)
			}
			// Buffer sizes in turn: whole, truncated, and empty.
			sizes := []int{1500, 700, 1500, 0, 1500}
			reads := 17
			if name == "Read" {
				reads += 4 // its reads into nothing consume nothing
			}
			for i := range reads {
				size := sizes[i%len(sizes)]
				deadline := time.Now().Add(recvWait)
				c.SetReadDeadline(deadline)
				uc.SetReadDeadline(deadline)
				want := readCall(name, make([]byte, size), make([]byte, 64), uc)
				if name == "Read" && size == 0 {
					// Read into nothing consumes nothing on both.
					want.Data = ""
				}
				got := readCall(name, make([]byte, size), make([]byte, 64), c)
				if got != want {
					t.Fatalf("read %d into %d bytes:\nConn:    %+v\nUDPConn: %+v", i, size, got, want)
				}
			}
			// A passed deadline fails the read, with datagrams queued too.
			for _, queued := range []bool{false, true} {
				if queued {
					sendFrom(t, tx, messages(addrOf(c), 14, 1400))
					sendFrom(t, tx, messages(uc.LocalAddr().(*net.UDPAddr).AddrPort(), 14, 1400))
					c.SetReadDeadline(time.Time{})
					if n, err := c.Read(make([]byte, 1500)); n != 1400 || err != nil {
						t.Fatalf("Read = %d, %v", n, err) // the rest stays queued in the Conn
					}
				}
				past := time.Now().Add(-time.Second)
				c.SetReadDeadline(past)
				uc.SetReadDeadline(past)
				want := readCall(name, make([]byte, 1500), nil, uc)
				got := readCall(name, make([]byte, 1500), nil, c)
				if got != want || want.Err == "" {
					t.Fatalf("queued %v, past deadline:\nConn:    %+v\nUDPConn: %+v", queued, got, want)
				}
			}
			c.Close()
			uc.Close()
			want := readCall(name, make([]byte, 1500), nil, uc)
			got := readCall(name, make([]byte, 1500), nil, c)
			if got != want || want.Err == "" {
				t.Fatalf("after Close:\nConn:    %+v\nUDPConn: %+v", got, want)
			}
		})
	}
}

// TestReadMethodsMatchUDPConnOnKernelErrors reads a kernel error, the
// ECONNREFUSED a connected socket gets when its peer's port is closed,
// through each read method of a Conn with GRO on and of a plain UDPConn:
// the Conn's error must name the system call the UDPConn's method names
// (read, recvfrom or recvmsg), not the recvmmsg its batch made.
func TestReadMethodsMatchUDPConnOnKernelErrors(t *testing.T) {
	closed := testnet.ListenUDP(t, "udp4")
	dst := closed.LocalAddr().(*net.UDPAddr)
	closed.Close() // nothing listens on dst now: writes to it bring ICMP port unreachable
	dial := func(t *testing.T) *net.UDPConn {
		u, err := net.DialUDP("udp4", nil, dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	}
	for _, name := range readMethods {
		t.Run(name, func(t *testing.T) {
			c, err := batchconn.New(dial(t), batchconn.WithGRO(true))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !c.GROEnabled() {
				t.Skipf("no UDP GRO here: %s", c.Stats().GROOff)
			}
			uc := dial(t)
			var res [2]readResult
			for i, u := range []interface {
				Write([]byte) (int, error)
				SetReadDeadline(time.Time) error
			}{uc, c} {
				if _, err := u.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				u.SetReadDeadline(time.Now().Add(recvWait))
				res[i] = readCall(name, make([]byte, 1500), make([]byte, 64), u)
			}
			want, got := res[0], res[1]
			if !strings.Contains(want.Err, "connection refused") {
				t.Fatalf("the UDPConn's read gave %+v, want ECONNREFUSED", want)
			}
			if got != want {
				t.Errorf("\nConn:    %+v\nUDPConn: %+v", got, want)
			}
		})
	}
}

// errShape describes an error as far as callers can tell errors apart: its
// *net.OpError fields, the system call and errno it names, and the
// sentinels it matches.
func errShape(err error) string {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return fmt.Sprintf("%T %v", err, err)
	}
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	src := "<nil>" // the two sockets' ports differ; the kind of address must not
	if oe.Source != nil {
		src = fmt.Sprintf("%T %s", oe.Source, oe.Source.Network())
	}
	sys := "none"
	var se *os.SyscallError
	if errors.As(err, &se) {
		sys = fmt.Sprintf("%s: %v", se.Syscall, se.Err)
	}
	return fmt.Sprintf("OpError{Op:%s Net:%s Source:%s Addr:%v} syscall=%s timeout=%v deadline=%v closed=%v",
		oe.Op, oe.Net, src, oe.Addr, sys, timeout, errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, net.ErrClosed))
}

func setRecvTOSfd(t *testing.T, fd uintptr) {
	if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1); err != nil {
		t.Fatal(err)
	}
}

// TestSingleWritesTakeTurns checks the single-datagram writes of the
// method set deliver, and fail the UDPConn's way after Close.
func TestSingleWritesTakeTurns(t *testing.T) {
	c := listen(t, "udp4")
	r := reader(t, "udp4", false)
	dst := addrOf(r)
	ua := net.UDPAddrFromAddrPort(dst)
	writes := []struct {
		name string
		fn   func() error
	}{
		{"WriteToUDP", func() error { _, err := c.WriteToUDP([]byte("WriteToUDP"), ua); return err }},
		{"WriteToUDPAddrPort", func() error { _, err := c.WriteToUDPAddrPort([]byte("WriteToUDPAddrPort"), dst); return err }},
		{"WriteMsgUDPAddrPort", func() error {
			_, _, err := c.WriteMsgUDPAddrPort([]byte("WriteMsgUDPAddrPort"), nil, dst)
			return err
		}},
	}
	for _, w := range writes {
		if err := w.fn(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
	gots := readN(t, r, 3, func(n int) []batchconn.Message { return recvMsgs(n, 100, 0) }, 3, 0)
	for i, w := range writes {
		if gots[i].Data != w.name {
			t.Errorf("datagram %d = %q, want %q", i, gots[i].Data, w.name)
		}
	}
	uc, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := batchconn.New(uc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Write([]byte("Write")); err != nil {
		t.Fatal(err)
	}
	if g := readN(t, r, 1, func(n int) []batchconn.Message { return recvMsgs(n, 100, 0) }, 1, 0); g[0].Data != "Write" {
		t.Errorf("got %q", g[0].Data)
	}
	f, err := dc.File()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	dc.Close()
	for _, w := range append(writes, struct {
		name string
		fn   func() error
	}{"Write", func() error { _, err := dc.Write([]byte{1}); return err }}) {
		if w.name != "Write" {
			c.Close()
		}
		if err := w.fn(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close = %v, want net.ErrClosed", w.name, err)
		}
	}
}
