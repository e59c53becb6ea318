//go:build unix && noopt

package gonettest

func init() { optimizationOff = true }
