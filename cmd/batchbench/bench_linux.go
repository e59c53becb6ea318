package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/batchconn/batchconn/batchconn"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// cpuClock says what the CPU column measures.
const cpuClock = "the sender thread's user+system time (CLOCK_THREAD_CPUTIME_ID on its locked\n" +
	"thread), with the kernel's delivery work done in its context but not the receiver thread's"

// A sender sends one batch the way its mode does. Every mode sends the same
// datagrams (bench.bufs) to the same destinations (bench.dsts).
type sender interface {
	// sendBatch sends all datagrams of one batch, looping over partial sends.
	sendBatch() error
	// counters returns the send system calls and GSO sends made so far.
	counters() (syscalls, gsoSends uint64)
	close() error
}

// unavailableError means a mode cannot run here; the table says why.
type unavailableError struct{ why string }

func (e *unavailableError) Error() string { return e.why }

// bench is one run's shared state.
type bench struct {
	cfg        config
	network    string     // "udp4" or "udp6"
	local      netip.Addr // the senders' address
	ns         *netnsPair // nil on loopback
	rx         *receiver
	bufs       [][]byte         // the batch's payloads, one per datagram
	dsts       []netip.AddrPort // each datagram's destination
	destIdx    []int            // each datagram's destination index
	segsPerGSO int              // most datagrams one GSO send may carry
	gsoErr     error            // why UDP GSO sends fail here, if they do
	gsoOff     string           // batchconn-gso's Stats().GSOOff, if GSO went off
	progress   *progress
}

func run(cfg config, stdout, stderr io.Writer) (err error) {
	if cfg.recv {
		return runRecv(cfg, stdout, stderr)
	}
	b := &bench{cfg: cfg, network: "udp4"}
	if cfg.ipv6 {
		b.network = "udp6"
	}
	rep := &report{CPUClock: cpuClock}
	rep.Config.Size, rep.Config.Batch, rep.Config.Dests = cfg.size, cfg.batch, cfg.dests
	rep.Config.Duration, rep.Config.Count, rep.Config.Modes = cfg.duration, cfg.count, cfg.modes
	rep.Config.Network, rep.Config.Path = b.network, "loopback"
	fillEnv(rep)

	rxAddr := netip.MustParseAddr("127.0.0.1")
	if cfg.ipv6 {
		rxAddr = netip.IPv6Loopback()
	}
	b.local = rxAddr
	if cfg.netns {
		if os.Geteuid() != 0 {
			return usagef("-netns needs root: it creates two network namespaces joined by a veth pair " +
				"(with `ip netns` and `ip link`) and removes them afterwards; run it as root, or leave out -netns to measure on loopback")
		}
		if b.ns, err = setupNetns(cfg.ipv6); err != nil {
			return err
		}
		defer b.ns.cleanup()
		stop := b.ns.cleanupOnSignal(stderr)
		defer stop()
		b.local, rxAddr = b.ns.sndAddr, b.ns.rcvAddr
		rep.Config.Path, rep.Env.MTU = "veth", b.ns.mtu
	}

	// The receiver: one socket per destination, drained by one thread.
	if err := b.inRcvNetns(func() error {
		var err error
		b.rx, err = newReceiver(rxAddr, cfg.dests, cfg.size)
		return err
	}); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	defer b.rx.close()
	rep.Env.RcvBuf = b.rx.rcvbuf

	// The batch: runs of runLen datagrams per destination.
	rl := runLen(cfg.batch, cfg.dests)
	payload := make([]byte, cfg.batch*cfg.size)
	for i := range payload {
		payload[i] = byte(i)
	}
	for i := range cfg.batch {
		b.bufs = append(b.bufs, payload[i*cfg.size:(i+1)*cfg.size:(i+1)*cfg.size])
		d := min(i/rl, cfg.dests-1)
		b.destIdx = append(b.destIdx, d)
		b.dsts = append(b.dsts, b.rx.addrs[d])
	}
	maxPayload := maxPayload4
	if cfg.ipv6 {
		maxPayload = maxPayload6
	}
	b.segsPerGSO = min(64, maxPayload/cfg.size) // 64: UDP_MAX_SEGMENTS on every kernel with UDP_SEGMENT
	rep.Config.SegsPerGSO = b.segsPerGSO

	b.gsoErr = b.probeGSO()
	rep.GSO.Available = b.gsoErr == nil
	if b.gsoErr != nil {
		rep.GSO.Why = b.gsoErr.Error()
		_, rep.GSO.SegmentTooBig = errors.AsType[*segmentTooBigError](b.gsoErr)
	}

	if !cfg.quiet && cfg.format == "table" {
		b.progress = startProgress(stderr, cfg)
	}
	stopProfiles, err := startProfiles(cfg)
	if err != nil {
		return err
	}
	results := make([]*modeResult, len(cfg.modes))
	for i, m := range cfg.modes {
		results[i] = &modeResult{Mode: m}
	}
	err = b.runRounds(results)
	b.progress.stop()
	if perr := stopProfiles(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	rep.Modes = results
	rep.finish()
	b.explainGSO(rep)

	if cfg.svg != "" {
		if err := writeSVGFile(cfg.svg, rep.chart()); err != nil {
			return err
		}
	}
	switch cfg.format {
	case "json":
		return rep.writeJSON(stdout)
	case "gobench":
		return rep.writeGobench(stdout)
	}
	return rep.writeTable(stdout, cfg.quiet)
}

// runRounds runs a short warm-up of every mode, then count rounds of
// A B C … each on a fresh sender socket.
func (b *bench) runRounds(results []*modeResult) error {
	warm := min(b.cfg.duration/4, 100*time.Millisecond)
	for round := 0; round <= b.cfg.count; round++ {
		for _, res := range results {
			if res.Unavailable != "" {
				continue
			}
			b.progress.set(res.Mode, round)
			d := b.cfg.duration
			if round == 0 {
				d = warm
			}
			s, err := b.newSender(res.Mode)
			if err != nil {
				if ue, ok := errors.AsType[*unavailableError](err); ok {
					res.Unavailable = ue.why
					continue
				}
				return fmt.Errorf("%s: %w", res.Mode, err)
			}
			smp, err := b.measure(s, d)
			if bs, ok := s.(*batchconnSender); ok && res.Mode == modeBatchconnGSO {
				b.gsoOff = bs.c.Stats().GSOOff
			}
			if cerr := s.close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				res.Unavailable = fmt.Sprintf("stopped in round %d: %v", round, err)
				res.Samples = nil
				continue
			}
			if round > 0 {
				smp.Round = round
				res.Samples = append(res.Samples, smp)
			}
		}
	}
	return nil
}

// measure runs s for d on a locked thread and returns what it did.
func (b *bench) measure(s sender, d time.Duration) (sample, error) {
	// The receiver must be idle before the round starts, or the last
	// round's backlog would be counted (and drained) in this one.
	b.rx.waitDrained()
	rx0 := b.rx.count.Load()
	var self0, self1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &self0)

	type result struct {
		smp sample
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var r result
		r.smp, r.err = sendFor(s, d)
		done <- r
	}()
	r := <-done
	_ = unix.Getrusage(unix.RUSAGE_SELF, &self1)
	b.rx.waitDrained()
	r.smp.Sent = r.smp.Batches * uint64(b.cfg.batch)
	r.smp.Bytes = r.smp.Sent * uint64(b.cfg.size)
	// The receiver got the warm-up batch too, which is not part of Sent.
	got, warm := b.rx.count.Load()-rx0, r.smp.WarmupSent*uint64(b.cfg.batch)
	r.smp.Delivered = got - min(got, warm)
	r.smp.ProcessCPU = cpuTime(&self1) - cpuTime(&self0)
	return r.smp, r.err
}

// sendFor is the measured loop. It runs on a locked OS thread so that the
// thread's CPU clock (threadCPU) is the sender's CPU time; getrusage
// (RUSAGE_THREAD) still gives the context switches.
//
// Its first batch is a warm-up, not measured: one-time set-up on a fresh
// socket (pools, lazily built headers, the poller's registration) is not
// steady-state cost. Its allocations are reported apart, as SetupMallocs, and
// Mallocs counts only the batches after it.
func sendFor(s sender, d time.Duration) (sample, error) {
	var smp sample
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	setup0 := ms.Mallocs
	if err := s.sendBatch(); err != nil {
		return smp, err
	}
	smp.WarmupSent = 1

	sys0, gso0 := s.counters()
	runtime.ReadMemStats(&ms)
	smp.SetupMallocs = ms.Mallocs - setup0
	mallocs0 := ms.Mallocs
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
	cpu0 := threadCPU()
	start := time.Now()
	var err error
	for {
		if err = s.sendBatch(); err != nil {
			break
		}
		smp.Batches++
		if time.Since(start) >= d {
			break
		}
	}
	smp.Elapsed = time.Since(start)
	cpu1 := threadCPU()
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
	runtime.ReadMemStats(&ms)
	smp.Mallocs = ms.Mallocs - mallocs0
	smp.CPU = cpu1 - cpu0
	smp.VoluntarySwitches = int64(ru1.Nvcsw - ru0.Nvcsw)
	smp.InvoluntarySwitches = int64(ru1.Nivcsw - ru0.Nivcsw)
	sys1, gso1 := s.counters()
	smp.Syscalls, smp.GSOSends = sys1-sys0, gso1-gso0
	return smp, err
}

func cpuTime(ru *unix.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newSender opens a fresh sender socket for mode.
func (b *bench) newSender(mode string) (sender, error) {
	var s sender
	err := b.inSndNetns(func() error {
		var err error
		switch mode {
		case modeRawSendmmsg:
			s, err = newRawSender(b, false)
			return err
		case modeRawGSO:
			if b.gsoErr != nil {
				return &unavailableError{"UDP GSO not usable: " + b.gsoErr.Error()}
			}
			s, err = newRawSender(b, true)
			return err
		}
		c, err := net.ListenUDP(b.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.local, 0)))
		if err != nil {
			return err
		}
		switch mode {
		case modeWriteTo:
			s = &writeToSender{c: c, bufs: b.bufs, dsts: b.dsts}
		case modeXNet:
			s = newXNetSender(c, b.bufs, b.dsts, b.cfg.ipv6)
		case modeBatchconn, modeBatchconnGSO:
			s, err = newBatchconnSender(c, b.bufs, b.dsts, mode == modeBatchconnGSO)
		}
		if err != nil {
			c.Close()
		}
		return err
	})
	return s, err
}

// writeToSender: a loop of WriteToUDPAddrPort, one system call per datagram.
type writeToSender struct {
	c     *net.UDPConn
	bufs  [][]byte
	dsts  []netip.AddrPort
	calls uint64
}

func (s *writeToSender) sendBatch() error {
	for i, buf := range s.bufs {
		s.calls++
		if _, err := s.c.WriteToUDPAddrPort(buf, s.dsts[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *writeToSender) counters() (uint64, uint64) { return s.calls, 0 }
func (s *writeToSender) close() error               { return s.c.Close() }

// xnetSender: golang.org/x/net's PacketConn.WriteBatch. ipv4.Message and
// ipv6.Message are the same type, so one interface covers both.
type xnetSender struct {
	c *net.UDPConn
	w interface {
		WriteBatch([]ipv4.Message, int) (int, error)
	}
	msgs  []ipv4.Message
	calls uint64 // WriteBatch calls: a floor on system calls (EAGAIN retries are hidden)
}

func newXNetSender(c *net.UDPConn, bufs [][]byte, dsts []netip.AddrPort, v6 bool) *xnetSender {
	s := &xnetSender{c: c}
	if v6 {
		s.w = ipv6.NewPacketConn(c)
	} else {
		s.w = ipv4.NewPacketConn(c)
	}
	addrs := map[netip.AddrPort]*net.UDPAddr{}
	for i, buf := range bufs {
		a := addrs[dsts[i]]
		if a == nil {
			a = net.UDPAddrFromAddrPort(dsts[i])
			addrs[dsts[i]] = a
		}
		s.msgs = append(s.msgs, ipv4.Message{Buffers: [][]byte{buf}, Addr: a})
	}
	return s
}

func (s *xnetSender) sendBatch() error {
	for msgs := s.msgs; len(msgs) > 0; {
		s.calls++
		n, err := s.w.WriteBatch(msgs, 0)
		if err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

func (s *xnetSender) counters() (uint64, uint64) { return s.calls, 0 }
func (s *xnetSender) close() error               { return s.c.Close() }

// batchconnSender: batchconn's WriteMessages, GSO on or off.
type batchconnSender struct {
	c    *batchconn.Conn
	msgs []batchconn.Message
	ctx  context.Context
}

func newBatchconnSender(c *net.UDPConn, bufs [][]byte, dsts []netip.AddrPort, gso bool) (*batchconnSender, error) {
	bc, err := batchconn.New(c, batchconn.WithGSO(gso))
	if err != nil {
		return nil, err
	}
	s := &batchconnSender{c: bc, ctx: context.Background()}
	for i, buf := range bufs {
		s.msgs = append(s.msgs, batchconn.Message{Addr: dsts[i], Buffers: [][]byte{buf}})
	}
	return s, nil
}

func (s *batchconnSender) sendBatch() error {
	for msgs := s.msgs; len(msgs) > 0; {
		n, err := s.c.WriteMessages(s.ctx, msgs, 0)
		if err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

func (s *batchconnSender) counters() (uint64, uint64) {
	st := s.c.Stats()
	return st.Syscalls, st.GSOBatches
}

func (s *batchconnSender) close() error { return s.c.Close() }

// probeGSO makes one real two-segment UDP GSO send to the first receiver, the
// cheapest proof that this kernel and path take GSO sends of this size.
func (b *bench) probeGSO() error {
	if b.segsPerGSO < 2 {
		return fmt.Errorf("two %d-byte datagrams exceed the largest UDP GSO send (%d bytes)", b.cfg.size, b.segsPerGSO*b.cfg.size+b.cfg.size)
	}
	return b.inSndNetns(func() error { return probeGSO(b) })
}

// explainGSO fills in whether batchconn-gso used GSO, and why not.
func (b *bench) explainGSO(rep *report) {
	g := rep.mode(modeBatchconnGSO)
	if g == nil {
		if rep.GSO.Why == "" {
			rep.GSO.Why = "batchconn-gso was not run"
		}
		return
	}
	for _, s := range g.Samples {
		if s.GSOSends > 0 {
			rep.GSO.Used = true
		}
	}
	if rep.GSO.Used || !rep.GSO.Available {
		return
	}
	switch {
	case g.Unavailable != "":
		rep.GSO.Why = "batchconn-gso " + g.Unavailable
	case b.cfg.batch < 2 || runLen(b.cfg.batch, b.cfg.dests) < 2:
		rep.GSO.Why = "each destination gets 1 datagram per batch: nothing to coalesce"
	case b.gsoOff != "":
		rep.GSO.Why = "batchconn turned GSO off: " + b.gsoOff
	default:
		rep.GSO.Why = "batchconn made no GSO sends"
	}
}

// inSndNetns runs f on a thread in the senders' network namespace.
func (b *bench) inSndNetns(f func() error) error {
	if b.ns == nil {
		return f()
	}
	return b.ns.do(b.ns.snd, f)
}

// inRcvNetns runs f on a thread in the receiver's network namespace.
func (b *bench) inRcvNetns(f func() error) error {
	if b.ns == nil {
		return f()
	}
	return b.ns.do(b.ns.rcv, f)
}

func fillEnv(rep *report) {
	e := &rep.Env
	e.GoVersion, e.GOOS, e.GOARCH = runtime.Version(), runtime.GOOS, runtime.GOARCH
	e.NumCPU, e.GOMAXPROCS = runtime.NumCPU(), runtime.GOMAXPROCS(0)
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
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

// notifySignals calls f on SIGINT, SIGTERM or SIGHUP until stop is called.
func notifySignals(f func(os.Signal)) (stop func()) {
	c := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(c, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case s := <-c:
			f(s)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
	}
}
