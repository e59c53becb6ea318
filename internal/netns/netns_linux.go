//go:build linux

package netns

import (
	"errors"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on a new goroutine, locked to an OS thread that has
// joined the network namespace at nsPath, and returns fn's error.
//
// A new goroutine rather than the caller's: if the thread cannot return to
// its original namespace it must stay locked until its goroutine exits, at
// which point the runtime ends the thread instead of reusing it.
func inNetns(nsPath string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		err := ErrGoexit
		defer func() { done <- err }()
		err = runInNetns(nsPath, fn)
	}()
	return <-done
}

// runInNetns is the body of inNetns's goroutine.
func runInNetns(nsPath string, fn func() error) error {
	runtime.LockOSThread()
	// A namespace is entered per thread, so the thread's own namespace is
	// the one to return to (/proc/self would name the main thread's).
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread() // still in its original namespace
		return os.NewSyscallError("setns", err)
	}
	fnErr := fn() // on runtime.Goexit the thread stays locked and is ended
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the thread is in the wrong namespace for good.
		return errors.Join(fnErr, os.NewSyscallError("setns back", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}
