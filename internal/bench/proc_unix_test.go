//go:build unix

package bench

import (
	"sync/atomic"
	"testing"
	"time"
)

// ProcessCPU counts every thread's work: a goroutine spinning while the
// test's own sleeps shows up in it.
func TestProcessCPUCountsEveryThreadsWork(t *testing.T) {
	cpu0, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	defer stop.Store(true)
	go func() {
		for !stop.Load() {
		}
	}()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		cpu, err := ProcessCPU()
		if err != nil {
			t.Fatal(err)
		}
		if cpu-cpu0 >= 20*time.Millisecond {
			return
		}
	}
	t.Error("ProcessCPU did not grow by 20ms in 10s of a goroutine spinning")
}
