package batchconn

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// groCmsg is a UDP_GRO control message holding seg, a C int.
func groCmsg(seg int) []byte {
	return testCmsg(solUDP, udpGRO, binary.NativeEndian.AppendUint32(nil, uint32(seg)))
}

func TestCutGRO(t *testing.T) {
	tos := tosCmsg(0x28)
	cases := []struct {
		name     string
		oob      []byte
		seg      int
		wantRest []byte
	}{
		{"no control messages", nil, 0, nil},
		{"UDP_GRO alone", groCmsg(1400), 1400, []byte{}},
		{"UDP_GRO first, as Linux puts it", cat(groCmsg(1400), tos), 1400, tos},
		{"UDP_GRO last", cat(tos, groCmsg(9000)), 9000, tos},
		{"UDP_GRO between two others", cat(tos, groCmsg(3), tosCmsg(1)), 3, cat(tos, tosCmsg(1))},
		{"no UDP_GRO", cat(tos, tosCmsg(2)), 0, cat(tos, tosCmsg(2))},
		{"a segment size over 65535 (a whole int is read)", groCmsg(1 << 17), 1 << 17, []byte{}},
		{"a UDP_GRO too short for an int is left alone", testCmsg(solUDP, udpGRO, []byte{1, 2}), 0, testCmsg(solUDP, udpGRO, []byte{1, 2})},
		{"malformed length", withBadLen(cat(groCmsg(100))), 0, withBadLen(cat(groCmsg(100)))},
		{"a header cut short", groCmsg(100)[:cmsgHdrLen-1], 0, groCmsg(100)[:cmsgHdrLen-1]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.oob)
			seg, rest := cutGRO(in)
			if seg != tc.seg || !bytes.Equal(rest, tc.wantRest) {
				t.Errorf("cutGRO = %d, %x; want %d, %x", seg, rest, tc.seg, tc.wantRest)
			}
		})
	}
}

// A kernelCmsgs is a reader's control buffer as the kernel fills it, a
// transliteration of put_cmsg (net/core/scm.c): the reference for putCmsgs.
type kernelCmsgs struct {
	buf    []byte // msg_control, advanced as messages are stored
	used   int    // bytes consumed: what msg_controllen reports
	ctrunc bool   // MSG_CTRUNC
}

func (k *kernelCmsgs) put(level, typ int32, data []byte) {
	cmlen := cmsgHdrLen + len(data) // CMSG_LEN(len)
	if len(k.buf) < cmsgHdrLen {
		k.ctrunc = true
		return
	}
	if len(k.buf) < cmlen {
		k.ctrunc = true
		cmlen = len(k.buf)
	}
	putCmsgLen(k.buf, cmlen)
	binary.NativeEndian.PutUint32(k.buf[cmsgAlign:], uint32(level))
	binary.NativeEndian.PutUint32(k.buf[cmsgAlign+4:], uint32(typ))
	copy(k.buf[cmsgHdrLen:cmlen], data)
	cmlen = min(cmsgAlignUp(cmsgHdrLen+len(data)), len(k.buf)) // min(CMSG_SPACE(len), msg_controllen)
	k.buf = k.buf[cmlen:]
	k.used += cmlen
}

// putAll stores the well-formed control messages of src as the kernel
// would have, one put_cmsg each.
func (k *kernelCmsgs) putAll(src []byte) {
	for len(src) >= cmsgHdrLen {
		l := cmsgLen(src)
		level := int32(binary.NativeEndian.Uint32(src[cmsgAlign:]))
		typ := int32(binary.NativeEndian.Uint32(src[cmsgAlign+4:]))
		k.put(level, typ, src[cmsgHdrLen:l])
		src = src[min(cmsgAlignUp(l), len(src)):]
	}
}

func TestPutCmsgs(t *testing.T) {
	tos, gro := tosCmsg(0x28), groCmsg(1)
	two := cat(tos, gro)
	three := cat(tos, testCmsg(41, 55, bytes.Repeat([]byte{7}, 29)), gro)
	hdr := cmsgHdrLen + 4 // a TOS cmsg's cmsg_len
	cases := []struct {
		name   string
		room   int
		src    []byte
		nn     int
		ctrunc bool
	}{
		{"nothing to store", 10, nil, 0, false},
		{"no room", 0, tos, 0, true},
		{"room for less than a header", cmsgHdrLen - 1, tos, 0, true},
		{"room for the header only: the message is cut to it", cmsgHdrLen, tos, cmsgHdrLen, true},
		{"room for cmsg_len bytes: stored, NN is the room", hdr, tos, hdr, false},
		{"room for the aligned space", len(tos), tos, len(tos), false},
		{"room for one and part of the next: it is cut", len(tos) + hdr - 1, two, len(tos) + hdr - 1, true},
		{"room for one and less than a header: the next is left out", len(tos) + cmsgHdrLen - 1, two, len(tos), true},
		{"a cut message ends the copy", len(tos) + cmsgHdrLen + 20, three, len(tos) + cmsgHdrLen + 20, true},
		{"room for both", 100, two, len(two), false},
		{"room for all three", len(three), three, len(three), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := bytes.Repeat([]byte{0xee}, tc.room)
			nn, ctrunc := putCmsgs(dst, tc.src)
			if nn != tc.nn || ctrunc != tc.ctrunc {
				t.Fatalf("putCmsgs = %d, %v; want %d, %v", nn, ctrunc, tc.nn, tc.ctrunc)
			}
			ref := kernelCmsgs{buf: bytes.Repeat([]byte{0xee}, tc.room)}
			want := ref.buf
			ref.putAll(tc.src)
			if !bytes.Equal(dst, want) || nn != ref.used || ctrunc != ref.ctrunc {
				t.Errorf("stored %x (NN %d, MSG_CTRUNC %v)\nthe kernel %x (NN %d, MSG_CTRUNC %v)", dst, nn, ctrunc, want, ref.used, ref.ctrunc)
			}
		})
	}
	t.Run("malformed source", func(t *testing.T) {
		if nn, ctrunc := putCmsgs(make([]byte, 100), withBadLen(tos)); nn != 0 || !ctrunc {
			t.Errorf("putCmsgs = %d, %v; want 0, true", nn, ctrunc)
		}
	})
}

// refSplit is the splitter's reference: each datagram stored as a plain read
// would store it, built from the datagram list directly.
type refDatagram struct {
	data  []byte
	addr  netip.AddrPort
	oob   []byte
	kflag int // the buffer's msg_flags, for the last datagram of a truncated buffer
}

func refStore(m *Message, d refDatagram, callFlags int) {
	room := 0
	for _, b := range m.Buffers {
		room += len(b)
	}
	stored := min(room, len(d.data))
	rest := d.data[:stored]
	for _, b := range m.Buffers {
		k := copy(b, rest)
		rest = rest[k:]
	}
	// MSG_CMSG_CLOEXEC is the call's, not the buffer's: the kernel copies
	// it from each read's flags.
	m.N, m.Flags = stored, d.kflag&^(msgTrunc|msgCtrunc|msgEcho)|callFlags&msgEcho
	if stored < len(d.data) || d.kflag&msgTrunc != 0 {
		m.Flags |= msgTrunc
		if callFlags&msgTrunc != 0 {
			m.N = len(d.data)
		}
	}
	// The control messages as the kernel's put_cmsg stores them.
	k := kernelCmsgs{buf: m.OOB}
	k.putAll(d.oob)
	m.NN = k.used
	if k.ctrunc {
		m.Flags |= msgCtrunc
	}
	if d.kflag&msgCtrunc != 0 {
		m.Flags |= msgCtrunc
	}
	m.Addr = d.addr
}

// fuzzBufs builds kernel buffers from data: each a run of datagrams of one
// size with a shorter (or equal) last, or a single datagram; and the plain
// datagram list they stand for.
func fuzzBufs(data []byte) ([]groBuf, []refDatagram, []byte) {
	var bufs []groBuf
	var ref []refDatagram
	oobs := [][]byte{nil, tosCmsg(1), cat(tosCmsg(2), tosCmsg(3))}
	k := 0
	for len(data) >= 4 && len(bufs) < 8 {
		seg, count, last, o := int(data[0])%40, int(data[1])%6+1, int(data[2])%40, data[3]
		data = data[4:]
		if seg == 0 || count == 1 {
			count, seg = 1, 0
		}
		if last == 0 || last > seg {
			last = seg
		}
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, o % 3}), uint16(o))
		oob := oobs[int(o)%len(oobs)]
		var all []byte
		var ds []refDatagram
		for i := range count {
			size := seg
			if i == count-1 {
				size = last
			}
			if count == 1 {
				size = last % 40 // a single datagram, possibly 0 bytes
			}
			d := make([]byte, size)
			for j := range d {
				d[j] = byte(k*31 + j)
			}
			k++
			all = append(all, d...)
			ds = append(ds, refDatagram{data: d, addr: addr, oob: oob})
		}
		kflag := 0
		if o&0x40 != 0 {
			kflag |= msgCtrunc
		}
		if o&0x20 != 0 {
			kflag |= msgEcho // read by a call with MSG_CMSG_CLOEXEC
		}
		for i := range ds {
			ds[i].kflag = kflag
		}
		if lastD := &ds[len(ds)-1]; o&0x80 != 0 && len(lastD.data) >= 2 {
			// The kernel truncated the buffer: its slot held one byte less.
			all = all[:len(all)-1]
			lastD.data = lastD.data[:len(lastD.data)-1]
			kflag |= msgTrunc
			lastD.kflag = kflag
		}
		bufs = append(bufs, groBuf{data: all, seg: seg, addr: addr, oob: oob, flags: kflag})
		ref = append(ref, ds...)
	}
	return bufs, ref, data
}

// FuzzSplit drains kernel buffers through the splitter into messages of
// fuzzed shapes and compares every message with the reference.
func FuzzSplit(f *testing.F) {
	f.Add([]byte{14, 5, 14, 0, 10, 1, 3, 0x41, 3, 5, 0, 0x82, 0, 0, 1, 2, 30, 3, 40, 7})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0x81, 7, 2, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		bufs, ref, rest := fuzzBufs(data)
		var q groQueue
		q.bufs = bufs
		callFlags := 0
		if len(rest) > 0 && rest[0]&1 != 0 {
			callFlags |= msgTrunc
		}
		if len(rest) > 0 && rest[0]&2 != 0 {
			callFlags |= msgEcho
		}
		for i, d := range ref {
			if q.empty() {
				t.Fatalf("queue empty after %d of %d datagrams", i, len(ref))
			}
			shape := byte(i)
			if len(rest) > 1+i {
				shape = rest[1+i]
			}
			mk := func() Message {
				var m Message
				for j := range int(shape%3) + 1 {
					m.Buffers = append(m.Buffers, make([]byte, (int(shape)>>2+j*7)%45))
				}
				m.OOB = make([]byte, int(shape>>4)*8)
				return m
			}
			got, want := mk(), mk()
			size := q.next(&got, callFlags)
			refStore(&want, d, callFlags)
			if size != len(d.data) {
				t.Fatalf("datagram %d: next returned size %d, want %d", i, size, len(d.data))
			}
			if got.N != want.N || got.NN != want.NN || got.Flags != want.Flags || got.Addr != want.Addr ||
				!bytes.Equal(bytes.Join(got.Buffers, nil), bytes.Join(want.Buffers, nil)) || !bytes.Equal(got.OOB, want.OOB) {
				t.Fatalf("datagram %d:\ngot  N=%d NN=%d Flags=%#x %v %x\nwant N=%d NN=%d Flags=%#x %v %x",
					i, got.N, got.NN, got.Flags, got.Addr, got.Buffers, want.N, want.NN, want.Flags, want.Addr, want.Buffers)
			}
		}
		if !q.empty() {
			t.Fatalf("datagrams left after the reference's %d", len(ref))
		}
	})
}
