package batchconn

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A zoneTable names IPv6 zones for a Conn, both ways: the scope id of a
// received datagram's source becomes the interface's name (as the net
// package names it: the number when there is no such interface), and a
// destination's zone name becomes the interface's index. Reads and writes
// share it, so a name a read handed out is one a write takes back.
//
// Interfaces get renamed (udev, container runtimes) while their index
// stays. The table looks again at the names it holds at most every
// zoneRecheck, once per read or write call at most, so a renamed interface
// is reported under its new name within a second (the net package's own
// cache takes up to a minute, or its next miss); and the names an interface
// had before are kept (up to zoneOldSlots of them) and still resolve to it,
// as long as no interface has taken them, so that an address the Conn
// handed out before a rename (a peer a long-running daemon remembers) still
// reaches its peer. A name no interface had while the Conn knew it is looked
// up afresh at every use, as the net package does.
//
// Lookups read an immutable snapshot, without a lock: a source or
// destination with a zone costs a scan of a short slice, no allocation and
// no system call. Only meeting an interface it does not hold, or a rename,
// makes a new snapshot. Both are rare, and bounded: a remote peer cannot
// choose the scope id of its datagrams (it is the local interface they
// came in on), and the table holds zoneSlots interfaces, replacing them in
// turn.
type zoneTable struct {
	look zoneLookup
	snap atomic.Pointer[zoneSnap] // nil until the first zone
	base time.Time                // the clock's zero for next
	next atomic.Int64             // when to look at the names again, in ns since base

	mu sync.Mutex // serialises changes of snap
	rr int        // the slot replaced next when cur is full
}

// A zoneSnap is the table at one moment.
type zoneSnap struct {
	cur []zoneName // the interfaces met, under their current names
	old []zoneName // names interfaces had before a rename
}

type zoneName struct {
	index uint32
	name  string
}

// A zoneLookup asks the system about interfaces: on Linux with ioctl(2) on
// the Conn's socket, elsewhere through the net package; tests fake it.
type zoneLookup interface {
	name(index uint32) (string, bool)             // the interface's name, if it exists
	is(index uint32, name string) (same, ok bool) // whether it is named name, without allocating
	index(name string) (uint32, bool)             // the index of the interface of that name
}

const (
	zoneSlots    = 64
	zoneOldSlots = 16
	zoneRecheck  = time.Second
)

func (z *zoneTable) init(look zoneLookup) {
	z.look = look
	z.base = time.Now()
}

// name returns the zone of a source whose scope id is id (not 0).
func (z *zoneTable) name(id uint32) string {
	if s := z.snap.Load(); s != nil {
		for i := range s.cur {
			if s.cur[i].index == id {
				return s.cur[i].name
			}
		}
	}
	return z.learnIndex(id)
}

// index returns the index of the interface a zone name stands for: the
// interface of that name, or the one that had it before a rename.
func (z *zoneTable) index(name string) (uint32, bool) {
	if s := z.snap.Load(); s != nil {
		for i := range s.cur {
			if s.cur[i].name == name {
				return s.cur[i].index, true
			}
		}
		for i := range s.old {
			if s.old[i].name == name {
				return s.old[i].index, true
			}
		}
	}
	return z.learnName(name)
}

// tick looks at the names again if zoneRecheck has passed since the last
// look. Reads and writes call it once per call; until the Conn meets a
// zone it costs an atomic load.
func (z *zoneTable) tick() {
	if z.snap.Load() == nil {
		return
	}
	if now := int64(time.Since(z.base)); now >= z.next.Load() {
		z.mu.Lock()
		if now >= z.next.Load() {
			z.recheck(now)
		}
		z.mu.Unlock()
	}
}

// failed notes that a send to a failed: if it named a zone, the interface
// may be gone or re-created, and the next call looks at the names again.
func (z *zoneTable) failed(zone string) {
	if zone != "" {
		z.next.Store(0)
	}
}

// recheck brings the names up to date with the system. The caller holds mu.
func (z *zoneTable) recheck(now int64) {
	z.next.Store(now + int64(zoneRecheck))
	s := z.snap.Load()
	var n *zoneSnap // the new snapshot, made at the first change
	change := func() {
		if n == nil {
			n = &zoneSnap{cur: append([]zoneName(nil), s.cur...), old: append([]zoneName(nil), s.old...)}
		}
	}
	for i := len(s.cur) - 1; i >= 0; i-- {
		e := s.cur[i]
		same, ok := z.look.is(e.index, e.name)
		if same {
			continue
		}
		change()
		if !ok {
			// Gone: its names go with it.
			n.cur = deleteAt(n.cur, i)
			n.old = deleteIndex(n.old, e.index)
			continue
		}
		name, ok := z.look.name(e.index)
		if !ok {
			name = strconv.FormatUint(uint64(e.index), 10)
		}
		n.cur[i].name = name
		if _, numeric := numericZone(e.name); !numeric {
			n.old = append(n.old, e)
			if len(n.old) > zoneOldSlots {
				n.old = n.old[len(n.old)-zoneOldSlots:]
			}
		}
	}
	cur, old := s.cur, s.old
	if n != nil {
		cur, old = n.cur, n.old
	}
	// An old name that an interface has now is that interface's.
	for i := len(old) - 1; i >= 0; i-- {
		if z.named(cur, old[i].name) || z.taken(old[i]) {
			change()
			n.old = deleteAt(n.old, i)
			old = n.old
		}
	}
	if n != nil {
		z.snap.Store(n)
	}
}

// named reports whether an interface in cur has the name.
func (z *zoneTable) named(cur []zoneName, name string) bool {
	for i := range cur {
		if cur[i].name == name {
			return true
		}
	}
	return false
}

// taken reports whether the system has an interface named e.name.
func (z *zoneTable) taken(e zoneName) bool {
	_, ok := z.look.index(e.name)
	return ok
}

// learnIndex adds the interface index, met as a source's scope id.
func (z *zoneTable) learnIndex(id uint32) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	s := z.snap.Load()
	if s != nil {
		for i := range s.cur {
			if s.cur[i].index == id {
				return s.cur[i].name
			}
		}
	}
	name, ok := z.look.name(id)
	if !ok {
		name = strconv.FormatUint(uint64(id), 10)
	}
	z.add(s, zoneName{id, name})
	return name
}

// learnName adds the interface a destination's zone name names, if one does.
func (z *zoneTable) learnName(name string) (uint32, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	s := z.snap.Load()
	if s != nil {
		for i := range s.cur {
			if s.cur[i].name == name {
				return s.cur[i].index, true
			}
		}
	}
	id, ok := z.look.index(name)
	if !ok {
		return 0, false
	}
	z.add(s, zoneName{id, name})
	return id, true
}

// add puts e into a new snapshot. An interface the table holds under
// another name, or a name it holds for another interface, means renames
// it has not seen yet: it looks at all names at once. The caller holds mu.
func (z *zoneTable) add(s *zoneSnap, e zoneName) {
	n := &zoneSnap{}
	if s != nil {
		n.cur, n.old = append(make([]zoneName, 0, len(s.cur)+1), s.cur...), s.old
	}
	stale := false
	for i := range n.cur {
		if n.cur[i].index == e.index || n.cur[i].name == e.name {
			stale = true
		}
	}
	if !stale {
		if len(n.cur) < zoneSlots {
			n.cur = append(n.cur, e)
		} else {
			n.cur[z.rr] = e
			z.rr = (z.rr + 1) % zoneSlots
		}
	}
	z.snap.Store(n)
	if !stale {
		return
	}
	z.recheck(int64(time.Since(z.base)))
	s = z.snap.Load()
	for i := range s.cur {
		if s.cur[i].index == e.index || s.cur[i].name == e.name {
			return // held now; or renamed again meanwhile, and the next lookup learns it
		}
	}
	z.add(s, e)
}

func deleteAt(s []zoneName, i int) []zoneName {
	return append(s[:i:i], s[i+1:]...)
}

// deleteIndex returns s without the names of interface index.
func deleteIndex(s []zoneName, index uint32) []zoneName {
	out := s[:0:0]
	for _, e := range s {
		if e.index != index {
			out = append(out, e)
		}
	}
	return out
}
