//go:build unix && asan

package gonettest

func init() { asanEnabled = true }
