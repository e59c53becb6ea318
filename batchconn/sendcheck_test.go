package batchconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The checks WriteMessages makes before any system call, the zone table and
// the per-destination GSO table are portable, so they are tested here on
// every platform; contract tests check them end to end on a real kernel.

// bsdCmsg is the BSD and macOS layout: a socklen_t length, 12 bytes of
// header; FreeBSD on 64-bit ports aligns to 8, macOS to 4.
var (
	bsdCmsg    = cmsgLayout{lenSize: 4, hdrLen: 12, align: 4}
	bsd64Cmsg  = cmsgLayout{lenSize: 4, hdrLen: 12, align: 8}
	layoutName = map[cmsgLayout]string{linuxCmsg: "Linux", bsdCmsg: "macOS", bsd64Cmsg: "FreeBSD/amd64"}
)

// cmsgIn lays out one control message in l with data bytes of payload,
// padded to the alignment unless unpadded.
func cmsgIn(l cmsgLayout, level, typ int32, data int, unpadded bool) []byte {
	n := l.hdrLen + data
	size := (n + l.align - 1) &^ (l.align - 1)
	if unpadded {
		size = n
	}
	b := make([]byte, size)
	if l.lenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(n))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
	binary.NativeEndian.PutUint32(b[l.lenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[l.lenSize+4:], uint32(typ))
	return b
}

func withCmsgLen(l cmsgLayout, b []byte, n uint64) []byte {
	b = append([]byte(nil), b...)
	if l.lenSize == 8 {
		binary.NativeEndian.PutUint64(b, n)
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
	return b
}

func TestContractC10CheckOOB(t *testing.T) {
	for l, name := range layoutName {
		one := cmsgIn(l, 0, 1, 1, false)
		two := cmsgIn(l, 41, 67, 4, false)
		tests := []struct {
			name string
			oob  []byte
			want error
		}{
			{"no control data is well formed", nil, nil},
			{"one padded message is well formed", one, nil},
			{"a last message without its padding is well formed", cmsgIn(l, 0, 1, 1, true), nil},
			{"two messages are well formed", append(one, two...), nil},
			{"a header without data is well formed", cmsgIn(l, 0, 1, 0, false), nil},
			{"one byte is shorter than a header", []byte{1}, errOOBShort},
			{"a header less one byte is shorter than a header", make([]byte, l.hdrLen-1), errOOBShort},
			{"one byte after a message is left over", append(one, 0), errOOBLeftover},
			{"a header less one byte after a message is left over", append(one, make([]byte, l.hdrLen-1)...), errOOBLeftover},
			{"a cmsg_len of 0 is refused", withCmsgLen(l, one, 0), errOOBLen},
			{"a cmsg_len shorter than the header is refused", withCmsgLen(l, one, uint64(l.hdrLen-1)), errOOBLen},
			{"a cmsg_len past the end is refused", withCmsgLen(l, one, uint64(len(one)+1)), errOOBLen},
			{"a huge cmsg_len is refused", withCmsgLen(l, one, 1<<31+5), errOOBLen},
			{"a bad second message is refused", append(append([]byte(nil), one...), withCmsgLen(l, two, 3)...), errOOBLen},
		}
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				err := checkOOB(tt.oob, l)
				if err != tt.want {
					t.Fatalf("checkOOB(% x) = %v, want %v", tt.oob, err, tt.want)
				}
				if err != nil && !errors.Is(err, syscall.EINVAL) {
					t.Errorf("checkOOB error %v does not unwrap to EINVAL", err)
				}
				m := Message{OOB: tt.oob}
				if got := checkMsg(&m, l); got != err {
					t.Errorf("checkMsg = %v, want %v", got, err)
				}
			})
		}
	}
}

func TestCheckMsgBufferLimit(t *testing.T) {
	slab := make([]byte, 4*maxIovecs)
	bufs := func(n int, adjacent, empty bool) [][]byte {
		var b [][]byte
		for i := range n {
			switch {
			case empty:
				b = append(b, nil)
			case adjacent:
				b = append(b, slab[i:i+1])
			default:
				b = append(b, slab[2*i:2*i+1])
			}
		}
		return b
	}
	for _, n := range []int{maxIovecs, maxIovecs + 1, 5000} {
		for _, kind := range []struct {
			name            string
			adjacent, empty bool
		}{{"scattered", false, false}, {"adjacent", true, false}, {"empty", false, true}} {
			if n > maxIovecs+1 && !kind.empty {
				continue
			}
			t.Run(fmt.Sprintf("%d %s buffers", n, kind.name), func(t *testing.T) {
				m := Message{Buffers: bufs(n, kind.adjacent, kind.empty)}
				err := checkMsg(&m, linuxCmsg)
				if n <= maxIovecs && err != nil {
					t.Fatalf("checkMsg = %v, want nil", err)
				}
				if n > maxIovecs && !errors.Is(err, syscall.EMSGSIZE) {
					t.Fatalf("checkMsg = %v, want EMSGSIZE", err)
				}
			})
		}
	}
}

// fakeZones is a system's interfaces for a zoneTable, counting lookups.
type fakeZones struct {
	ifs     map[uint32]string
	lookups int
}

func (f *fakeZones) name(index uint32) (string, bool) {
	f.lookups++
	n, ok := f.ifs[index]
	return n, ok
}

func (f *fakeZones) is(index uint32, name string) (bool, bool) {
	f.lookups++
	n, ok := f.ifs[index]
	return n == name, ok
}

func (f *fakeZones) index(name string) (uint32, bool) {
	f.lookups++
	for i, n := range f.ifs {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// lockedZones is a system whose interfaces change while a test runs.
type lockedZones struct {
	mu sync.Mutex
	f  fakeZones
}

func (l *lockedZones) name(index uint32) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.name(index)
}

func (l *lockedZones) is(index uint32, name string) (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.is(index, name)
}

func (l *lockedZones) index(name string) (uint32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.index(name)
}

// TestContractC12ZoneTableConcurrent has readers, writers and renames
// use one zone table at once (run it with -race): every answer is a name
// or index the interface had at some point.
func TestContractC12ZoneTableConcurrent(t *testing.T) {
	sys := &lockedZones{f: fakeZones{ifs: map[uint32]string{2: "eth0-0", 3: "wlan0"}}}
	var z zoneTable
	z.init(sys)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	valid := func(name string) bool { return name == "wlan0" || len(name) > 5 && name[:5] == "eth0-" }
	errs := make(chan error, 8)
	for range 2 {
		wg.Add(2)
		go func() { // a reader
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				z.tick()
				if n := z.name(2); !valid(n) {
					errs <- fmt.Errorf("name(2) = %q", n)
					return
				}
				z.name(3)
			}
		}()
		go func() { // a writer
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				z.tick()
				if id, ok := z.index("wlan0"); !ok || id != 3 {
					errs <- fmt.Errorf("index(wlan0) = %d, %v", id, ok)
					return
				}
				z.index("eth0-0")
				z.failed("eth0-0")
			}
		}()
	}
	for i := 1; i <= 200; i++ {
		sys.mu.Lock()
		sys.f.ifs[2] = fmt.Sprintf("eth0-%d", i)
		sys.mu.Unlock()
		z.next.Store(0)
		time.Sleep(50 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := z.snap.Load(); len(s.old) > zoneOldSlots || len(s.cur) > zoneSlots {
		t.Errorf("the table grew past its bounds: %d interfaces, %d old names", len(s.cur), len(s.old))
	}
}

// racyZones is a system where interface 5 is renamed between two
// questions: its index answers to index5, its name is name5.
type racyZones struct {
	*fakeZones
	index5, name5 string
}

func (r *racyZones) name(index uint32) (string, bool) {
	if index == 5 {
		return r.name5, true
	}
	return r.fakeZones.name(index)
}

func (r *racyZones) is(index uint32, name string) (bool, bool) {
	if index == 5 {
		return name == r.name5, true
	}
	return r.fakeZones.is(index, name)
}

func (r *racyZones) index(name string) (uint32, bool) {
	if name == r.index5 {
		return 5, true
	}
	return r.fakeZones.index(name)
}

func zoned(zone string) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(zone), 443)
}

// TestContractC8ZoneTable checks the zone table's logic against a fake
// system: names and indexes are looked up once, renames are seen at the
// next look (at most zoneRecheck apart), old names keep reaching their
// interface until another takes them, and the table stays bounded.
// TestContractC8ZoneNamesSurviveRenames checks it on the kernel.
func TestContractC8ZoneTable(t *testing.T) {
	f := &fakeZones{ifs: map[uint32]string{2: "eth0", 3: "wlan0"}}
	var z zoneTable
	z.init(f)
	// wantLookups is the count of lookups after the call; -1: any.
	dest := func(zone string, wantID uint32, wantErr bool, wantLookups int) {
		t.Helper()
		_, id, err := checkDest(zoned(zone), false, false, &z)
		if (err != nil) != wantErr || id != wantID || (wantLookups >= 0 && f.lookups != wantLookups) {
			t.Fatalf("checkDest(%%%s) = %d, %v after %d lookups; want %d, error %v, after %d", zone, id, err, f.lookups, wantID, wantErr, wantLookups)
		}
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("checkDest error %v does not unwrap to EINVAL", err)
		}
	}
	source := func(id uint32, want string, wantLookups int) {
		t.Helper()
		if got := z.name(id); got != want || (wantLookups >= 0 && f.lookups != wantLookups) {
			t.Fatalf("name(%d) = %q after %d lookups; want %q after %d", id, got, f.lookups, want, wantLookups)
		}
	}
	look := func() { // as if zoneRecheck had passed
		t.Helper()
		z.next.Store(0)
		z.tick()
	}
	z.tick() // nothing met yet: nothing to look at
	source(2, "eth0", 1)
	source(2, "eth0", 1) // a hit costs no lookup
	dest("eth0", 2, false, 1)
	dest("wlan0", 3, false, 2)
	dest("7", 7, false, 2)     // numeric zones are never looked up
	source(9, "9", 3)          // no such interface: the number, as the net package says
	dest("nope", 0, true, 4)   // an unknown name is an error...
	dest("nope", 0, true, 5)   // ...and not cached
	f.ifs[10] = "nope"         // created since
	dest("nope", 10, false, 6) // is found
	z.tick()                   // the first look
	n := f.lookups
	z.tick() // within zoneRecheck of it: none
	if f.lookups != n {
		t.Fatalf("tick within zoneRecheck made %d lookups", f.lookups-n)
	}

	// eth0 is renamed lan0: the new name at the next look, and the old
	// one still reaches it.
	f.ifs[2] = "lan0"
	source(2, "eth0", n)
	look()
	source(2, "lan0", f.lookups)
	n = f.lookups
	dest("lan0", 2, false, n)
	dest("eth0", 2, false, n) // handed out before the rename
	// ... until another interface takes the name.
	f.ifs[3] = "eth0"
	look()
	dest("eth0", 3, false, f.lookups)
	source(3, "eth0", f.lookups)
	dest("wlan0", 3, false, f.lookups) // 3's old name, taken by no one, is 3's...
	f.ifs[11] = "wlan0"
	look() // ...until the next look finds it taken
	dest("wlan0", 11, false, f.lookups+1)

	// A rename met through a lookup before the next look: at once.
	f.ifs[2] = "eth2"
	dest("eth2", 2, false, -1) // the lookup, then a look at all
	if i, _ := z.index("lan0"); i != 2 {
		t.Fatalf("the old name lan0 = %d, want 2", i)
	}
	source(2, "eth2", f.lookups)

	// A rename racing the lookup (the index of a name, then another name
	// for that index): the lookup's answer stands, and the table holds
	// what the system says last.
	f.ifs[5] = "five"
	source(5, "five", -1)
	z.look = &racyZones{fakeZones: f, index5: "racer", name5: "racer2"}
	if id, ok := z.index("racer"); !ok || id != 5 {
		t.Fatalf("index(racer) during a rename = %d, %v; want 5", id, ok)
	}
	if got := z.name(5); got != "racer2" {
		t.Fatalf("name(5) after the racing rename = %q, want racer2", got)
	}
	z.look = f
	delete(f.ifs, 5)
	look()

	// An interface re-created with another index: a failed send makes
	// the next call look.
	delete(f.ifs, 2)
	f.ifs[12] = "eth2"
	dest("eth2", 2, false, f.lookups)
	z.failed("")
	z.tick()
	dest("eth2", 2, false, f.lookups) // a failure without a zone changes nothing
	z.failed("eth2")
	z.tick()
	dest("eth2", 12, false, f.lookups+1)
	dest("lan0", 0, true, f.lookups+1) // gone with its interface

	// Bounded: past zoneSlots interfaces, old ones are replaced and looked
	// up again; past zoneOldSlots old names, the oldest go.
	for i := range uint32(3 * zoneSlots) {
		f.ifs[100+i] = fmt.Sprintf("if%d", i)
		source(100+i, f.ifs[100+i], f.lookups+1)
	}
	if s := z.snap.Load(); len(s.cur) != zoneSlots {
		t.Fatalf("the table holds %d interfaces, want the bound %d", len(s.cur), zoneSlots)
	}
	for i := range uint32(2 * zoneOldSlots) {
		f.ifs[100+3*zoneSlots-1] = fmt.Sprintf("renamed%d", i)
		look()
	}
	if s := z.snap.Load(); len(s.old) != zoneOldSlots {
		t.Fatalf("the table holds %d old names, want the bound %d", len(s.old), zoneOldSlots)
	}
	if i, ok := z.index(fmt.Sprintf("renamed%d", 2*zoneOldSlots-2)); !ok || i != 100+3*zoneSlots-1 {
		t.Fatalf("the newest old name = %d, %v", i, ok)
	}
}

// TestContractC14NoRunsWhereRecvErr checks the planner: with IP_RECVERR
// on, no runs to IPv4 destinations (IPv4-mapped ones of a dual-stack
// socket included); with IPV6_RECVERR on, none to IPv6 ones; the other
// family keeps its runs.
func TestContractC14NoRunsWhereRecvErr(t *testing.T) {
	a4 := netip.MustParseAddrPort("192.0.2.1:443")
	m4 := netip.AddrPortFrom(netip.AddrFrom16(a4.Addr().As16()), 443)
	a6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	cases := []struct {
		name    string
		sock4   bool
		recvErr uint32
		dst     netip.AddrPort
		want    int
	}{
		{"udp4, IP_RECVERR", true, recvErr4, a4, 1},
		{"udp4, neither", true, 0, a4, 3},
		{"udp6, IP_RECVERR, IPv4-mapped", false, recvErr4, m4, 1},
		{"udp6, IP_RECVERR, IPv6", false, recvErr4, a6, 3},
		{"udp6, IPV6_RECVERR, IPv6", false, recvErr6, a6, 1},
		{"udp6, IPV6_RECVERR, IPv4-mapped", false, recvErr6, m4, 3},
	}
	for _, tc := range cases {
		p := planner{gso: true, sock4: tc.sock4, maxSegs: maxGSOSegments, recvErr: tc.recvErr}
		if n, _ := p.runLen(msgsOf(tc.dst, nil, 1200, 1200, 1200), 0); n != tc.want {
			t.Errorf("%s: runLen to %v = %d, want %d", tc.name, tc.dst, n, tc.want)
		}
	}
}

func TestContractC14GSODests(t *testing.T) {
	var d gsoDests
	a := netip.MustParseAddrPort("192.0.2.1:443")
	b := netip.MustParseAddrPort("192.0.2.2:443")
	for i := range maxDestGSOFailures - 1 {
		d.failed(a)
		if d.off(a) {
			t.Fatalf("off after %d failures, want on until %d", i+1, maxDestGSOFailures)
		}
	}
	d.accepted(a)
	for range maxDestGSOFailures - 1 {
		d.failed(a)
	}
	if d.off(a) {
		t.Fatal("an accepted GSO send did not restart the count")
	}
	d.failed(a)
	if !d.off(a) || d.off(b) {
		t.Fatalf("after %d failures in a row: off(a) %v, off(b) %v; want true, false", maxDestGSOFailures, d.off(a), d.off(b))
	}

	// The planner gives a no runs, b keeps them.
	p := planner{gso: true, sock4: true, maxSegs: maxGSOSegments, dests: &d}
	msgs := append(msgsOf(a, nil, 1200, 1200, 1200), msgsOf(b, nil, 1200, 1200, 1200)...)
	if n, _ := p.runLen(msgs, 0); n != 1 {
		t.Errorf("runLen to the turned-off destination = %d, want 1", n)
	}
	if n, _ := p.runLen(msgs, 3); n != 3 {
		t.Errorf("runLen to another destination = %d, want 3", n)
	}

	// The table is bounded: failing destinations beyond gsoDestSlots replace
	// earlier ones, which get GSO runs again.
	for i := range 2 * gsoDestSlots {
		x := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 443)
		for range maxDestGSOFailures {
			d.failed(x)
		}
		if !d.off(x) {
			t.Fatalf("destination %v is not off after %d failures", x, maxDestGSOFailures)
		}
	}
	if d.n != gsoDestSlots {
		t.Fatalf("the table holds %d destinations, want the bound %d", d.n, gsoDestSlots)
	}
	if d.off(a) {
		t.Error("the first destination was never replaced")
	}
	var nilTable *gsoDests
	if nilTable.off(a) {
		t.Error("a nil table turns destinations off")
	}
}

// TestContractC14GSODestsRetry checks that a destination turned off for
// GSO is offered it again, once, after exactly gsoRetryDatagrams datagrams
// sent to it plain or at the first call that begins gsoRetryAfter after it
// went off, and that one more refusal turns it off again while an accepted
// send clears it.
func TestContractC14GSODestsRetry(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:443")
	b := netip.MustParseAddrPort("192.0.2.2:443")
	turnOff := func(d *gsoDests) {
		for range maxDestGSOFailures {
			d.failed(a)
		}
	}

	// By count: off until gsoRetryDatagrams datagrams went out plain,
	// however the calls were cut; datagrams to others do not count.
	var d gsoDests
	turnOff(&d)
	for i := range gsoRetryDatagrams {
		d.begin()
		if !d.off(a) {
			t.Fatalf("GSO offered again after %d plain datagrams, want %d", i, gsoRetryDatagrams)
		}
		d.sentPlain(a)
		d.sentPlain(b)
	}
	if d.off(a) {
		t.Fatalf("no GSO offered after %d plain datagrams", gsoRetryDatagrams)
	}
	if d.off(a) {
		t.Fatal("the offer lasted one datagram: want it to stand until a GSO send is tried")
	}
	d.failed(a) // refused again: off at once, for another round
	for i := range gsoRetryDatagrams {
		if !d.off(a) {
			t.Fatalf("after a refused retry, GSO offered again after %d plain datagrams, want %d", i, gsoRetryDatagrams)
		}
		d.sentPlain(a)
	}
	if d.off(a) {
		t.Fatal("no second offer")
	}
	d.accepted(a)
	if d.off(a) || d.n != 0 || d.nOff != 0 {
		t.Fatalf("an accepted retry left the destination in the table (n = %d, off %d)", d.n, d.nOff)
	}

	// By time: the first call that begins gsoRetryAfter after the
	// destination went off offers GSO at its first datagram, whatever
	// came before (here a quiet destination: no datagram at all).
	turnOff(&d)
	d.begin()
	if !d.off(a) {
		t.Fatal("GSO offered again at once")
	}
	d.e[d.find(a)].since = time.Now().Add(-gsoRetryAfter + time.Second)
	d.begin()
	if !d.off(a) {
		t.Fatalf("GSO offered again %v after the destination went off", gsoRetryAfter-time.Second)
	}
	d.e[d.find(a)].since = time.Now().Add(-gsoRetryAfter - 500*time.Millisecond)
	d.begin()
	if d.off(a) {
		t.Fatalf("no GSO offered at the first call %v after the destination went off", gsoRetryAfter+500*time.Millisecond)
	}
	turnOff(&d) // a new round starts its clock now
	for i := range 2 * gsoRetryDatagrams / 3 {
		d.begin()
		if !d.off(a) {
			t.Fatalf("GSO offered again at call %d of a round that started now", i)
		}
	}

	// The count of destinations that are off follows the table.
	var e gsoDests
	for i := range gsoDestSlots + 3 {
		x := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 443)
		for range maxDestGSOFailures {
			e.failed(x)
		}
	}
	if e.nOff != gsoDestSlots {
		t.Fatalf("%d destinations counted off in a table of %d", e.nOff, e.n)
	}
}

// TestMsgSlicesKeepsTheLargest checks WriteBuffersTo's free list: a slice
// given back is handed out again to a call it fits, each to one call only,
// and a full list keeps the four largest.
func TestMsgSlicesKeepsTheLargest(t *testing.T) {
	var f msgSlices
	a, b := f.get(10), f.get(10)
	if &a[0] == &b[0] {
		t.Fatal("two calls in flight got the same slice")
	}
	f.put(a)
	if c := f.get(64); &c[:1][0] != &a[:1][0] || len(c) != 64 {
		t.Fatalf("a slice with room was not reused (len %d)", len(c))
	}
	if c := f.get(100); cap(c) < 100 || len(c) != 100 {
		t.Fatalf("get(100) = len %d cap %d", len(c), cap(c))
	}
	for _, n := range []int{100, 200, 300, 400, 500} {
		f.put(make([]Message, 0, n))
	}
	var caps []int
	for i := range f.n {
		caps = append(caps, cap(f.free[i]))
	}
	slices.Sort(caps)
	if !slices.Equal(caps, []int{200, 300, 400, 500}) {
		t.Errorf("the full list holds slices of capacity %v, want the four largest [200 300 400 500]", caps)
	}
}
