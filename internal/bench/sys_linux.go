package bench

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ThreadCPU is the calling thread's CPU time from CLOCK_THREAD_CPUTIME_ID:
// the scheduler's nanoseconds. Call it on a thread locked with
// runtime.LockOSThread (see [Locked]), before and after the measured work. getrusage
// (RUSAGE_THREAD) counts whole scheduler ticks on kernels with tick-based
// accounting (4 ms at HZ=250), a third of a 12 ms drain: its medians came
// out in steps of about 180 ns per datagram. On other systems, 0.
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return "Linux " + unix.ByteSliceToString(u.Release[:])
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
