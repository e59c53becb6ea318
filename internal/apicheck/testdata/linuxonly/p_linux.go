// Package linuxonly has files for Linux only, as a Linux-only package of a
// future module might: TestLoadLeavesOutAPackageAbsentOnAPort walks it.
package linuxonly

// F exists on Linux only.
func F() {}
