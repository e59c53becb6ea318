//go:build !linux

package bench

import (
	"io"
	"runtime"
	"time"
)

// ThreadCPU is the calling thread's CPU time; Linux only, 0 here.
func ThreadCPU() time.Duration { return 0 }

func kernel() string { return runtime.GOOS }

func isTerminal(io.Writer) bool { return false }
