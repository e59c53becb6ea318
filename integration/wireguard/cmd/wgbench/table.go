package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/batchconn/batchconn/internal/bench"
)

// summary is everything a measurement produced; -json prints it whole.
type summary struct {
	Bytes              int64
	Rounds             int
	MTU, TunnelMTU     int
	GRO, GSO           bool   // wgbatch's options
	Veth               string // the veth's offloads, from ethtool -k
	LoadStart, LoadEnd string // /proc/loadavg's three load averages
	Runs               []runResult
	Cells              []cell
	Met                int
	Missed             []string
	targets            []bench.Target
}

// A cell is one mode and direction: medians over the rounds, and ratios
// against std in the same direction, each the median of the same-round
// ratios.
type cell struct {
	Mode, Dir          string
	SendBind, RecvBind string
	Gbps               float64
	SenderCPU          float64
	ReceiverCPU        float64
	EndToEndCPU        float64
	TCPCPU             float64 // both TCP endpoint processes
	// Ratios against std (absent for std itself).
	GbpsRatio, SenderRatio, ReceiverRatio, EndToEndRatio float64 `json:",omitempty"`
	Targets                                              []string
}

// fill fills in Runs, Cells, Met and Missed from the results.
func (s *summary) fill(cfg config, res *bench.Results[runResult]) {
	for round := 1; round <= cfg.count; round++ {
		for _, dir := range cfg.dirs {
			for _, mode := range cfg.modes {
				for _, r := range res.Get(dirName(dir), mode).Samples {
					if r.Round == round {
						s.Runs = append(s.Runs, r.Value)
					}
				}
			}
		}
	}
	for _, dir := range cfg.dirs {
		std := res.Get(dirName(dir), "std").Samples
		for _, mode := range cfg.modes {
			runs := res.Get(dirName(dir), mode).Samples
			if len(runs) == 0 {
				continue // a run that fails ends the command: no cell is empty
			}
			first := runs[0].Value
			c := cell{Mode: mode, Dir: dir, SendBind: first.SendBind, RecvBind: first.RecvBind}
			med := func(f func(runResult) float64) float64 { return bench.Of(runs, f).Median }
			c.Gbps = med(runResult.gbps)
			c.SenderCPU = med(runResult.senderCPU)
			c.ReceiverCPU = med(runResult.receiverCPU)
			c.EndToEndCPU = med(runResult.endToEndCPU)
			c.TCPCPU = med(func(r runResult) float64 { return r.TCPSenderCPU + r.TCPReceiverCPU })
			if mode != "std" {
				ratio := func(f func(runResult) float64) float64 {
					if st := bench.Ratio(runs, std, bench.Over(f)); st != nil {
						return st.Median
					}
					return 0
				}
				c.GbpsRatio = ratio(runResult.gbps)
				c.SenderRatio = ratio(runResult.senderCPU)
				c.ReceiverRatio = ratio(runResult.receiverCPU)
				c.EndToEndRatio = ratio(runResult.endToEndCPU)
				for _, t := range targets(c) {
					c.Targets = append(c.Targets, t.Tag())
					s.targets = append(s.targets, t)
					if t.Met {
						s.Met++
					} else {
						s.Missed = append(s.Missed, t.String())
					}
				}
			}
			s.Cells = append(s.Cells, c)
		}
	}
}

func (r runResult) gbps() float64        { return r.Gbps }
func (r runResult) senderCPU() float64   { return r.SenderCPU }
func (r runResult) receiverCPU() float64 { return r.ReceiverCPU }
func (r runResult) endToEndCPU() float64 { return r.EndToEndCPU }

// The targets of issue 15. Every cell keeps at least 0.97x StdNetBind's
// throughput; wgbatch on both ends sends with at most 0.75x the CPU, moves
// a GiB with at most 0.85x in all, at 1.10x the throughput or more; a
// StdNetBind peer talking to a wgbatch peer gains: the pair spends less CPU
// per GiB than two StdNetBinds.
func targets(c cell) []bench.Target {
	const thr, cpu = "throughput ratio", "CPU/GiB ratio"
	ts := []bench.Target{bench.Check("throughput>=0.97x", thr, c.GbpsRatio, bench.AtLeast, 0.97)}
	switch c.Mode {
	case "batch":
		ts = append(ts, bench.Check("sender CPU<=0.75x", "sender "+cpu, c.SenderRatio, bench.AtMost, 0.75),
			bench.Check("end-to-end CPU<=0.85x", "end-to-end "+cpu, c.EndToEndRatio, bench.AtMost, 0.85),
			bench.Check("throughput>=1.10x", thr, c.GbpsRatio, bench.AtLeast, 1.10))
	case "mixed":
		ts = append(ts, bench.Check("gains (end-to-end CPU<1x)", "end-to-end "+cpu, c.EndToEndRatio, bench.Below, 1))
	}
	for i := range ts {
		ts[i].Where = pairName(c.SendBind, c.RecvBind) + " " + dirName(c.Dir)
	}
	return ts
}

func (b *wgBench) header(s summary) {
	fmt.Fprintf(b.log, "wgbench: %s of TCP per run through wireguard-go on kernel TUNs, between two network namespaces\n", b.cfg.bytesArg)
	fmt.Fprintf(b.log, "joined by a veth pair (MTU %d, tunnel MTU %d), %s of modes %s, directions %s, every byte checked (CRC-32C)\n",
		s.MTU, s.TunnelMTU, rounds(s.Rounds), strings.Join(b.cfg.modes, ","), strings.Join(b.cfg.dirs, ","))
	fmt.Fprintf(b.log, "binds: std = conn.NewStdNetBind(), batch = wgbatch.NewBind(WithGRO(%v), WithGSO(%v)); veth offloads: %s\n",
		s.GRO, s.GSO, s.Veth)
	fmt.Fprintf(b.log, "load average at start: %s\n\n", s.LoadStart)
}

func printTable(w io.Writer, s summary) {
	fmt.Fprintf(w, "%-16s %-4s | %-14s | %-14s | %-14s | %-14s | %-5s | %s\n",
		"", "", "throughput", "sender CPU", "receiver CPU", "end-to-end CPU", "TCP", "")
	fmt.Fprintf(w, "%-16s %-4s | %6s %7s | %6s %7s | %6s %7s | %6s %7s | %5s | %s\n",
		"sender -> recv", "dir", "Gbit/s", "vs std", "s/GiB", "vs std", "s/GiB", "vs std", "s/GiB", "vs std", "s/GiB", "targets")
	ratio := func(c cell, v float64) string {
		if c.Mode == "std" {
			return ""
		}
		return fmt.Sprintf("%.2fx", v)
	}
	for _, c := range s.Cells {
		fmt.Fprintf(w, "%-16s %-4s | %6.2f %7s | %6.2f %7s | %6.2f %7s | %6.2f %7s | %5.2f | %s\n",
			pairName(c.SendBind, c.RecvBind), dirName(c.Dir),
			c.Gbps, ratio(c, c.GbpsRatio), c.SenderCPU, ratio(c, c.SenderRatio),
			c.ReceiverCPU, ratio(c, c.ReceiverRatio), c.EndToEndCPU, ratio(c, c.EndToEndRatio),
			c.TCPCPU, strings.Join(c.Targets, " "))
	}
	fmt.Fprintf(w, "\nmedians over %s; ratios are medians of same-round ratios against std -> std in the same\n"+
		"direction, not quotients of the medians beside them. CPU is user+system of each wireguard-go process\n"+
		"during the transfer; end-to-end is both; TCP is the TCP sender and receiver processes, not in end-to-end.\n",
		rounds(s.Rounds))
	fmt.Fprintf(w, "load average at start: %s, at end: %s\n\n", s.LoadStart, s.LoadEnd)
	bench.WriteTargets(w, s.targets)
}

func rounds(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds", n)
}
