// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/timeout_test.go; see LICENSE-GO.
//
// TestReadFromTimeout, TestWriteToTimeout and TestReadFromTimeoutFluctuation
// are Go's UDP tests. The read and write deadline tests that Go runs on a
// TCP connection are run here on a connected UDP socket (made by Dial, its
// peer a packet listener), with the same checks and inputs: what they
// check, deadlines on a conn's reads and writes, is the same promise for
// a UDPConn, and a Conn keeps deadlines of its own. Only the peer's side
// differs where UDP has no accepted connection (see each test).

//go:build unix

package gonettest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

var long = flag.Bool("gonettest.long", false, "run testVariousDeadlines with Go's full settings (3 runs of each timeout up to 1 s, some 6 s a mode), not its -short ones")

// newConnPair is the ports' stand-in for Go's TCP listener and the
// connection dialed to it: ln, a packet listener on loopback, and c, a
// connected socket dialed to it. Both are of the mode.
func newConnPair(t *testing.T, m *mode) (ln, c udpConn) {
	t.Helper()
	ln = newLocalPacketListener(t, m, "udp")
	c, err := m.Dial(ln.LocalAddr().Network(), ln.LocalAddr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return ln, c
}

var readTimeoutTests = []struct {
	timeout time.Duration
	xerrs   [2]error // expected errors in transition
}{
	// Tests that read deadlines work, even if there's data ready
	// to be read.
	{-5 * time.Second, [2]error{os.ErrDeadlineExceeded, os.ErrDeadlineExceeded}},

	{50 * time.Millisecond, [2]error{nil, os.ErrDeadlineExceeded}},
}

// TestReadTimeout: the peer writes one datagram, as Go's handler writes
// once to the accepted connection, here before the reads start, so that
// the first case does read with data ready.
func TestReadTimeout(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		ln, c := newConnPair(t, m)
		defer ln.Close()
		defer c.Close()
		if _, err := ln.WriteTo([]byte("READ TIMEOUT TEST"), c.LocalAddr()); err != nil {
			t.Fatal(err)
		}

		for i, tt := range readTimeoutTests {
			if err := c.SetReadDeadline(time.Now().Add(tt.timeout)); err != nil {
				t.Fatalf("#%d: %v", i, err)
			}
			var b [1]byte
			for j, xerr := range tt.xerrs {
				for {
					n, err := c.Read(b[:])
					if xerr != nil {
						if perr := parseReadError(err); perr != nil {
							t.Errorf("#%d/%d: %v", i, j, perr)
						}
						if !isDeadlineExceeded(err) {
							t.Fatalf("#%d/%d: %v", i, j, err)
						}
					}
					if err == nil {
						time.Sleep(tt.timeout / 3)
						continue
					}
					if n != 0 {
						t.Fatalf("#%d/%d: read %d; want 0", i, j, n)
					}
					break
				}
			}
		}
	})
}

func TestReadTimeoutMustNotReturn(t *testing.T) {
	t.Parallel()

	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		ln, c := newConnPair(t, m)
		defer ln.Close()
		defer c.Close()

		maxch := make(chan *time.Timer)
		ch := make(chan error)
		go func() {
			if err := c.SetDeadline(time.Now().Add(-5 * time.Second)); err != nil {
				t.Error(err)
			}
			if err := c.SetWriteDeadline(time.Now().Add(-5 * time.Second)); err != nil {
				t.Error(err)
			}
			if err := c.SetReadDeadline(noDeadline); err != nil {
				t.Error(err)
			}
			maxch <- time.NewTimer(100 * time.Millisecond)
			var b [1]byte
			_, err := c.Read(b[:])
			ch <- err
		}()

		max := <-maxch
		defer max.Stop()

		select {
		case err := <-ch:
			if perr := parseReadError(err); perr != nil {
				t.Error(perr)
			}
			t.Fatalf("expected Read to not return, but it returned with %v", err)
		case <-max.C:
			c.Close()
			err := <-ch // wait for tester goroutine to stop
			if perr := parseReadError(err); perr != nil {
				t.Error(perr)
			}
			//lint:ignore SA1019 Go's test checks Temporary, so the port does
			if nerr, ok := err.(net.Error); !ok || nerr.Timeout() || nerr.Temporary() {
				t.Fatal(err)
			}
		}
	})
}

var readFromTimeoutTests = []struct {
	timeout time.Duration
	xerrs   [2]error // expected errors in transition
}{
	// Tests that read deadlines work, even if there's data ready
	// to be read.
	{-5 * time.Second, [2]error{os.ErrDeadlineExceeded, os.ErrDeadlineExceeded}},

	{50 * time.Millisecond, [2]error{nil, os.ErrDeadlineExceeded}},
}

func TestReadFromTimeout(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		ch := make(chan net.Addr)
		defer close(ch)
		handler := func(ls *localPacketServer, c udpConn) {
			if dst, ok := <-ch; ok {
				c.WriteTo([]byte("READFROM TIMEOUT TEST"), dst)
			}
		}
		ls := newLocalPacketServer(t, m, "udp")
		defer ls.teardown()
		if err := ls.buildup(handler); err != nil {
			t.Fatal(err)
		}

		host, _, err := net.SplitHostPort(ls.PacketConn.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.ListenPacket(ls.PacketConn.LocalAddr().Network(), net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ch <- c.LocalAddr()

		for i, tt := range readFromTimeoutTests {
			if err := c.SetReadDeadline(time.Now().Add(tt.timeout)); err != nil {
				t.Fatalf("#%d: %v", i, err)
			}
			var b [1]byte
			for j, xerr := range tt.xerrs {
				for {
					n, _, err := c.ReadFrom(b[:])
					if xerr != nil {
						if perr := parseReadError(err); perr != nil {
							t.Errorf("#%d/%d: %v", i, j, perr)
						}
						if !isDeadlineExceeded(err) {
							t.Fatalf("#%d/%d: %v", i, j, err)
						}
					}
					if err == nil {
						time.Sleep(tt.timeout / 3)
						continue
					}
					if nerr, ok := err.(net.Error); ok && nerr.Timeout() && n != 0 {
						t.Fatalf("#%d/%d: read %d; want 0", i, j, n)
					}
					break
				}
			}
		}
	})
}

var writeTimeoutTests = []struct {
	timeout time.Duration
	xerrs   [2]error // expected errors in transition
}{
	// Tests that write deadlines work, even if there's buffer
	// space available to write.
	{-5 * time.Second, [2]error{os.ErrDeadlineExceeded, os.ErrDeadlineExceeded}},

	{10 * time.Millisecond, [2]error{nil, os.ErrDeadlineExceeded}},
}

// TestWriteTimeout: each case's conn is dialed to the one listener, as in
// Go's test; the listener never reads.
func TestWriteTimeout(t *testing.T) {
	t.Parallel()

	forEachMode(t, func(t *testing.T, m *mode) {
		ln := newLocalPacketListener(t, m, "udp")
		defer ln.Close()

		for i, tt := range writeTimeoutTests {
			c, err := m.Dial(ln.LocalAddr().Network(), ln.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			if err := c.SetWriteDeadline(time.Now().Add(tt.timeout)); err != nil {
				t.Fatalf("#%d: %v", i, err)
			}
			for j, xerr := range tt.xerrs {
				for {
					n, err := c.Write([]byte("WRITE TIMEOUT TEST"))
					if xerr != nil {
						if perr := parseWriteError(err); perr != nil {
							t.Errorf("#%d/%d: %v", i, j, perr)
						}
						if !isDeadlineExceeded(err) {
							t.Fatalf("#%d/%d: %v", i, j, err)
						}
					}
					if err == nil {
						time.Sleep(tt.timeout / 3)
						continue
					}
					if n != 0 {
						t.Fatalf("#%d/%d: wrote %d; want 0", i, j, n)
					}
					break
				}
			}
		}
	})
}

func TestWriteToTimeout(t *testing.T) {
	t.Parallel()

	forEachMode(t, func(t *testing.T, m *mode) {
		c1 := newLocalPacketListener(t, m, "udp")
		defer c1.Close()

		host, _, err := net.SplitHostPort(c1.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}

		timeouts := []time.Duration{
			-5 * time.Second,
			10 * time.Millisecond,
		}

		for _, timeout := range timeouts {
			t.Run(fmt.Sprint(timeout), func(t *testing.T) {
				c2, err := m.ListenPacket(c1.LocalAddr().Network(), net.JoinHostPort(host, "0"))
				if err != nil {
					t.Fatal(err)
				}
				defer c2.Close()

				if err := c2.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
					t.Fatalf("SetWriteDeadline: %v", err)
				}
				backoff := 1 * time.Millisecond
				nDeadlineExceeded := 0
				for j := 0; nDeadlineExceeded < 2; j++ {
					n, err := c2.WriteTo([]byte("WRITETO TIMEOUT TEST"), c1.LocalAddr())
					t.Logf("#%d: WriteTo: %d, %v", j, n, err)
					if err == nil && timeout >= 0 && nDeadlineExceeded == 0 {
						// If the timeout is nonnegative, some number of WriteTo calls may
						// succeed before the timeout takes effect.
						t.Logf("WriteTo succeeded; sleeping %v", timeout/3)
						time.Sleep(timeout / 3)
						continue
					}
					if isENOBUFS(err) {
						t.Logf("WriteTo: %v", err)
						// We're looking for a deadline exceeded error, but if the kernel's
						// network buffers are saturated we may see ENOBUFS instead (see
						// https://go.dev/issue/49930). Give it some time to unsaturate.
						time.Sleep(backoff)
						backoff *= 2
						continue
					}
					if perr := parseWriteError(err); perr != nil {
						t.Errorf("failed to parse error: %v", perr)
					}
					if !isDeadlineExceeded(err) {
						t.Errorf("error is not 'deadline exceeded'")
					}
					if n != 0 {
						t.Errorf("unexpectedly wrote %d bytes", n)
					}
					if !t.Failed() {
						t.Logf("WriteTo timed out as expected")
					}
					nDeadlineExceeded++
				}
			})
		}
	})
}

const (
	// minDynamicTimeout is the minimum timeout to attempt for
	// tests that automatically increase timeouts until success.
	//
	// Lower values may allow tests to succeed more quickly if the value is close
	// to the true minimum, but may require more iterations (and waste more time
	// and CPU power on failed attempts) if the timeout is too low.
	minDynamicTimeout = 1 * time.Millisecond

	// maxDynamicTimeout is the maximum timeout to attempt for
	// tests that automatically increase timeouts until success.
	//
	// This should be a strict upper bound on the latency required to hit a
	// timeout accurately, even on a slow or heavily-loaded machine. If a test
	// would increase the timeout beyond this value, the test fails.
	maxDynamicTimeout = 4 * time.Second
)

// timeoutUpperBound returns the maximum time that we expect a timeout of
// duration d to take to return the caller.
func timeoutUpperBound(d time.Duration) time.Duration {
	switch runtime.GOOS {
	case "openbsd", "netbsd":
		// NetBSD and OpenBSD seem to be unable to reliably hit deadlines even when
		// the absolute durations are long.
		// In https://build.golang.org/log/c34f8685d020b98377dd4988cd38f0c5bd72267e,
		// we observed that an openbsd-amd64-68 builder took 4.090948779s for a
		// 2.983020682s timeout (37.1% overhead).
		// (See https://go.dev/issue/50189 for further detail.)
		// Give them lots of slop to compensate.
		return d * 3 / 2
	}
	// Other platforms seem to hit their deadlines more reliably,
	// at least when they are long enough to cover scheduling jitter.
	return d * 11 / 10
}

// nextTimeout returns the next timeout to try after an operation took the given
// actual duration with a timeout shorter than that duration.
func nextTimeout(actual time.Duration) (next time.Duration, ok bool) {
	if actual >= maxDynamicTimeout {
		return maxDynamicTimeout, false
	}
	// Since the previous attempt took actual, we can't expect to beat that
	// duration by any significant margin. Try the next attempt with an arbitrary
	// factor above that, so that our growth curve is at least exponential.
	next = actual * 5 / 4
	return min(next, maxDynamicTimeout), true
}

// TestReadTimeoutFluctuation reads with Read, on a connected socket; Go's
// UDP twin, TestReadFromTimeoutFluctuation, with ReadFrom.
func TestReadTimeoutFluctuation(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		ln, c := newConnPair(t, m)
		defer ln.Close()
		defer c.Close()

		d := minDynamicTimeout
		b := make([]byte, 256)
		for {
			t.Logf("SetReadDeadline(+%v)", d)
			t0 := time.Now()
			deadline := t0.Add(d)
			if err := c.SetReadDeadline(deadline); err != nil {
				t.Fatalf("SetReadDeadline(%v): %v", deadline, err)
			}
			n, err := c.Read(b)
			t1 := time.Now()

			if n != 0 || err == nil || !err.(net.Error).Timeout() {
				t.Errorf("Read did not return (0, timeout): (%d, %v)", n, err)
			}
			if perr := parseReadError(err); perr != nil {
				t.Error(perr)
			}
			if !isDeadlineExceeded(err) {
				t.Errorf("Read error is not DeadlineExceeded: %v", err)
			}

			actual := t1.Sub(t0)
			if t1.Before(deadline) {
				t.Errorf("Read took %s; expected at least %s", actual, d)
			}
			if t.Failed() {
				return
			}
			if want := timeoutUpperBound(d); actual > want {
				next, ok := nextTimeout(actual)
				if !ok {
					t.Fatalf("Read took %s; expected at most %v", actual, want)
				}
				// Maybe this machine is too slow to reliably schedule goroutines within
				// the requested duration. Increase the timeout and try again.
				t.Logf("Read took %s (expected %s); trying with longer timeout", actual, d)
				d = next
				continue
			}

			break
		}
	})
}

func TestReadFromTimeoutFluctuation(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		c1 := newLocalPacketListener(t, m, "udp")
		defer c1.Close()

		c2, err := m.Dial(c1.LocalAddr().Network(), c1.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()

		d := minDynamicTimeout
		b := make([]byte, 256)
		for {
			t.Logf("SetReadDeadline(+%v)", d)
			t0 := time.Now()
			deadline := t0.Add(d)
			if err = c2.SetReadDeadline(deadline); err != nil {
				t.Fatalf("SetReadDeadline(%v): %v", deadline, err)
			}
			var n int
			n, _, err = c2.ReadFrom(b)
			t1 := time.Now()

			if n != 0 || err == nil || !err.(net.Error).Timeout() {
				t.Errorf("ReadFrom did not return (0, timeout): (%d, %v)", n, err)
			}
			if perr := parseReadError(err); perr != nil {
				t.Error(perr)
			}
			if !isDeadlineExceeded(err) {
				t.Errorf("ReadFrom error is not DeadlineExceeded: %v", err)
			}

			actual := t1.Sub(t0)
			if t1.Before(deadline) {
				t.Errorf("ReadFrom took %s; expected at least %s", actual, d)
			}
			if t.Failed() {
				return
			}
			if want := timeoutUpperBound(d); actual > want {
				next, ok := nextTimeout(actual)
				if !ok {
					t.Fatalf("ReadFrom took %s; expected at most %s", actual, want)
				}
				// Maybe this machine is too slow to reliably schedule goroutines within
				// the requested duration. Increase the timeout and try again.
				t.Logf("ReadFrom took %s (expected %s); trying with longer timeout", actual, d)
				d = next
				continue
			}

			break
		}
	})
}

func TestVariousDeadlines(t *testing.T) {
	t.Parallel()
	forEachMode(t, testVariousDeadlines)
}

func TestVariousDeadlines1Proc(t *testing.T) {
	// Cannot use t.Parallel - modifies global GOMAXPROCS.
	if testing.Short() {
		t.Skip("skipping in short mode")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	forEachMode(t, testVariousDeadlines)
}

func TestVariousDeadlines4Proc(t *testing.T) {
	// Cannot use t.Parallel - modifies global GOMAXPROCS.
	if testing.Short() {
		t.Skip("skipping in short mode")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	forEachMode(t, testVariousDeadlines)
}

// testVariousDeadlines reads everything a connected socket gets (io.Copy)
// until its deadline ends it; its peer, the listener, sends nothing, as
// Go's handler sends nothing on the accepted connection. Go's -short
// settings are used unless -gonettest.long is given.
func testVariousDeadlines(t *testing.T, m *mode) {
	ln := newLocalPacketListener(t, m, "udp")
	defer ln.Close()

	short := testing.Short() || !*long
	for _, timeout := range []time.Duration{
		1 * time.Nanosecond,
		2 * time.Nanosecond,
		5 * time.Nanosecond,
		50 * time.Nanosecond,
		100 * time.Nanosecond,
		200 * time.Nanosecond,
		500 * time.Nanosecond,
		750 * time.Nanosecond,
		1 * time.Microsecond,
		5 * time.Microsecond,
		25 * time.Microsecond,
		250 * time.Microsecond,
		500 * time.Microsecond,
		1 * time.Millisecond,
		5 * time.Millisecond,
		100 * time.Millisecond,
		250 * time.Millisecond,
		500 * time.Millisecond,
		1 * time.Second,
	} {
		numRuns := 3
		if short {
			numRuns = 1
			if timeout > 500*time.Microsecond {
				continue
			}
		}
		for run := 0; run < numRuns; run++ {
			name := fmt.Sprintf("%v %d/%d", timeout, run, numRuns)
			t.Log(name)

			c, err := m.Dial(ln.LocalAddr().Network(), ln.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}

			t0 := time.Now()
			if err := c.SetDeadline(t0.Add(timeout)); err != nil {
				t.Error(err)
			}
			n, err := io.Copy(io.Discard, c)
			dt := time.Since(t0)
			c.Close()

			if nerr, ok := err.(net.Error); ok && nerr.Timeout() {
				t.Logf("%v: good timeout after %v; %d bytes", name, dt, n)
			} else {
				t.Fatalf("%v: Copy = %d, %v; want timeout", name, n, err)
			}
		}
	}
}

// TestReadWriteProlongedTimeout tests concurrent deadline
// modification. Known to cause data races in the past.
//
// The peer reads and writes as Go's handler does on the accepted
// connection: it reads whatever comes and writes to the conn's address
// with WriteTo, until an error. Go's handler ends when the client closes
// the connection (its Read and Write fail); a UDP peer learns nothing of
// that, so here the peer is closed after the client (ls.teardown), which
// ends both loops. A loop may meet the close in its SetReadDeadline or
// SetWriteDeadline rather than in its Read or Write; that error must then
// be net.ErrClosed, of the shape parseCommonError checks, and ends the
// loop as a Read or Write error does. Any other error from setting a
// deadline fails the test, as in Go's.
func TestReadWriteProlongedTimeout(t *testing.T) {
	t.Parallel()

	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		peer := make(chan net.Addr, 1)
		handler := func(ls *localPacketServer, c udpConn) {
			dst := <-peer

			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				var b [1]byte
				for {
					if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
						if perr := parseCommonError(err); perr != nil {
							t.Error(perr)
						}
						if !errors.Is(err, net.ErrClosed) { // the peer's close (see above)
							t.Error(err)
						}
						return
					}
					if _, _, err := c.ReadFrom(b[:]); err != nil {
						if perr := parseReadError(err); perr != nil {
							t.Error(perr)
						}
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				var b [1]byte
				for {
					if err := c.SetWriteDeadline(time.Now().Add(time.Hour)); err != nil {
						if perr := parseCommonError(err); perr != nil {
							t.Error(perr)
						}
						if !errors.Is(err, net.ErrClosed) { // the peer's close (see above)
							t.Error(err)
						}
						return
					}
					if _, err := c.WriteTo(b[:], dst); err != nil {
						if perr := parseWriteError(err); perr != nil {
							t.Error(perr)
						}
						return
					}
				}
			}()
			wg.Wait()
		}
		ls := newLocalPacketServer(t, m, "udp")
		defer ls.teardown()
		if err := ls.buildup(handler); err != nil {
			t.Fatal(err)
		}

		c, err := m.Dial(ls.PacketConn.LocalAddr().Network(), ls.PacketConn.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peer <- c.LocalAddr()

		var b [1]byte
		for i := 0; i < 1000; i++ {
			c.Write(b[:])
			c.Read(b[:])
		}
	})
}

func TestReadWriteDeadlineRace(t *testing.T) {
	t.Parallel()

	N := 1000
	if testing.Short() {
		N = 50
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		ln, c := newConnPair(t, m)
		defer ln.Close()
		defer c.Close()

		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			tic := time.NewTicker(2 * time.Microsecond)
			defer tic.Stop()
			for i := 0; i < N; i++ {
				if err := c.SetReadDeadline(time.Now().Add(2 * time.Microsecond)); err != nil {
					if perr := parseCommonError(err); perr != nil {
						t.Error(perr)
					}
					break
				}
				if err := c.SetWriteDeadline(time.Now().Add(2 * time.Microsecond)); err != nil {
					if perr := parseCommonError(err); perr != nil {
						t.Error(perr)
					}
					break
				}
				<-tic.C
			}
		}()
		go func() {
			defer wg.Done()
			var b [1]byte
			for i := 0; i < N; i++ {
				c.Read(b[:]) // ignore possible timeout errors
			}
		}()
		go func() {
			defer wg.Done()
			var b [1]byte
			for i := 0; i < N; i++ {
				c.Write(b[:]) // ignore possible timeout errors
			}
		}()
		wg.Wait() // wait for tester goroutine to stop
	})
}

// Issue 35367.
func TestConcurrentSetDeadline(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		ln := newLocalPacketListener(t, m, "udp")
		defer ln.Close()

		const goroutines = 8
		const conns = 10
		const tries = 100

		var c [conns]udpConn
		for i := 0; i < conns; i++ {
			var err error
			c[i], err = m.Dial(ln.LocalAddr().Network(), ln.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c[i].Close()
		}

		var wg sync.WaitGroup
		wg.Add(goroutines)
		now := time.Now()
		for i := 0; i < goroutines; i++ {
			go func(i int) {
				defer wg.Done()
				// Make the deadlines steadily earlier,
				// to trigger runtime adjusttimers calls.
				for j := tries; j > 0; j-- {
					for k := 0; k < conns; k++ {
						c[k].SetReadDeadline(now.Add(2*time.Hour + time.Duration(i*j*k)*time.Second))
						c[k].SetWriteDeadline(now.Add(1*time.Hour + time.Duration(i*j*k)*time.Second))
					}
				}
			}(i)
		}
		wg.Wait()
	})
}

// isDeadlineExceeded reports whether err is or wraps os.ErrDeadlineExceeded.
// We also check that the error implements net.Error, and that the
// Timeout method returns true.
func isDeadlineExceeded(err error) bool {
	nerr, ok := err.(net.Error)
	if !ok {
		return false
	}
	if !nerr.Timeout() {
		return false
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return true
}
