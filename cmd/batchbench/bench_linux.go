package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/bench"
	"github.com/batchconn/batchconn/internal/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// vethMTU is -netns's link MTU: Ethernet's.
const vethMTU = 1500

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

// sendBench is one send run's shared state.
type sendBench struct {
	cfg        config
	network    string      // "udp4" or "udp6"
	local      netip.Addr  // the senders' address
	ns         *netns.Pair // A sends, B receives; nil on loopback
	rx         *receiver
	bufs       [][]byte         // the batch's payloads, one per datagram
	dsts       []netip.AddrPort // each datagram's destination
	destIdx    []int            // each datagram's destination index
	segsPerGSO int              // most datagrams one GSO send may carry
	gsoErr     error            // why UDP GSO sends fail here, if they do
	gsoOff     string           // batchconn-gso's Stats().GSOOff, if GSO went off
}

func run(cfg config, stdout, stderr io.Writer) (err error) {
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	if cfg.recv {
		return runRecv(ctx, cfg, stdout, stderr)
	}
	b := &sendBench{cfg: cfg, network: "udp4"}
	if cfg.ipv6 {
		b.network = "udp6"
	}
	rep := &sendDoc{CPUClock: cpuClock}
	rep.Config.Size, rep.Config.Batch, rep.Config.Dests = cfg.size, cfg.batch, cfg.dests
	rep.Config.Duration, rep.Config.Count, rep.Config.Modes = cfg.duration, cfg.count, cfg.modes
	rep.Config.Network, rep.Config.Path = b.network, "loopback"
	rep.Env.Env = bench.ThisMachine()

	rxAddr := netip.MustParseAddr("127.0.0.1")
	if cfg.ipv6 {
		rxAddr = netip.IPv6Loopback()
	}
	b.local = rxAddr
	if cfg.netns {
		if os.Geteuid() != 0 {
			return bench.Usagef("-netns needs root: it creates two network namespaces joined by a veth pair " +
				"(with `ip netns` and `ip link`) and removes them afterwards; run it as root, or leave out -netns to measure on loopback")
		}
		if _, err := exec.LookPath("ip"); err != nil {
			return fmt.Errorf("-netns needs the ip command (iproute2): %w", err)
		}
		// A signal ends the run (bench.SignalContext), not the process, so
		// the deferred Remove runs then too.
		if b.ns, err = netns.New("batchbench", vethMTU); err != nil {
			return err
		}
		defer b.ns.Remove()
		b.local, rxAddr = b.ns.A.Addr4, b.ns.B.Addr4
		if cfg.ipv6 {
			if b.local, rxAddr = b.ns.A.Addr6, b.ns.B.Addr6; !rxAddr.IsValid() {
				return errors.New("-netns -ipv6: this kernel has no IPv6")
			}
		}
		rep.Config.Path, rep.Env.MTU = "veth", vethMTU
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

	stopProfiles, err := bench.StartProfiles(cfg.cpuProfile, cfg.memProfile)
	if err != nil {
		return err
	}
	var modes []bench.Mode[sample]
	for _, m := range cfg.modes {
		modes = append(modes, b.mode(m))
	}
	res, err := bench.Run(ctx, bench.Plan[sample]{Name: "batchbench", Rounds: cfg.count, Warmup: true,
		Groups: []bench.Group[sample]{{Modes: modes}}, Progress: cfg.out.Progress(stderr)})
	if perr := stopProfiles(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	b.explainGSO(rep, res)
	return rep.report(res).Write(stdout, cfg.out)
}

// mode is one send mode: each round on a fresh sender socket, sending for
// -duration (the warm-up a quarter of that, at most 100ms).
func (b *sendBench) mode(name string) bench.Mode[sample] {
	var s sender
	return bench.Mode[sample]{
		Name: name,
		Setup: func(_ context.Context, round int) (err error) {
			s, err = b.newSender(name)
			return err
		},
		Sample: func(_ context.Context, round int) (sample, error) {
			d := b.cfg.duration
			if round == 0 {
				d = min(b.cfg.duration/4, 100*time.Millisecond)
			}
			smp, err := b.measure(s, d)
			smp.Round, smp.SentPerSec = round, smp.sentPerSec()
			if bs, ok := s.(*batchconnSender); ok && name == modeBatchconnGSO {
				b.gsoOff = bs.c.Stats().GSOOff
			}
			return smp, bench.Unavailable(err)
		},
		Teardown: func() error { return s.close() },
	}
}

// measure runs s for d on a thread of its own (bench.Locked) and returns
// what it did.
func (b *sendBench) measure(s sender, d time.Duration) (sample, error) {
	// The receiver must be idle before the round starts, or the last
	// round's backlog would be counted (and drained) in this one.
	b.rx.waitDrained()
	rx0 := b.rx.count.Load()
	self0, _ := bench.ProcessCPU() // getrusage(RUSAGE_SELF): never fails on Linux

	smp, err := bench.Locked(func() (sample, error) { return sendFor(s, d) })
	self1, _ := bench.ProcessCPU()
	b.rx.waitDrained()
	smp.Sent = smp.Batches * uint64(b.cfg.batch)
	smp.Bytes = smp.Sent * uint64(b.cfg.size)
	// The receiver got the warm-up batch too, which is not part of Sent.
	got, warm := b.rx.count.Load()-rx0, smp.WarmupSent*uint64(b.cfg.batch)
	smp.Delivered = got - min(got, warm)
	smp.ProcessCPU = self1 - self0
	return smp, err
}

// sendFor is the measured loop. It runs on a locked OS thread so that the
// thread's CPU clock (bench.ThreadCPU) is the sender's CPU time; getrusage
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
	cpu0 := bench.ThreadCPU()
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
	cpu1 := bench.ThreadCPU()
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

// newSender opens a fresh sender socket for mode.
func (b *sendBench) newSender(mode string) (sender, error) {
	var s sender
	err := b.inSndNetns(func() error {
		var err error
		switch mode {
		case modeRawSendmmsg:
			s, err = newRawSender(b, false)
			return err
		case modeRawGSO:
			if b.gsoErr != nil {
				return bench.Unavailable(fmt.Errorf("UDP GSO not usable: %w", b.gsoErr))
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
func (b *sendBench) probeGSO() error {
	if b.segsPerGSO < 2 {
		return fmt.Errorf("two %d-byte datagrams exceed the largest UDP GSO send (%d bytes)", b.cfg.size, b.segsPerGSO*b.cfg.size+b.cfg.size)
	}
	return b.inSndNetns(func() error { return probeGSO(b) })
}

// explainGSO fills in whether batchconn-gso used GSO, and why not.
func (b *sendBench) explainGSO(rep *sendDoc, res *bench.Results[sample]) {
	g := res.Get("", modeBatchconnGSO)
	if g == nil {
		if rep.GSO.Why == "" {
			rep.GSO.Why = "batchconn-gso was not run"
		}
		return
	}
	for _, s := range g.Samples {
		if s.Value.GSOSends > 0 {
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
func (b *sendBench) inSndNetns(f func() error) error {
	if b.ns == nil {
		return f()
	}
	return b.ns.A.Run(f)
}

// inRcvNetns runs f on a thread in the receiver's network namespace.
func (b *sendBench) inRcvNetns(f func() error) error {
	if b.ns == nil {
		return f()
	}
	return b.ns.B.Run(f)
}
