package main

import (
	"context"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/bench"
)

// A writersTarget is one socket under test.
type writersTarget struct {
	w interface {
		WriteTo([]byte, net.Addr) (int, error)
	}
	bc    *batchconn.Conn // nil for the UDPConn
	close func() error
}

// writersModes are the sockets compared, the first the one the others are
// compared with. A mode is a name and how to open its socket on u.
var writersModes = []struct {
	name string
	open func(u *net.UDPConn, cfg writersConfig) (*writersTarget, error)
}{
	{"UDPConn", func(u *net.UDPConn, _ writersConfig) (*writersTarget, error) {
		return &writersTarget{w: u, close: u.Close}, nil
	}},
	{modeConn, func(u *net.UDPConn, cfg writersConfig) (*writersTarget, error) {
		return openConn(u, batchconn.WithGSO(cfg.gso))
	}},
	{modeQueue, func(u *net.UDPConn, cfg writersConfig) (*writersTarget, error) {
		return openConn(u, batchconn.WithGSO(cfg.gso), batchconn.WithWriteQueue(cfg.queue))
	}},
}

func openConn(u *net.UDPConn, opts ...batchconn.Option) (*writersTarget, error) {
	c, err := batchconn.New(u, opts...)
	if err != nil {
		return nil, err
	}
	return &writersTarget{w: c, bc: c, close: c.Close}, nil
}

// runWriters measures every cell, the sockets taking turns in each round.
func runWriters(cfg writersConfig, stdout, stderr io.Writer) error {
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	// The destinations: sockets nobody reads, so that no socket pays for a
	// receiver; the kernel drops what overflows their buffers, at the same
	// cost for all.
	var sinks []*net.UDPConn
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	var dsts []net.Addr
	for range slices.Max(cfg.writers) * cfg.dests {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		sinks = append(sinks, s)
		dsts = append(dsts, s.LocalAddr())
	}
	var targets []*writersTarget
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	var names []string
	for _, m := range writersModes {
		if m.name == modeQueue && cfg.queue == 0 {
			continue
		}
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		t, err := m.open(u, cfg)
		if err != nil {
			u.Close()
			return err
		}
		targets, names = append(targets, t), append(names, m.name)
	}

	// A burst's packets: packet k of a burst carries k in its first bytes,
	// as an RTP sequence number would.
	packets := make([][]byte, cfg.burst)
	for k := range packets {
		packets[k] = make([]byte, cfg.size)
		packets[k][0], packets[k][min(1, cfg.size-1)] = byte(k>>8), byte(k)
	}
	var cells []writersCell
	var groups []bench.Group[writersSample]
	for _, g := range cfg.writers {
		for _, perG := range []bool{false, true} {
			if g == 1 && perG {
				continue // one goroutine: the same destinations either way
			}
			c := writersCell{writers: g, perG: perG, dests: cfg.dests}
			group := bench.Group[writersSample]{Name: c.String()}
			for i, t := range targets {
				group.Modes = append(group.Modes, bench.Mode[writersSample]{Name: names[i],
					Sample: func(ctx context.Context, _ int) (writersSample, error) {
						return measureWriters(ctx, t, c, dsts, packets, cfg.duration)
					}})
			}
			cells, groups = append(cells, c), append(groups, group)
		}
	}
	res, err := bench.Run(ctx, bench.Plan[writersSample]{Name: "batchbench writers", Rounds: cfg.count, Groups: groups, Progress: stderr})
	if err != nil {
		return err
	}
	printWriters(stdout, cfg, cells, names, res)
	return nil
}

// measureWriters runs c.writers goroutines calling WriteTo on t for d,
// each writing bursts of the packets to each of its c.dests destinations
// (the first of dsts, or its own with c.perG), at least one burst each,
// and returns what they did,
// what a write queue held at the end sent and counted. The CPU time is the
// whole process's, so that it includes the queue's own goroutine.
func measureWriters(ctx context.Context, t *writersTarget, c writersCell, dsts []net.Addr, packets [][]byte, d time.Duration) (writersSample, error) {
	var st0 batchconn.Stats
	if t.bc != nil {
		st0 = t.bc.Stats()
	}
	var stop atomic.Bool
	var total atomic.Uint64
	var firstErr atomic.Pointer[error]
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range c.writers {
		mine := dsts[:c.dests]
		if c.perG {
			mine = dsts[i*c.dests : (i+1)*c.dests]
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			n := uint64(0)
		writing:
			for { // a burst: packet k to every destination, then k+1
				for _, p := range packets {
					for _, dst := range mine {
						if _, err := t.w.WriteTo(p, dst); err != nil {
							firstErr.CompareAndSwap(nil, &err)
							break writing
						}
						n++
					}
				}
				if stop.Load() {
					break
				}
			}
			total.Add(n)
		}()
	}
	ready.Wait()
	runtime.GC() // not during the measurement
	cpu0, _ := bench.ProcessCPU()
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if t.bc != nil {
		if err := t.bc.Flush(ctx); err != nil { // the queue's datagrams are sent work
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	elapsed := time.Since(t0)
	cpu1, _ := bench.ProcessCPU()
	if p := firstErr.Load(); p != nil {
		return writersSample{}, *p
	}
	s := writersSample{datagrams: total.Load(), elapsed: elapsed, cpu: cpu1 - cpu0}
	s.syscalls = s.datagrams // the UDPConn: one sendto each
	if t.bc != nil {
		// Batched datagrams (the queue's all) are counted in Stats with
		// their sendmmsg calls; a writer that sent alone made one
		// uncounted system call.
		st := t.bc.Stats()
		batched := st.Messages - st0.Messages
		s.syscalls = (st.Syscalls - st0.Syscalls) + (s.datagrams - min(batched, s.datagrams))
	}
	return s, nil
}
