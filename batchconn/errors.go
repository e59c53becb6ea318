package batchconn

import "os"

// wrapSyscall wraps a non-nil err from a system call, once, as the os and
// net packages do.
func wrapSyscall(name string, err error) error {
	if err == nil {
		return nil
	}
	return os.NewSyscallError(name, err)
}
