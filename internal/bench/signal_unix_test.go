//go:build unix

package bench

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A signal to the process ends the run after the sample under way, and Run
// says it was interrupted and by what; the stop function releases the
// signal, and a second call does no harm.
func TestASignalEndsTheRun(t *testing.T) {
	ctx, stop := SignalContext(context.Background())
	defer stop()
	taken := 0
	m := Mode[int]{Name: "m", Sample: func(ctx context.Context, round int) (int, error) {
		taken++
		if round == 2 {
			syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
			select { // a sample that waits on ctx, as a child process does
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("the signal did not cancel the context")
			}
		}
		return round, nil
	}}
	res, err := Run(ctx, Plan[int]{Rounds: 100, Groups: []Group[int]{{Modes: []Mode[int]{m}}}})
	if err == nil || !strings.HasPrefix(err.Error(), "interrupted: hangup") {
		t.Errorf("error %v, want interrupted: hangup", err)
	}
	if taken != 2 || len(res.Get("", "m").Samples) != 1 {
		t.Errorf("%d samples taken, %d kept, want 2 and 1: the run goes on after the signal", taken, len(res.Get("", "m").Samples))
	}
	stop()
	stop()
}
