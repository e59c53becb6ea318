package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
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

// cells fills in Cells, Met and Missed from Runs.
func (s *summary) cells(cfg config) {
	for _, dir := range cfg.dirs {
		for _, mode := range cfg.modes {
			runs := s.pick(mode, dir)
			c := cell{Mode: mode, Dir: dir, SendBind: runs[0].SendBind, RecvBind: runs[0].RecvBind}
			c.Gbps = median(runs, func(r runResult) float64 { return r.Gbps })
			c.SenderCPU = median(runs, func(r runResult) float64 { return r.SenderCPU })
			c.ReceiverCPU = median(runs, func(r runResult) float64 { return r.ReceiverCPU })
			c.EndToEndCPU = median(runs, func(r runResult) float64 { return r.EndToEndCPU })
			c.TCPCPU = median(runs, func(r runResult) float64 { return r.TCPSenderCPU + r.TCPReceiverCPU })
			if mode != "std" {
				std := s.pick("std", dir)
				ratio := func(f func(runResult) float64) float64 { return roundRatio(runs, std, f) }
				c.GbpsRatio = ratio(func(r runResult) float64 { return r.Gbps })
				c.SenderRatio = ratio(func(r runResult) float64 { return r.SenderCPU })
				c.ReceiverRatio = ratio(func(r runResult) float64 { return r.ReceiverCPU })
				c.EndToEndRatio = ratio(func(r runResult) float64 { return r.EndToEndCPU })
				targets(&c, func(ok bool, what string) {
					if ok {
						s.Met++
						c.Targets = append(c.Targets, "ok:"+what)
						return
					}
					c.Targets = append(c.Targets, "MISS:"+what)
					s.Missed = append(s.Missed, fmt.Sprintf("%s %s: %s (throughput %.2fx, sender CPU %.2fx, end-to-end CPU %.2fx)",
						pairName(c.SendBind, c.RecvBind), dirName(dir), what, c.GbpsRatio, c.SenderRatio, c.EndToEndRatio))
				})
			}
			s.Cells = append(s.Cells, c)
		}
	}
}

// pick returns the runs of one mode and direction, in round order.
func (s *summary) pick(mode, dir string) []runResult {
	var rs []runResult
	for _, r := range s.Runs {
		if r.Mode == mode && r.Dir == dir {
			rs = append(rs, r)
		}
	}
	return rs
}

// The targets of issue 15. Every cell keeps at least 0.97x StdNetBind's
// throughput; wgbatch on both ends sends with at most 0.75x the CPU, moves
// a GiB with at most 0.85x in all, at 1.10x the throughput or more; a
// StdNetBind peer talking to a wgbatch peer gains: the pair spends less CPU
// per GiB than two StdNetBinds.
func targets(c *cell, check func(ok bool, what string)) {
	check(c.GbpsRatio >= 0.97, "throughput>=0.97x")
	switch c.Mode {
	case "batch":
		check(c.SenderRatio <= 0.75, "sender CPU<=0.75x")
		check(c.EndToEndRatio <= 0.85, "end-to-end CPU<=0.85x")
		check(c.GbpsRatio >= 1.10, "throughput>=1.10x")
	case "mixed":
		check(c.EndToEndRatio < 1, "gains (end-to-end CPU<1x)")
	}
}

// roundRatio returns the median over rounds of f(runs) over f(std): run i
// of each ran in the same round, back to back.
func roundRatio(runs, std []runResult, f func(runResult) float64) float64 {
	var rs []runResult
	for i := range min(len(runs), len(std)) {
		if d := f(std[i]); d > 0 {
			rs = append(rs, runResult{Gbps: f(runs[i]) / d})
		}
	}
	return median(rs, func(r runResult) float64 { return r.Gbps })
}

func median(rs []runResult, f func(runResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (b *bench) header(s summary) {
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
	fmt.Fprintf(w, "load average at start: %s, at end: %s\n", s.LoadStart, s.LoadEnd)
	fmt.Fprintf(w, "\ntargets met: %d, missed: %d\n", s.Met, len(s.Missed))
	for _, m := range s.Missed {
		fmt.Fprintln(w, "  missed:", m)
	}
}

func rounds(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds", n)
}
