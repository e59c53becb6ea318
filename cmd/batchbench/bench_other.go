//go:build !linux

package main

import (
	"errors"
	"io"
	"runtime"
)

func run(cfg config, stdout, stderr io.Writer) error {
	return errors.New("batchbench measures Linux system calls (sendmmsg, UDP GSO, recvmmsg) and runs on Linux only, not " + runtime.GOOS)
}
