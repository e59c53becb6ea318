package bench

import (
	"os"
	"runtime"
	"time"
)

// The clocks a benchmark measures CPU time with: the measuring thread's
// ([ThreadCPU]), the whole process's ([ProcessCPU]), and a finished child
// process's ([ChildCPU]). Each is user plus system time.

// ChildCPU is the user plus system CPU time of a child process that has
// exited, as the kernel accounted it at its wait.
func ChildCPU(p *os.ProcessState) time.Duration {
	return p.UserTime() + p.SystemTime()
}

// Locked calls f on a new goroutine locked to its own OS thread and returns
// what f returned: the thread runs f alone, so [ThreadCPU] read in f is
// f's CPU time.
func Locked[T any](f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		v, err := f()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}
