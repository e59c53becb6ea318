//go:build !linux

package quicbatch

import "testing"

// kernelGSO reports whether quic-go can use UDP GSO: only on Linux.
func kernelGSO(testing.TB) bool { return false }
