package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// A recvSample is what one receive mode did in one round.
type recvSample struct {
	Round   int           `json:"round"`
	Elapsed time.Duration `json:"elapsed_ns"` // first to last datagram read (measured part)
	Read    uint64        `json:"read"`       // datagrams read in the measured part
	Bytes   uint64        `json:"bytes"`      // their payload bytes
	Calls   uint64        `json:"calls"`      // read calls in the measured part
	CPU     time.Duration `json:"cpu_ns"`     // reading thread user+system time
	Mallocs uint64        `json:"mallocs"`    // heap allocations in the measured part
	// Sent and Lost: datagrams the sender sent in the round (warm-up
	// included) and those the receiver never got.
	Sent uint64 `json:"sent"`
	Lost uint64 `json:"lost"`
	// SetupMallocs are the unmeasured warm-up calls' allocations.
	SetupMallocs uint64 `json:"setup_mallocs"`
}

// liveWarmup is how many datagrams (whole sends of unit) a live round queues
// for its warm-up calls to read before the sender starts: enough plain
// datagrams for a reader to grow what it grows lazily to its full size
// (batchconn's GRO slots double from 8 to 64 while plain datagrams fill
// them all), so that one-time step is not counted as a per-call allocation.
func liveWarmup(unit int) int { return max(256/unit, 1) * unit }

func (s recvSample) perSec() float64      { return perSec(s.Read, s.Elapsed) }
func (s recvSample) cpuPerDgram() float64 { return div(float64(s.CPU.Nanoseconds()), float64(s.Read)) }
func (s recvSample) allocsPerCall() float64 {
	return div(float64(s.Mallocs), float64(s.Calls))
}
func (s recvSample) perCall() float64      { return div(float64(s.Read), float64(s.Calls)) }
func (s recvSample) lostFraction() float64 { return div(float64(s.Lost), float64(s.Sent)) }

// recvRefs are the modes every receive mode is compared with, in column order.
var recvRefs = []string{modeReadFrom, modeXNetReadBatch, modeRawRecvmmsg}

// recvRatio is one mode against one reference, two ways: datagrams/s over the
// reference's, and the reference's CPU/dgram over this mode's (so both read
// "x times better"), each the median over rounds of same-round ratios.
type recvRatio struct {
	Ref  string      `json:"ref"`
	Rate *bench.Stat `json:"rate,omitempty"`
	CPU  *bench.Stat `json:"cpu,omitempty"`
}

// recvDoc is what -json prints for a -recv run.
type recvDoc struct {
	Config struct {
		Size     int           `json:"size"`
		Batch    int           `json:"batch"` // messages per read call
		Traffic  string        `json:"traffic"`
		Segs     int           `json:"segments_per_gso_send,omitempty"`
		Live     bool          `json:"live"`
		Fill     int           `json:"fill,omitempty"` // datagrams per drain
		Duration time.Duration `json:"duration_ns,omitempty"`
		Count    int           `json:"count"`
		Modes    []string      `json:"modes"`
		Network  string        `json:"network"`
	} `json:"config"`
	Env struct {
		bench.Env
		RcvBuf int `json:"rcvbuf_bytes"`
	} `json:"env"`
	CPUClock string `json:"cpu_clock"`
	// Modes: per mode its samples, each column's summary (dgrams_per_sec,
	// ...) and its ratios against each reference.
	Modes []bench.ModeJSON `json:"modes"`
	// Targets are issue 9's goals for the receive path, checked on this
	// run; a speed target twice, by dgrams/s and by CPU/dgram (figRate,
	// then figCPU).
	Targets []bench.Target `json:"targets,omitempty"`
}

// What a speed target's Got is: the same-round ratio by rate, and by CPU
// time per datagram (the reference's over the mode's), which is steadier on
// a shared machine.
const (
	figRate   = "dgrams/s ratio, median of rounds"
	figCPU    = "CPU/dgram ratio (the reference's over this mode's), median of rounds"
	figAllocs = "allocs/call ratio against readfrom, median of rounds"
)

const recvCPUClock = "the reading thread's user+system time (CLOCK_THREAD_CPUTIME_ID\n" +
	"on its locked thread); loopback delivery is the sender's work, not counted here"

// report lays out the receive table, its JSON, gobench lines and chart.
func (d *recvDoc) report(res *bench.Results[recvSample]) *bench.Report[recvSample] {
	c := &d.Config
	cols := []bench.Column[recvSample]{
		{Name: "dgrams/s", JSON: "dgrams_per_sec", Value: recvSample.perSec, Format: bench.Rate, Range: true},
		{Name: "CPU/dgram", JSON: "cpu_ns_per_dgram", Value: recvSample.cpuPerDgram, Format: bench.Nanos, Chart: true},
		{Name: "dgrams/call", JSON: "dgrams_per_call", Value: recvSample.perCall, Format: bench.Fixed(1)},
		{Name: "allocs/call", JSON: "allocs_per_call", Value: recvSample.allocsPerCall, Format: bench.Allocs},
		{Name: "lost", JSON: "lost_fraction", Value: recvSample.lostFraction, Format: bench.Pct, Hidden: !c.Live},
		{Name: "allocs vs readfrom", Of: "allocs/call", Vs: bench.Ref(modeReadFrom), Hidden: true}, // for a goal
	}
	// The ratios against each reference, and against batchconn-read for a
	// target on plain traffic (not a column of the table).
	refs := recvRefs
	if c.Traffic == trafficPlain {
		refs = append(refs[:len(refs):len(refs)], modeBatchconnRead)
	}
	for _, cpu := range []bool{false, true} {
		for _, ref := range refs {
			col := bench.Column[recvSample]{Name: "vs " + shortRef(ref), Of: "dgrams/s", Vs: bench.Ref(ref), Hidden: ref == modeBatchconnRead}
			if cpu {
				col.Name, col.Of, col.Inverse = "CPU "+col.Name, "CPU/dgram", true
			}
			cols = append(cols, col)
		}
	}
	traffic := fmt.Sprintf("%d-byte datagrams sent one per message", c.Size)
	chartTraffic, how := "plain traffic (one datagram per send)", "drained from a pre-filled socket"
	if c.Traffic == trafficGSO {
		traffic = fmt.Sprintf("%d-byte datagrams sent %d per UDP GSO send", c.Size, c.Segs)
		chartTraffic = fmt.Sprintf("GSO-sent traffic (%d datagrams per send)", c.Segs)
	}
	reading := fmt.Sprintf("draining a socket pre-filled with %d datagrams", c.Fill)
	detail := fmt.Sprintf("loopback (%s); the socket pre-filled with %d datagrams, then read alone", c.Network, c.Fill)
	if c.Live {
		how, reading = "read live", fmt.Sprintf("reading while a sender sends for %v", c.Duration)
		detail = fmt.Sprintf("loopback (%s); read while a sender sends for %v", c.Network, c.Duration)
	}
	rep := &bench.Report[recvSample]{
		Results: res, Env: d.Env.Env, Columns: cols, Goals: d.goals(),
		Ceiling: func(mode string) bool { return mode == modeRawRecvmmsg },
		Head: fmt.Sprintf("batchbench -recv: %s over loopback (%s), %s; up to %d messages per batch read\n%s, SO_RCVBUF %d; %d round(s), modes alternating\n\n",
			traffic, c.Network, reading, c.Batch, d.Env.Env, d.Env.RcvBuf, c.Count),
		Chart: bench.Chart{
			Title: fmt.Sprintf("batchbench -recv: %d-byte datagrams, %s, %s", c.Size, chartTraffic, how),
			Subtitle: fmt.Sprintf("%s; up to %d messages per batch read\n%s, %s, %d CPUs; %d rounds, modes alternating; ratios: medians of same-round ratios; grey: the raw recvmmsg loop (a reference)",
				detail, c.Batch, d.Env.Kernel, d.Env.GoVersion, d.Env.NumCPU, c.Count),
			Unit: "datagrams/s read",
		},
		Pkg: "github.com/batchconn/batchconn/cmd/batchbench", GobenchHeader: []string{"kernel", d.Env.Kernel},
		// An op is one datagram.
		Gobench: func(s *bench.Series[recvSample], v recvSample) (string, uint64, []bench.Unit) {
			how := "drain"
			if c.Live {
				how = "live"
			}
			return fmt.Sprintf("BenchmarkRecv/mode=%s/traffic=%s/how=%s/net=%s/size=%d/batch=%d-%d",
					s.Mode, c.Traffic, how, c.Network, c.Size, c.Batch, d.Env.GOMAXPROCS), v.Read, []bench.Unit{
					{Value: div(float64(v.Elapsed.Nanoseconds()), float64(v.Read)), Name: "ns/op", Decimals: 1},
					{Value: perSec(v.Bytes, v.Elapsed) / 1e6, Name: "MB/s", Decimals: 2},
					{Value: v.perSec(), Name: "dgrams/s"},
					{Value: v.cpuPerDgram(), Name: "cpu-ns/dgram", Decimals: 1},
					{Value: v.perCall(), Name: "dgrams/call", Decimals: 2},
					{Value: v.allocsPerCall(), Name: "allocs/call", Decimals: 3}}
		},
	}
	rep.ModeJSON = func(s *bench.Series[recvSample]) []bench.KV {
		var rs []recvRatio
		for _, ref := range recvRefs {
			if res.Get(s.Group, ref) != nil {
				rs = append(rs, recvRatio{Ref: ref, Rate: rep.Figure(s.Group, s.Mode, "vs "+shortRef(ref)),
					CPU: rep.Figure(s.Group, s.Mode, "CPU vs "+shortRef(ref))})
			}
		}
		return []bench.KV{{Key: "ratios", Value: rs}}
	}
	rep.JSON = func(modes []bench.ModeJSON, ts []bench.Target) any { d.Modes, d.Targets = modes, ts; return d }
	rep.Notes = func(w io.Writer) { d.notes(w, rep.Targets()) }
	return rep
}

// goals are issue 9's targets that this run's traffic and modes measure: the
// ratios on drained GSO-sent traffic, the cost of GRO on plain traffic, and
// zero allocations in the batchconn modes.
func (d *recvDoc) goals() []bench.Goal {
	var gs []bench.Goal
	speed := func(mode, ref string, want float64) {
		name := fmt.Sprintf("%s >= %.2fx %s", mode, want, ref)
		gs = append(gs, bench.Goal{Mode: mode, Column: "vs " + shortRef(ref), Cmp: bench.AtLeast, Want: want, Name: name, Figure: figRate},
			bench.Goal{Mode: mode, Column: "CPU vs " + shortRef(ref), Cmp: bench.AtLeast, Want: want, Name: name, Figure: figCPU})
	}
	if !d.Config.Live && d.Config.Traffic == trafficGSO {
		// Without GRO, batchconn and x/net both read near the system
		// call's ceiling (the C drain in ceiling/recvmmsg.c): batchconn
		// at 1.04-1.10x its CPU per datagram, x/net, which allocates twice
		// per datagram, at 1.4-1.7x. No ratio between them is worth
		// chasing; batchconn must not be the slower. GRO is the gain.
		speed(modeBatchconnRead, modeRawRecvmmsg, 0.90)
		speed(modeBatchconnRead, modeXNetReadBatch, 1.00)
		speed(modeBatchconnGRO, modeXNetReadBatch, 4)
		speed(modeBatchconnReadFromGRO, modeReadFrom, 3)
	}
	if d.Config.Traffic == trafficPlain {
		speed(modeBatchconnGRO, modeBatchconnRead, 0.85)
	}
	// The median round, not the worst: allocations are counted process-wide,
	// and the runtime's own (a new M when a locked thread parks, a timer
	// heap growing) land in a few rounds whatever the mode does.
	for _, m := range []string{modeBatchconnRead, modeBatchconnGRO} {
		gs = append(gs, bench.Goal{Mode: m, Column: "allocs/call", Cmp: bench.Exactly, Want: 0, Name: m + " allocates nothing per call"})
	}
	// ReadFrom returns a *net.UDPAddr of its own, as the UDPConn's does
	// (R10): it may allocate what readfrom allocates, and no more (1%
	// for the runtime's own, counted process-wide).
	return append(gs, bench.Goal{Mode: modeBatchconnReadFromGRO, Column: "allocs vs readfrom", Cmp: bench.AtMost, Want: 1.01,
		Name: modeBatchconnReadFromGRO + " allocates no more than readfrom", Figure: figAllocs})
}

// notes prints the targets, a speed target's two figures on one line, and
// how to read the columns.
func (d *recvDoc) notes(w io.Writer, ts []bench.Target) {
	if len(ts) > 0 {
		fmt.Fprintln(w, "receive targets (speed: by dgrams/s, then by CPU/dgram; allocations: median round):")
		for i := 0; i < len(ts); i++ {
			t := ts[i]
			switch {
			case t.Figure == figAllocs:
				fmt.Fprintf(w, "  %-52s %.2fx its allocs/call %s\n", t.Name, t.Got, t.Verdict())
				continue
			case t.Figure != figRate || i+1 == len(ts):
				fmt.Fprintf(w, "  %-52s %s allocs/call %s\n", t.Name, strconv.FormatFloat(t.Got, 'g', 2, 64), t.Verdict())
				continue
			}
			c := ts[i+1] // its twin by CPU/dgram
			i++
			fmt.Fprintf(w, "  %-52s rate %5.2fx %-6s  CPU %5.2fx %s\n", t.Name, t.Got, t.Verdict(), c.Got, c.Verdict())
		}
	}
	lost, warm := "", "warm-up: one read call, not measured.\n"
	if d.Config.Live {
		lost = "lost: the share of the round's datagrams the socket dropped because the reader fell behind.\n"
		warm = fmt.Sprintf("warm-up: the read calls, not measured, that read the %d or so datagrams queued before the sender starts.\n", liveWarmup(1))
	}
	fmt.Fprint(w, `
dgrams/s: datagrams read per second, median of the rounds (min–max), timed from the first datagram
read after the warm-up to the last; CPU/dgram: `+d.CPUClock+`.
dgrams/call: datagrams per read call; allocs/call: heap allocations per call after the warm-up.
`+warm+lost+`vs X: this mode's dgrams/s over X's in the same round; CPU vs X: X's CPU/dgram over this mode's in
the same round (both: higher is better), medians of the rounds. X: readfrom, xnet-readbatch, raw-recvmmsg.
`)
}

func shortRef(mode string) string {
	switch mode {
	case modeXNetReadBatch:
		return "xnet"
	case modeRawRecvmmsg:
		return "raw"
	}
	return mode
}
