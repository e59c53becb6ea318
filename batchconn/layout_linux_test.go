//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestMmsghdrLayout checks the structures handed to sendmmsg(2) and
// recvmmsg(2), all of them golang.org/x/sys/unix types, against the kernel
// ABI: struct mmsghdr is a struct msghdr followed by an unsigned int, padded
// to the alignment of a pointer.
func TestMmsghdrLayout(t *testing.T) {
	ptr := unsafe.Sizeof(uintptr(0))
	want := map[uintptr]struct{ msghdr, mmsghdr, iovec uintptr }{
		8: {56, 64, 16}, // LP64: amd64, arm64, s390x, ppc64le, riscv64, ...
		4: {28, 32, 8},  // ILP32: 386, arm, mips, ...
	}[ptr]
	if want.mmsghdr == 0 {
		t.Fatalf("no ABI table for %d-byte pointers", ptr)
	}
	var m unix.Mmsghdr
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct msghdr)", unsafe.Sizeof(m.Hdr), want.msghdr},
		{"sizeof(struct mmsghdr)", unsafe.Sizeof(m), want.mmsghdr},
		{"unix.SizeofMmsghdr", unix.SizeofMmsghdr, want.mmsghdr},
		{"offsetof(struct mmsghdr, msg_len)", unsafe.Offsetof(m.Len), want.msghdr},
		{"sizeof(struct iovec)", unsafe.Sizeof(unix.Iovec{}), want.iovec},
		{"sizeof(struct sockaddr_in)", unsafe.Sizeof(unix.RawSockaddrInet4{}), 16},
		{"sizeof(struct sockaddr_in6)", unsafe.Sizeof(unix.RawSockaddrInet6{}), 28},
		{"sizeof(struct cmsghdr)", uintptr(cmsgHdrLen), unix.SizeofCmsghdr},
		{"CMSG_SPACE(2)", uintptr(udpSegmentSpace), uintptr(cmsgAlignUp(cmsgHdrLen + 2))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestUDPSegmentCmsgLayout checks the UDP_SEGMENT control message built for
// GSO runs as the kernel (and x/sys) reads it, on either byte order, after a
// caller's own control message whose length is not aligned.
func TestUDPSegmentCmsgLayout(t *testing.T) {
	tos := make([]byte, unix.CmsgLen(1)) // unpadded: the builder must align
	h := (*unix.Cmsghdr)(unsafe.Pointer(&tos[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TOS
	h.SetLen(unix.CmsgLen(1))
	tos[unix.CmsgLen(0)] = 0x28

	ctrl := appendUDPSegment(nil, tos, 1452)
	msgs, err := unix.ParseSocketControlMessage(ctrl)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("ParseSocketControlMessage = %v, %v; want 2 messages", msgs, err)
	}
	if m := msgs[0]; m.Header.Level != unix.IPPROTO_IP || m.Header.Type != unix.IP_TOS || m.Data[0] != 0x28 {
		t.Errorf("first message %+v, want the caller's IP_TOS", m.Header)
	}
	m := msgs[1]
	if m.Header.Level != unix.SOL_UDP || m.Header.Type != unix.UDP_SEGMENT || len(m.Data) < 2 {
		t.Fatalf("second message %+v, want UDP_SEGMENT", m.Header)
	}
	if seg := binary.NativeEndian.Uint16(m.Data); seg != 1452 {
		t.Errorf("UDP_SEGMENT carries %d, want 1452", seg)
	}
	if found, ok := findCmsg(ctrl, unix.SOL_UDP, unix.UDP_SEGMENT); !found || !ok {
		t.Errorf("findCmsg(built control) = %v, %v; want true, true", found, ok)
	}
}

// TestGROCmsgLayout checks that the splitter reads the UDP_GRO control
// message as the kernel writes it: a C int in native byte order. Reading 2
// bytes works on little-endian machines only; .ci/run runs this test on
// big-endian s390x under qemu.
func TestGROCmsgLayout(t *testing.T) {
	for _, seg := range []int32{1, 1400, 1452, 65535} {
		b := make([]byte, unix.CmsgSpace(4))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.SOL_UDP, unix.UDP_GRO
		h.SetLen(unix.CmsgLen(4))
		*(*int32)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = seg // as the kernel's put_cmsg stores an int
		got, rest := cutGRO(b)
		if got != int(seg) || len(rest) != 0 {
			t.Errorf("cutGRO(UDP_GRO %d) = %d, %x", seg, got, rest)
		}
	}
	consts := []struct {
		name      string
		got, want int
	}{
		{"SOL_UDP", solUDP, unix.SOL_UDP},
		{"UDP_GRO", udpGRO, unix.UDP_GRO},
		{"MSG_TRUNC", msgTrunc, unix.MSG_TRUNC},
		{"MSG_CTRUNC", msgCtrunc, unix.MSG_CTRUNC},
		{"MSG_PEEK", msgPeek, unix.MSG_PEEK},
		{"MSG_CMSG_CLOEXEC", msgEcho, unix.MSG_CMSG_CLOEXEC},
	}
	if groCmsgSpace != unix.CmsgSpace(4) {
		t.Errorf("groCmsgSpace = %d, want CMSG_SPACE(sizeof(int)) = %d", groCmsgSpace, unix.CmsgSpace(4))
	}
	for _, c := range consts {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
