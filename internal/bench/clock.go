package bench

import (
	"os"
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
