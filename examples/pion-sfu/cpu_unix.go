//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPU is this process's user plus system CPU time, all threads
// (getrusage RUSAGE_SELF).
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
