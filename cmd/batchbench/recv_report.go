package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
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

// recvModeResult is one receive mode's samples and summaries.
type recvModeResult struct {
	Mode        string       `json:"mode"`
	Unavailable string       `json:"unavailable,omitempty"`
	Samples     []recvSample `json:"samples"`

	PerSec        bench.Stat  `json:"dgrams_per_sec"`
	CPUNsPerDgram bench.Stat  `json:"cpu_ns_per_dgram"`
	PerCall       bench.Stat  `json:"dgrams_per_call"`
	AllocsPerCall bench.Stat  `json:"allocs_per_call"`
	LostFraction  bench.Stat  `json:"lost_fraction"`
	Ratios        []recvRatio `json:"ratios"`
}

func (m *recvModeResult) ratio(ref string) *recvRatio {
	for i := range m.Ratios {
		if m.Ratios[i].Ref == ref {
			return &m.Ratios[i]
		}
	}
	return nil
}

// recvReport is everything one -recv run produced; -json prints it as is.
type recvReport struct {
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
	CPUClock string            `json:"cpu_clock"`
	Modes    []*recvModeResult `json:"modes"`
	// Targets are issue 9's goals for the receive path, checked on this
	// run; a speed target twice, by dgrams/s and by CPU/dgram (figRate,
	// then figCPU).
	Targets []bench.Target `json:"targets,omitempty"`
}

// What a speed target's Got is: the same-round ratio by rate, and by CPU
// time per datagram (the reference's over the mode's), which is steadier on
// a shared machine.
const (
	figRate = "dgrams/s ratio, median of rounds"
	figCPU  = "CPU/dgram ratio (the reference's over this mode's), median of rounds"
)

const recvCPUClock = "the reading thread's user+system time (CLOCK_THREAD_CPUTIME_ID\n" +
	"on its locked thread); loopback delivery is the sender's work, not counted here"

func (r *recvReport) mode(name string) *recvModeResult {
	for _, m := range r.Modes {
		if m.Mode == name {
			return m
		}
	}
	return nil
}

// finish fills in the summaries, ratios and targets from the samples.
func (r *recvReport) finish() {
	for _, m := range r.Modes {
		ss := m.samples()
		col := func(f func(recvSample) float64) bench.Stat { return bench.Of(ss, f) }
		m.PerSec = col(recvSample.perSec)
		m.CPUNsPerDgram = col(recvSample.cpuPerDgram)
		m.PerCall = col(recvSample.perCall)
		m.AllocsPerCall = col(recvSample.allocsPerCall)
		m.LostFraction = col(recvSample.lostFraction)
	}
	for _, m := range r.Modes {
		m.Ratios = nil
		for _, ref := range recvRefs {
			if rm := r.mode(ref); rm != nil {
				rate, cpu := recvRatios(m, rm)
				m.Ratios = append(m.Ratios, recvRatio{Ref: ref, Rate: rate, CPU: cpu})
			}
		}
	}
	r.Targets = r.checkTargets()
}

// samples returns m's samples as the engine keeps them, by round.
func (m *recvModeResult) samples() []bench.Sample[recvSample] {
	ss := make([]bench.Sample[recvSample], len(m.Samples))
	for i, s := range m.Samples {
		ss[i] = bench.Sample[recvSample]{Round: s.Round, Value: s}
	}
	return ss
}

// recvRatios compares m with ref by dgrams/s (m's over ref's) and by CPU
// per datagram (ref's over m's), so that both read "x times better".
func recvRatios(m, ref *recvModeResult) (rate, cpu *bench.Stat) {
	a, b := m.samples(), ref.samples()
	return bench.Ratio(a, b, bench.Over(recvSample.perSec)),
		bench.Ratio(a, b, func(a, b recvSample) float64 { return div(b.cpuPerDgram(), a.cpuPerDgram()) })
}

// checkTargets checks issue 9's targets that this run's traffic and modes
// measure: the ratios on drained GSO-sent traffic, the cost of GRO on plain
// traffic, and zero allocations in the batchconn modes.
func (r *recvReport) checkTargets() []bench.Target {
	var ts []bench.Target
	add := func(mode, ref string, want float64) {
		m, rm := r.mode(mode), r.mode(ref)
		if m == nil || rm == nil {
			return
		}
		rate, cpu := recvRatios(m, rm)
		if rate == nil || cpu == nil {
			return
		}
		name := fmt.Sprintf("%s >= %.2fx %s", mode, want, ref)
		ts = append(ts, bench.Check(name, figRate, rate.Median, bench.AtLeast, want),
			bench.Check(name, figCPU, cpu.Median, bench.AtLeast, want))
	}
	if !r.Config.Live && r.Config.Traffic == trafficGSO {
		// Without GRO, batchconn and x/net both read near the system
		// call's ceiling (the C drain in ceiling/recvmmsg.c): batchconn
		// at 1.04-1.10x its CPU per datagram, x/net, which allocates twice
		// per datagram, at 1.4-1.7x. No ratio between them is worth
		// chasing; batchconn must not be the slower. GRO is the gain.
		add(modeBatchconnRead, modeRawRecvmmsg, 0.90)
		add(modeBatchconnRead, modeXNetReadBatch, 1.00)
		add(modeBatchconnGRO, modeXNetReadBatch, 4)
		add(modeBatchconnReadFromGRO, modeReadFrom, 3)
	}
	if r.Config.Traffic == trafficPlain {
		add(modeBatchconnGRO, modeBatchconnRead, 0.85)
	}
	// The median round, not the worst: allocations are counted process-wide,
	// and the runtime's own (a new M when a locked thread parks, a timer
	// heap growing) land in a few rounds whatever the mode does.
	for _, m := range r.Modes {
		if strings.HasPrefix(m.Mode, "batchconn") && len(m.Samples) > 0 {
			ts = append(ts, bench.Check(m.Mode+" allocates nothing per call", "allocs/call, median of rounds",
				m.AllocsPerCall.Median, bench.Exactly, 0))
		}
	}
	return ts
}

// writeGobench prints one benchmark line per mode and round, as benchstat
// reads them: an op is one datagram.
func (r *recvReport) writeGobench(w io.Writer) error {
	c := &r.Config
	bench.WriteGobenchHeader(w, "github.com/batchconn/batchconn/cmd/batchbench", r.Env.Env, "kernel", r.Env.Kernel)
	how := "drain"
	if c.Live {
		how = "live"
	}
	for round := 1; round <= c.Count; round++ {
		for _, m := range r.Modes {
			for _, s := range m.Samples {
				if s.Round != round {
					continue
				}
				bench.WriteGobenchLine(w, fmt.Sprintf("BenchmarkRecv/mode=%s/traffic=%s/how=%s/net=%s/size=%d/batch=%d-%d",
					m.Mode, c.Traffic, how, c.Network, c.Size, c.Batch, r.Env.GOMAXPROCS), s.Read,
					bench.Unit{Value: div(float64(s.Elapsed.Nanoseconds()), float64(s.Read)), Name: "ns/op", Decimals: 1},
					bench.Unit{Value: perSec(s.Bytes, s.Elapsed) / 1e6, Name: "MB/s", Decimals: 2},
					bench.Unit{Value: s.perSec(), Name: "dgrams/s"},
					bench.Unit{Value: s.cpuPerDgram(), Name: "cpu-ns/dgram", Decimals: 1},
					bench.Unit{Value: s.perCall(), Name: "dgrams/call", Decimals: 2},
					bench.Unit{Value: s.allocsPerCall(), Name: "allocs/call", Decimals: 3})
			}
		}
	}
	for _, m := range r.Modes {
		if m.Unavailable != "" {
			fmt.Fprintf(w, "# %s: %s\n", m.Mode, m.Unavailable)
		}
	}
	return nil
}

// describe says in one line what was measured.
func (r *recvReport) describe() string {
	c := &r.Config
	traffic := fmt.Sprintf("%d-byte datagrams sent one per message", c.Size)
	if c.Traffic == trafficGSO {
		traffic = fmt.Sprintf("%d-byte datagrams sent %d per UDP GSO send", c.Size, c.Segs)
	}
	how := fmt.Sprintf("draining a socket pre-filled with %d datagrams", c.Fill)
	if c.Live {
		how = fmt.Sprintf("reading while a sender sends for %v", c.Duration)
	}
	return fmt.Sprintf("batchbench -recv: %s over loopback (%s), %s; up to %d messages per batch read",
		traffic, c.Network, how, c.Batch)
}

// writeTable prints the results for a person to read.
func (r *recvReport) writeTable(w io.Writer, quiet bool) error {
	c := &r.Config
	if !quiet {
		fmt.Fprintln(w, r.describe())
		fmt.Fprintf(w, "%s, %s %s/%s, %d CPUs, SO_RCVBUF %d; %d round(s), modes alternating\n\n",
			r.Env.Kernel, r.Env.GoVersion, r.Env.GOOS, r.Env.GOARCH, r.Env.NumCPU, r.Env.RcvBuf, c.Count)
	}
	head := []string{"mode", "dgrams/s", "(min–max)", "CPU/dgram", "dgrams/call", "allocs/call"}
	if c.Live {
		head = append(head, "lost")
	}
	for _, ref := range recvRefs {
		head = append(head, "vs "+shortRef(ref))
	}
	for _, ref := range recvRefs {
		head = append(head, "CPU vs "+shortRef(ref))
	}
	rows := [][]string{head}
	for _, m := range r.Modes {
		if len(m.Samples) == 0 {
			row := []string{m.Mode, "-"}
			for len(row) < len(head)-1 {
				row = append(row, "")
			}
			rows = append(rows, append(row, "unavailable"))
			continue
		}
		row := []string{
			m.Mode,
			bench.Rate(m.PerSec.Median),
			"(" + bench.Rate(m.PerSec.Min) + "–" + bench.Rate(m.PerSec.Max) + ")",
			bench.Nanos(m.CPUNsPerDgram.Median),
			strconv.FormatFloat(m.PerCall.Median, 'f', 1, 64),
			bench.Allocs(m.AllocsPerCall.Median),
		}
		if c.Live {
			row = append(row, bench.Pct(m.LostFraction.Median))
		}
		for _, ref := range recvRefs {
			row = append(row, timesOf(m.ratio(ref), false))
		}
		for _, ref := range recvRefs {
			row = append(row, timesOf(m.ratio(ref), true))
		}
		rows = append(rows, row)
	}
	bench.WriteTable(w, 1, rows)
	if quiet {
		return nil
	}
	fmt.Fprintln(w)
	for _, m := range r.Modes {
		if m.Unavailable != "" {
			fmt.Fprintf(w, "%s: %s\n", m.Mode, m.Unavailable)
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "receive targets (speed: by dgrams/s, then by CPU/dgram; allocations: median round):")
		for i := 0; i < len(r.Targets); i++ {
			t := r.Targets[i]
			if t.Figure != figRate || i+1 == len(r.Targets) {
				fmt.Fprintf(w, "  %-52s %s allocs/call %s\n", t.Name, strconv.FormatFloat(t.Got, 'g', 2, 64), t.Verdict())
				continue
			}
			c := r.Targets[i+1] // its twin by CPU/dgram
			i++
			fmt.Fprintf(w, "  %-52s rate %5.2fx %-6s  CPU %5.2fx %s\n", t.Name, t.Got, t.Verdict(), c.Got, c.Verdict())
		}
	}
	lost, warm := "", "warm-up: one read call, not measured.\n"
	if c.Live {
		lost = "lost: the share of the round's datagrams the socket dropped because the reader fell behind.\n"
		warm = fmt.Sprintf("warm-up: the read calls, not measured, that read the %d or so datagrams queued before the sender starts.\n", liveWarmup(1))
	}
	fmt.Fprint(w, `
dgrams/s: datagrams read per second, median of the rounds (min–max), timed from the first datagram
read after the warm-up to the last; CPU/dgram: `+r.CPUClock+`.
dgrams/call: datagrams per read call; allocs/call: heap allocations per call after the warm-up.
`+warm+lost+`vs X: this mode's dgrams/s over X's in the same round; CPU vs X: X's CPU/dgram over this mode's in
the same round (both: higher is better), medians of the rounds. X: readfrom, xnet-readbatch, raw-recvmmsg.
`)
	return nil
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

func timesOf(r *recvRatio, cpu bool) string {
	switch {
	case r == nil:
		return "-"
	case cpu:
		return bench.Times(r.CPU)
	}
	return bench.Times(r.Rate)
}

// chart is the receive table as bars of datagrams/s read.
func (r *recvReport) chart() bench.Chart {
	c := &r.Config
	traffic, how := "plain traffic (one datagram per send)", "drained from a pre-filled socket"
	detail := fmt.Sprintf("loopback (%s); the socket pre-filled with %d datagrams, then read alone", c.Network, c.Fill)
	if c.Traffic == trafficGSO {
		traffic = fmt.Sprintf("GSO-sent traffic (%d datagrams per send)", c.Segs)
	}
	if c.Live {
		how = "read live"
		detail = fmt.Sprintf("loopback (%s); read while a sender sends for %v", c.Network, c.Duration)
	}
	detail += fmt.Sprintf("; up to %d messages per batch read", c.Batch)
	ch := bench.Chart{
		Title: fmt.Sprintf("batchbench -recv: %d-byte datagrams, %s, %s", c.Size, traffic, how),
		Subtitle: detail + "\n" + fmt.Sprintf("%s, %s, %d CPUs; %d rounds, modes alternating; ratios: medians of same-round ratios; grey: the raw recvmmsg loop (a reference)",
			r.Env.Kernel, r.Env.GoVersion, r.Env.NumCPU, c.Count),
		Unit: "datagrams/s read",
	}
	best, bestMode := 0.0, ""
	for _, m := range r.Modes {
		if len(m.Samples) > 0 && m.Mode != modeRawRecvmmsg && m.PerSec.Median > best {
			best, bestMode = m.PerSec.Median, m.Mode
		}
	}
	for _, m := range r.Modes {
		b := bench.Bar{Label: m.Mode, Ceiling: m.Mode == modeRawRecvmmsg, Best: m.Mode == bestMode}
		if len(m.Samples) == 0 {
			b.Unavailable = m.Unavailable
			if b.Unavailable == "" {
				b.Unavailable = "no samples"
			}
		} else {
			b.Value, b.Min, b.Max = m.PerSec.Median, m.PerSec.Min, m.PerSec.Max
			var notes []string
			for _, ref := range recvRefs {
				if ref == m.Mode {
					continue
				}
				if rr := m.ratio(ref); rr != nil && rr.Rate != nil {
					notes = append(notes, bench.Times(rr.Rate)+" "+shortRef(ref))
				}
			}
			b.Note = strings.Join(notes, " · ") + "  (" + bench.Nanos(m.CPUNsPerDgram.Median) + " CPU/dgram)"
		}
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}
