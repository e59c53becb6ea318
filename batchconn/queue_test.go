package batchconn

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// FuzzQueueRing drives the write queue's arena (reserve, put, free from
// the head) with records of random sizes against a slice of the records in
// use: records never overlap, stay inside the arena, come back in the
// order written with their bytes, and a record that fits in the free space
// as a whole (before the end, or at the front) is always given room.
func FuzzQueueRing(f *testing.F) {
	f.Add(uint64(1), 4096)
	f.Add(uint64(2), 1000)
	f.Add(uint64(3), 65536)
	f.Fuzz(func(t *testing.T, seed uint64, size int) {
		size = 64 + abs(size)%(1<<17)
		rng := rand.New(rand.NewPCG(seed, 7))
		q := &writeQueue{arena: make([]byte, recAlignUp(size)), wrap: -1}
		var live []ringRecord
		id := 0
		for range 2000 {
			if rng.IntN(3) > 0 {
				n, oobn := rng.IntN(size/2+1), rng.IntN(64)
				rsize := recordSize(n, oobn)
				off := q.reserve(rsize)
				if off < 0 {
					if fitsSomewhere(q, rsize, live) {
						t.Fatalf("no room for %d bytes with head %d tail %d wrap %d", rsize, q.head, q.tail, q.wrap)
					}
					continue
				}
				if off+rsize > len(q.arena) {
					t.Fatalf("record at %d of %d bytes passes the arena's end %d", off, rsize, len(q.arena))
				}
				for _, r := range live {
					if off < r.off+r.size && r.off < off+rsize {
						t.Fatalf("record at %d (%d bytes) overlaps record %d at %d (%d bytes)", off, rsize, r.id, r.off, r.size)
					}
				}
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(id + i)
				}
				w := &queued{b: b, oob: make([]byte, oobn), dst: netip.MustParseAddrPort("127.0.0.1:9")}
				q.put(off, rsize, w, w.oob, 0)
				live = append(live, ringRecord{off, rsize, id})
				id++
				continue
			}
			// Free the oldest records, as a send does.
			k := rng.IntN(len(live) + 1)
			for off, i := q.head, 0; i < k; i++ {
				if off != live[i].off {
					t.Fatalf("record %d found at %d, written at %d", live[i].id, off, live[i].off)
				}
				q.arena[off+recFlags] |= recDone
				off = q.next(off)
			}
			q.release()
			live = live[k:]
			if q.records != len(live) {
				t.Fatalf("%d records in use, want %d", q.records, len(live))
			}
		}
	})
}

// A ringRecord is where FuzzQueueRing wrote record id, and its size.
type ringRecord struct{ off, size, id int }

// fitsSomewhere reports whether a record of size bytes fits in the free
// space as the ring sees it: after the last record up to the end, or
// before the first one (when the records do not wrap), or between the
// last and the first (when they do).
func fitsSomewhere(q *writeQueue, size int, live []ringRecord) bool {
	if len(live) == 0 {
		return size <= len(q.arena)
	}
	first, last := live[0], live[len(live)-1]
	end := last.off + last.size
	if end > first.off { // not wrapped
		return end+size <= len(q.arena) || size <= first.off
	}
	return end+size <= first.off
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
