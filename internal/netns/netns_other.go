//go:build !linux

package netns

import (
	"errors"
	"runtime"
)

// inNetns fails: network namespaces exist only on Linux (and New fails
// before any Host exists, without ip(8)).
func inNetns(nsPath string, fn func() error) error {
	return errors.New("netns: network namespaces are not supported on " + runtime.GOOS)
}
