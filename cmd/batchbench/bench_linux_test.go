package main

import (
	"testing"
	"time"
)

// lazySender allocates setupObjects objects on its first call only, as a
// fresh socket's pools and headers do, and nothing afterwards.
type lazySender struct {
	calls int
	keep  []*[64]byte
}

const setupObjects = 1000

func (s *lazySender) sendBatch() error {
	if s.calls == 0 {
		for range setupObjects {
			s.keep = append(s.keep, new([64]byte))
		}
	}
	s.calls++
	return nil
}

func (s *lazySender) counters() (uint64, uint64) { return uint64(s.calls), 0 }
func (s *lazySender) close() error               { return nil }

func TestAllocsPerBatchLeaveOutTheFirstCallsWarmUp(t *testing.T) {
	s := &lazySender{}
	smp, err := sendFor(s, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if smp.Mallocs >= setupObjects {
		t.Errorf("measured loop counted %d allocations: the first call's %d set-up allocations are in allocs/batch", smp.Mallocs, setupObjects)
	}
	if smp.SetupMallocs < setupObjects {
		t.Errorf("SetupMallocs = %d, want the first call's %d", smp.SetupMallocs, setupObjects)
	}
	if smp.Batches != uint64(s.calls-1) {
		t.Errorf("Batches = %d after %d calls: the warm-up call must not count as a measured batch", smp.Batches, s.calls)
	}
	if smp.Syscalls != smp.Batches {
		t.Errorf("Syscalls = %d for %d measured batches: the warm-up call's are counted", smp.Syscalls, smp.Batches)
	}
}
