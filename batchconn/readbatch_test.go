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

func TestPutCmsgs(t *testing.T) {
	tos, gro := tosCmsg(0x28), groCmsg(1)
	two := cat(tos, gro)
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
		{"room for the header only", cmsgHdrLen, tos, 0, true},
		{"room for cmsg_len bytes: stored, NN is the room", hdr, tos, hdr, false},
		{"room for the aligned space", len(tos), tos, len(tos), false},
		{"room for one of two", len(tos) + hdr - 1, two, len(tos), true},
		{"room for both", 100, two, len(two), false},
		{"malformed source", 100, withBadLen(tos), 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := bytes.Repeat([]byte{0xee}, tc.room)
			nn, ctrunc := putCmsgs(dst, tc.src)
			if nn != tc.nn || ctrunc != tc.ctrunc {
				t.Fatalf("putCmsgs = %d, %v; want %d, %v", nn, ctrunc, tc.nn, tc.ctrunc)
			}
			if k := min(nn, len(tc.src)); !bytes.Equal(dst[:min(k, hdr)], tc.src[:min(k, hdr)]) {
				t.Errorf("stored %x, want %x", dst[:k], tc.src[:k])
			}
		})
	}
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
	m.N, m.Flags = stored, d.kflag&^(msgTrunc|msgCtrunc)
	if stored < len(d.data) || d.kflag&msgTrunc != 0 {
		m.Flags |= msgTrunc
		if callFlags&msgTrunc != 0 {
			m.N = len(d.data)
		}
	}
	// Whole cmsgs, in order, while they fit; NN counts aligned space.
	m.NN = 0
	src := d.oob
	for len(src) > 0 {
		var l int
		if cmsgAlign == 8 {
			l = int(binary.NativeEndian.Uint64(src))
		} else {
			l = int(binary.NativeEndian.Uint32(src))
		}
		if len(m.OOB)-m.NN < l {
			m.Flags |= msgCtrunc
			break
		}
		copy(m.OOB[m.NN:], src[:l])
		m.NN += min(cmsgAlignUp(l), len(m.OOB)-m.NN)
		src = src[min(cmsgAlignUp(l), len(src)):]
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
			callFlags = msgTrunc
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
