package main

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/batchconn"
)

// A writersTarget is one socket under test and the destinations its
// writers use.
type writersTarget struct {
	w interface {
		WriteTo([]byte, net.Addr) (int, error)
	}
	bc    *batchconn.Conn // nil for the UDPConn
	close func() error
}

// runWriters measures every cell, the two sockets alternating in each round.
func runWriters(cfg writersConfig, stdout, stderr io.Writer) error {
	maxG := slices.Max(cfg.writers)
	// The destinations: sockets nobody reads, so that neither side pays for
	// a receiver; the kernel drops what overflows their buffers, at the same
	// cost for both.
	var sinks []*net.UDPConn
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	var dsts []net.Addr
	for range maxG {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		sinks = append(sinks, s)
		dsts = append(dsts, s.LocalAddr())
	}
	open := func(bc bool) (*writersTarget, error) {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		if !bc {
			return &writersTarget{w: u, close: u.Close}, nil
		}
		c, err := batchconn.New(u, batchconn.WithGSO(cfg.gso))
		if err != nil {
			u.Close()
			return nil, err
		}
		return &writersTarget{w: c, bc: c, close: c.Close}, nil
	}
	udp, err := open(false)
	if err != nil {
		return err
	}
	defer udp.close()
	bc, err := open(true)
	if err != nil {
		return err
	}
	defer bc.close()

	var cells []*writersCell
	for _, g := range cfg.writers {
		for _, perG := range []bool{false, true} {
			if g == 1 && perG {
				continue // one goroutine: one destination either way
			}
			cells = append(cells, &writersCell{writers: g, perG: perG})
		}
	}
	payload := make([]byte, cfg.size)
	progress := isTerminal(stderr) // a progress line only where a person watches
	for round := range cfg.count {
		if progress {
			fmt.Fprintf(stderr, "\rround %d/%d", round+1, cfg.count)
		}
		for _, c := range cells {
			first, second := udp, bc
			if round%2 == 1 {
				first, second = bc, udp
			}
			for _, t := range []*writersTarget{first, second} {
				s, err := measureWriters(t, c.writers, c.perG, dsts, payload, cfg.duration)
				if err != nil {
					return err
				}
				if t == udp {
					c.udp = append(c.udp, s)
				} else {
					c.bc = append(c.bc, s)
				}
			}
		}
	}
	if progress {
		fmt.Fprintf(stderr, "\r%20s\r", "")
	}
	printWriters(stdout, cfg, cells)
	return nil
}

// measureWriters runs g goroutines calling WriteTo on t for d and returns
// what they did.
func measureWriters(t *writersTarget, g int, perG bool, dsts []net.Addr, payload []byte, d time.Duration) (writersSample, error) {
	var st0 batchconn.Stats
	if t.bc != nil {
		st0 = t.bc.Stats()
	}
	var stop atomic.Bool
	var total atomic.Uint64
	var firstErr atomic.Pointer[error]
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range g {
		dst := dsts[0]
		if perG {
			dst = dsts[i]
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			n := uint64(0)
			for !stop.Load() {
				if _, err := t.w.WriteTo(payload, dst); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					break
				}
				n++
			}
			total.Add(n)
		}()
	}
	ready.Wait()
	runtime.GC() // not during the measurement
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	if p := firstErr.Load(); p != nil {
		return writersSample{}, *p
	}
	s := writersSample{datagrams: total.Load(), elapsed: elapsed, cpu: cpuTime(&ru1) - cpuTime(&ru0)}
	s.syscalls = s.datagrams // the UDPConn: one sendto each
	if t.bc != nil {
		// Batched datagrams are counted in Stats with their sendmmsg
		// calls; a writer that sent alone made one uncounted system call.
		st := t.bc.Stats()
		batched := st.Messages - st0.Messages
		s.syscalls = (st.Syscalls - st0.Syscalls) + (s.datagrams - batched)
	}
	return s, nil
}
