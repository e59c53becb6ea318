//go:build unix

package bench

import (
	"time"

	"golang.org/x/sys/unix"
)

// ProcessCPU is the whole process's CPU time so far, user plus system,
// every thread's, from getrusage(RUSAGE_SELF). On systems other than Unix
// it is an error.
func ProcessCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
