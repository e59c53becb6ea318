package batchconn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goroutineState returns the scheduler state ("select", "runnable", "IO
// wait", ...) of every goroutine whose stack holds fn.
func goroutineStates(fn string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var states []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte(fn)) {
			continue
		}
		// "goroutine 7 [select]:" or "goroutine 7 [select, 2 minutes]:"
		i, j := bytes.IndexByte(g, '['), bytes.IndexAny(g, ",]")
		if i >= 0 && j > i {
			states = append(states, string(g[i+1:j]))
		}
	}
	return states
}

// waitState waits until a goroutine whose stack holds fn is in state.
func waitState(t *testing.T, fn, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range goroutineStates(fn) {
			if s == state {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine in %s reached state %q: %v", fn, state, goroutineStates(fn))
}

func TestGateHandsOffInArrivalOrder(t *testing.T) {
	var g gate
	g.lock(context.Background(), nil)
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := g.lock(context.Background(), nil); err != nil {
				t.Error(err)
			}
			order <- i
			g.unlock()
		}()
		// Queue them one at a time, so the arrival order is known.
		for gateQueueLen(&g) < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	g.unlock()
	for want := range 3 {
		if got := <-order; got != want {
			t.Fatalf("waiter %d got the gate in turn %d", got, want)
		}
	}
	if !g.tryLock() {
		t.Fatal("the gate is not free after every waiter released it")
	}
}

func gateQueueLen(g *gate) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for w := g.head; w != nil; w = w.next {
		n++
	}
	return n
}

func TestGateLockEndsWithContextOrClosing(t *testing.T) {
	var g gate
	g.lock(context.Background(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	closing := make(chan struct{})
	errs := make(chan error, 2)
	go func() { errs <- g.lock(ctx, nil) }()
	go func() { errs <- g.lock(context.Background(), closing) }()
	for gateQueueLen(&g) < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(closing)
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("lock = %v, want context.Canceled or net.ErrClosed", err)
		}
	}
	if n := gateQueueLen(&g); n != 0 {
		t.Errorf("%d waiters still queued after their waits ended", n)
	}
	g.unlock()
	if !g.tryLock() {
		t.Fatal("the gate is not free after its waiters gave up")
	}
}

// TestContractC4NoBusyLoopBehindTheGate: a caller that must not wait
// for the socket, behind a holder that is not waiting for it, waits for the
// release parked on a channel (the Go scheduler's "select" state), never
// spinning ("runnable"/"running", as a loop of yields would be seen).
func TestContractC4NoBusyLoopBehindTheGate(t *testing.T) {
	var g gate
	g.lock(context.Background(), nil)
	done := make(chan error, 1)
	go func() { done <- g.lockNow(context.Background(), nil, nil) }()
	waitState(t, "batchconn.(*gate).lockNow", "select")
	for range 50 {
		for _, s := range goroutineStates("batchconn.(*gate).lockNow") {
			if s != "select" {
				t.Fatalf("a waiting lockNow is %q: it spins instead of parking", s)
			}
		}
		time.Sleep(time.Millisecond)
	}
	g.unlock()
	if err := <-done; err != nil {
		t.Fatalf("lockNow after the release: %v", err)
	}
	g.unlock()
}

func TestGateNonBlockingCallerWouldBlock(t *testing.T) {
	t.Run("behind a holder that parks", func(t *testing.T) {
		var g gate
		g.lock(context.Background(), nil)
		done := make(chan error, 1)
		go func() { done <- g.lockNow(context.Background(), nil, nil) }()
		waitState(t, "batchconn.(*gate).lockNow", "select")
		g.park()
		if err := <-done; !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("lockNow beside a parked holder = %v, want ErrWouldBlock", err)
		}
		// And one that arrives after the park does not wait at all.
		if err := g.lockNow(context.Background(), nil, nil); !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("lockNow beside a parked holder = %v, want ErrWouldBlock", err)
		}
	})
	t.Run("behind an opaque holder, the socket full", func(t *testing.T) {
		var g gate
		if !g.tryLockAs(gateOpaque) {
			t.Fatal("tryLockAs on a free gate failed")
		}
		full := func() bool { return false }
		if err := g.lockNow(context.Background(), nil, full); !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("lockNow = %v, want ErrWouldBlock", err)
		}
	})
	t.Run("behind an opaque holder, the socket with room", func(t *testing.T) {
		var g gate
		g.tryLockAs(gateOpaque)
		room := func() bool { return true }
		done := make(chan error, 1)
		go func() { done <- g.lockNow(context.Background(), nil, room) }()
		waitState(t, "batchconn.(*gate).lockNow", "select")
		g.unlock()
		if err := <-done; err != nil {
			t.Fatalf("lockNow after the opaque holder released: %v", err)
		}
	})
	t.Run("behind a holder that turns opaque, the socket full", func(t *testing.T) {
		var g gate
		g.lock(context.Background(), nil)
		full := func() bool { return false }
		done := make(chan error, 1)
		go func() { done <- g.lockNow(context.Background(), nil, full) }()
		waitState(t, "batchconn.(*gate).lockNow", "select")
		g.opaque(true)
		if err := <-done; !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("lockNow = %v, want ErrWouldBlock", err)
		}
	})
	t.Run("its context or closing ends the wait", func(t *testing.T) {
		var g gate
		g.lock(context.Background(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		closing := make(chan struct{})
		done := make(chan error, 2)
		go func() { done <- g.lockNow(ctx, nil, nil) }()
		go func() { done <- g.lockNow(context.Background(), closing, nil) }()
		cancel()
		close(closing)
		for range 2 {
			if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
				t.Errorf("lockNow = %v, want context.Canceled or net.ErrClosed", err)
			}
		}
	})
}

// TestGateOneHolderAtATime races blocking, non-blocking and cancelled
// callers: never two holders, and nobody is left waiting.
func TestGateOneHolderAtATime(t *testing.T) {
	var g gate
	var holders, acquired atomic.Int64
	hold := func() {
		if holders.Add(1) != 1 {
			t.Error("two holders at once")
		}
		acquired.Add(1)
		runtime.Gosched()
		if rand64()%3 == 0 {
			g.park()
			g.unpark()
		}
		holders.Add(-1)
		g.unlock()
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 500 {
				switch (i + j) % 4 {
				case 0:
					if g.tryLock() {
						hold()
					}
				case 1:
					if g.lockNow(context.Background(), nil, nil) == nil {
						hold()
					}
				case 2:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand64()%50)*time.Microsecond)
					if g.lock(ctx, nil) == nil {
						hold()
					}
					cancel()
				default:
					if g.lock(context.Background(), nil) == nil {
						hold()
					}
				}
			}
		}()
	}
	wg.Wait()
	if acquired.Load() == 0 {
		t.Fatal("nobody ever took the gate")
	}
	if !g.tryLock() {
		t.Fatal("the gate is still held after everyone released it")
	}
	if n := gateQueueLen(&g); n != 0 {
		t.Fatalf("%d waiters left queued", n)
	}
}

var randState atomic.Uint64

func rand64() uint64 {
	x := randState.Add(0x9E3779B97F4A7C15)
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	return x
}
