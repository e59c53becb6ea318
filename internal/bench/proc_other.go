//go:build !unix

package bench

import (
	"errors"
	"time"
)

// ProcessCPU is the process's CPU time; Unix only, an error here.
func ProcessCPU() (time.Duration, error) {
	return 0, errors.New("process CPU time is measured only on Unix systems")
}
