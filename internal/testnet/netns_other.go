//go:build !linux

package testnet

import (
	"errors"
	"runtime"
)

// inNetns fails: network namespaces exist only on Linux. (NewPair skips the
// test before any Host exists, so it is not reached in practice.)
func inNetns(nsPath string, fn func() error) error {
	return errors.New("testnet: network namespaces are not supported on " + runtime.GOOS)
}
