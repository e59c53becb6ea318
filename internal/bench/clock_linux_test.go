package bench

import (
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Locked runs f on a thread of its own, which stays f's while it runs,
// and returns what f returned.
func TestLockedRunsOnOneThread(t *testing.T) {
	want := errors.New("from f")
	tids, err := Locked(func() ([]int, error) {
		var tids []int
		for range 100 {
			tids = append(tids, unix.Gettid())
			runtime.Gosched()
		}
		return tids, want
	})
	if err != want || len(tids) != 100 {
		t.Fatalf("Locked returned %d values, %v; want f's", len(tids), err)
	}
	for _, tid := range tids {
		if tid != tids[0] {
			t.Fatalf("f ran on threads %d and %d: not locked", tids[0], tid)
		}
	}
}
