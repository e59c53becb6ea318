package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// recordingWriter records each write's packet number and destination, and
// does the work of each write on a goroutine of its own, locked to another
// thread, as a write queue does: the writer only waits.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
	work   chan chan time.Duration
	busy   time.Duration // CPU time the worker thread spent, by its own clock
}

func newRecordingWriter() *recordingWriter {
	w := &recordingWriter{work: make(chan chan time.Duration)}
	go func() {
		runtime.LockOSThread()
		for done := range w.work {
			t0 := bench.ThreadCPU()
			for start := time.Now(); time.Since(start) < 200*time.Microsecond; {
			}
			done <- bench.ThreadCPU() - t0
		}
	}()
	return w
}

func (w *recordingWriter) WriteTo(p []byte, a net.Addr) (int, error) {
	done := make(chan time.Duration)
	w.work <- done
	cpu := <-done
	w.mu.Lock()
	w.writes = append(w.writes, fmt.Sprintf("%d>%v", p[1], a.(*net.UDPAddr).Port))
	w.busy += cpu
	w.mu.Unlock()
	return len(p), nil
}

// countingWriter records the destinations written to, at once.
type countingWriter struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (w *countingWriter) WriteTo(p []byte, a net.Addr) (int, error) {
	w.mu.Lock()
	w.seen[fmt.Sprintf("%d>%v", p[1], a.(*net.UDPAddr).Port)] = true
	w.mu.Unlock()
	return len(p), nil
}

// Each writer writes bursts packet-major, packet k to every destination
// then packet k+1, whole bursts only; and the CPU time counts every thread
// of the process, not only the writers': here the work is all on another.
func TestWritersWriteBurstsPacketMajorAndCountEveryThreadsCPU(t *testing.T) {
	w := newRecordingWriter()
	defer close(w.work)
	var dsts []net.Addr
	for port := range 6 {
		dsts = append(dsts, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000 + port})
	}
	packets := [][]byte{{0, 0}, {0, 1}}
	s, err := measureWriters(context.Background(), &writersTarget{w: w}, writersCell{writers: 1, dests: 3}, dsts, packets, 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	burst := []string{"0>1000", "0>1001", "0>1002", "1>1000", "1>1001", "1>1002"}
	if len(w.writes) == 0 || len(w.writes)%len(burst) != 0 || !slices.Equal(w.writes[:len(burst)], burst) || !slices.Equal(w.writes[len(w.writes)-len(burst):], burst) {
		t.Errorf("writes %v, want whole bursts of %v", w.writes, burst)
	}
	if s.datagrams != uint64(len(w.writes)) {
		t.Errorf("%d datagrams counted, %d written", s.datagrams, len(w.writes))
	}
	if s.cpu < w.busy*9/10 {
		t.Errorf("sample's CPU %v, less than the %v the worker thread spent: the clock misses other threads", s.cpu, w.busy)
	}

	// With destinations of its own, writer i writes to dsts[3i:3i+3]; each
	// writes at least one burst, however late it starts.
	w2 := &countingWriter{seen: map[string]bool{}}
	if _, err := measureWriters(context.Background(), &writersTarget{w: w2}, writersCell{writers: 2, perG: true, dests: 3}, dsts, packets[:1], time.Millisecond); err != nil {
		t.Fatal(err)
	}
	seen := w2.seen
	if len(seen) != 6 {
		t.Errorf("two writers with 3 destinations each wrote to %v, want 6 destinations", seen)
	}
}
