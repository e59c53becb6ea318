//go:build !linux

package main

import (
	"errors"
	"io"
	"runtime"
)

func runWriters(cfg writersConfig, stdout, stderr io.Writer) error {
	return errors.New("batchbench writers compares system calls per datagram on Linux and runs on Linux only, not " + runtime.GOOS)
}
