package bench

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// SignalContext returns a context that is cancelled by the first SIGINT,
// SIGTERM or SIGHUP, with the signal as its cause, so that [Run] stops after
// the sample under way and the command's deferred clean-up (network
// namespaces, child processes) runs. A second signal, arriving when the
// first is being handled, ends the process as it would without this. stop
// releases the signals.
func SignalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	c := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(c, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case s := <-c:
			signal.Stop(c)
			cancel(fmt.Errorf("%v", s))
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(c)
			close(done)
			cancel(context.Canceled)
		})
	}
}
