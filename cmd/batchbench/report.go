package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// A sample is what one mode did in one round.
type sample struct {
	Round      int           `json:"round"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Batches    uint64        `json:"batches"`
	Sent       uint64        `json:"sent"`           // datagrams the kernel accepted
	Delivered  uint64        `json:"delivered"`      // datagrams the receiver got
	Bytes      uint64        `json:"bytes"`          // payload bytes sent
	CPU        time.Duration `json:"cpu_ns"`         // sender thread user+system time
	ProcessCPU time.Duration `json:"process_cpu_ns"` // whole process, receiver included
	// Context switches of the sender thread: voluntary ones are waits (a full
	// socket buffer), involuntary ones are other threads taking the CPU.
	VoluntarySwitches   int64  `json:"voluntary_switches"`
	InvoluntarySwitches int64  `json:"involuntary_switches"`
	Syscalls            uint64 `json:"syscalls"`  // send system calls
	Mallocs             uint64 `json:"mallocs"`   // heap allocations during the send loop
	GSOSends            uint64 `json:"gso_sends"` // sends the kernel took as one UDP GSO message
	// SetupMallocs are the allocations of the first, unmeasured batch on the
	// fresh socket: one-time set-up, not steady-state cost.
	SetupMallocs uint64  `json:"setup_mallocs"`
	WarmupSent   uint64  `json:"warmup_batches"` // unmeasured batches before the round (1)
	SentPerSec   float64 `json:"sent_per_sec"`
}

func (s sample) sentPerSec() float64      { return perSec(s.Sent, s.Elapsed) }
func (s sample) deliveredPerSec() float64 { return perSec(s.Delivered, s.Elapsed) }
func (s sample) gbitPerSec() float64      { return perSec(s.Bytes*8, s.Elapsed) / 1e9 }
func (s sample) cpuPerDgram() float64     { return div(float64(s.CPU.Nanoseconds()), float64(s.Sent)) }
func (s sample) syscallsPerDgram() float64 {
	return div(float64(s.Syscalls), float64(s.Sent))
}
func (s sample) allocsPerBatch() float64   { return div(float64(s.Mallocs), float64(s.Batches)) }
func (s sample) gsoSendsPerBatch() float64 { return div(float64(s.GSOSends), float64(s.Batches)) }
func (s sample) lostFraction() float64 {
	if s.Sent == 0 || s.Delivered >= s.Sent {
		return 0
	}
	return float64(s.Sent-s.Delivered) / float64(s.Sent)
}

func perSec(n uint64, d time.Duration) float64 { return div(float64(n), d.Seconds()) }

var div = bench.Div

// sendDoc is what -json prints: the run's setting, then the modes.
type sendDoc struct {
	Config struct {
		Size       int           `json:"size"`
		Batch      int           `json:"batch"`
		Dests      int           `json:"dests"`
		Duration   time.Duration `json:"duration_ns"`
		Count      int           `json:"count"`
		Modes      []string      `json:"modes"`
		Network    string        `json:"network"` // udp4 or udp6
		Path       string        `json:"path"`    // loopback or veth
		SegsPerGSO int           `json:"segments_per_gso_send"`
	} `json:"config"`
	Env struct {
		bench.Env
		RcvBuf int `json:"receiver_rcvbuf_bytes"`
		MTU    int `json:"mtu,omitempty"`
	} `json:"env"`
	GSO struct {
		Available bool `json:"available"` // the kernel takes UDP_SEGMENT sends on this path
		Used      bool `json:"used"`      // batchconn-gso made GSO sends
		// SegmentTooBig: the path takes GSO, but not segments of -size bytes
		// (each must fit the path MTU); Available is then false.
		SegmentTooBig bool   `json:"segment_exceeds_mtu,omitempty"`
		Why           string `json:"why,omitempty"`
	} `json:"gso"`
	CPUClock string `json:"cpu_clock"` // what CPU time measures
	// SenderCPUShare is the median over all samples of sender CPU time over
	// elapsed time: well under 1 means other load took the CPU.
	SenderCPUShare float64 `json:"sender_cpu_share"`
	// Modes: per mode its samples and each column's summary (sent_per_sec,
	// ..., vs_writeto and vs_raw, the ratios against writeto and against
	// raw_ref, its ceiling), and the round with the median sent/s.
	Modes  []bench.ModeJSON `json:"modes"`
	Winner string           `json:"winner,omitempty"` // fastest non-raw mode by median datagrams/s sent
}

// rawRefOf names the raw mode that is mode's ceiling.
func rawRefOf(mode string) string {
	if mode == modeBatchconnGSO || mode == modeRawGSO {
		return modeRawGSO
	}
	return modeRawSendmmsg
}

func isRaw(mode string) bool { return mode == modeRawSendmmsg || mode == modeRawGSO }

// lostTotal is the share of all of s's datagrams the receiver did not get.
func lostTotal(s *bench.Series[sample]) float64 {
	var sent, delivered uint64
	for _, smp := range s.Samples {
		sent, delivered = sent+smp.Value.Sent, delivered+min(smp.Value.Delivered, smp.Value.Sent)
	}
	if sent == 0 {
		return 0
	}
	return 1 - div(float64(delivered), float64(sent))
}

// report lays out the send table, its JSON, gobench lines and chart.
func (d *sendDoc) report(res *bench.Results[sample]) *bench.Report[sample] {
	c := &d.Config
	rep := &bench.Report[sample]{
		Results: res, Env: d.Env.Env, Ceiling: isRaw, Mark: true,
		Columns: []bench.Column[sample]{
			{Name: "sent/s", JSON: "sent_per_sec", Value: sample.sentPerSec, Format: bench.Rate, Range: true},
			{Name: "delivered/s", JSON: "delivered_per_sec", Value: sample.deliveredPerSec, Format: bench.Rate, At: "sent/s"},
			{Name: "lost", JSON: "lost_fraction", Value: sample.lostFraction, Format: bench.Pct, At: "sent/s"},
			{Name: "Gbit/s", JSON: "gbit_per_sec", Value: sample.gbitPerSec, Format: bench.Fixed(2)},
			{Name: "CPU/dgram", JSON: "cpu_ns_per_dgram", Value: sample.cpuPerDgram, Format: bench.Nanos},
			{Name: "syscalls/dgram", JSON: "syscalls_per_dgram", Value: sample.syscallsPerDgram, Format: bench.Fixed(3)},
			{Name: "allocs/batch", JSON: "allocs_per_batch", Value: sample.allocsPerBatch, Format: bench.Allocs},
			{Name: "GSO sends/batch", JSON: "gso_sends_per_batch", Value: sample.gsoSendsPerBatch, Hidden: true},
			{Name: "vs writeto", JSON: "vs_writeto", Of: "sent/s", Vs: bench.Ref(modeWriteTo)},
			{Name: "vs raw", JSON: "vs_raw", Of: "sent/s", Vs: rawRefOf},
		},
		Chart: bench.Chart{
			Title: fmt.Sprintf("batchbench: sending %d-byte datagrams in batches of %d over %s (%s)", c.Size, c.Batch, c.Path, c.Network),
			Subtitle: fmt.Sprintf("%s, %s, %d CPUs; %d rounds x %v per mode, modes alternating\nratios: medians of same-round ratios; grey: the raw limit, green: the fastest usable mode",
				d.Env.Kernel, d.Env.GoVersion, d.Env.NumCPU, c.Count, c.Duration),
			Unit:   "datagrams/s sent",
			Footer: "GSO: " + bench.Truncate(d.gsoLine(), 140),
		},
		Pkg: "github.com/batchconn/batchconn/cmd/batchbench", GobenchHeader: []string{"kernel", d.Env.Kernel, "gso", d.gsoLine()},
		// An op is one batch.
		Gobench: func(s *bench.Series[sample], v sample) (string, uint64, []bench.Unit) {
			return fmt.Sprintf("BenchmarkSend/mode=%s/path=%s/net=%s/size=%d/batch=%d/dests=%d-%d",
					s.Mode, c.Path, c.Network, c.Size, c.Batch, c.Dests, d.Env.GOMAXPROCS), v.Batches, []bench.Unit{
					{Value: div(float64(v.Elapsed.Nanoseconds()), float64(v.Batches)), Name: "ns/op", Decimals: 1},
					{Value: perSec(v.Bytes, v.Elapsed) / 1e6, Name: "MB/s", Decimals: 2},
					{Value: v.sentPerSec(), Name: "sent/s"},
					{Value: v.deliveredPerSec(), Name: "delivered/s"},
					{Value: v.cpuPerDgram(), Name: "cpu-ns/dgram", Decimals: 1},
					{Value: v.syscallsPerDgram(), Name: "syscalls/dgram", Decimals: 4},
					{Value: v.allocsPerBatch(), Name: "allocs/op", Decimals: 3}}
		},
		// The table's sent/s, delivered/s and lost all come from the round
		// with the median sent/s, so they reconcile.
		ModeJSON: func(s *bench.Series[sample]) []bench.KV {
			ms, _ := bench.MedianSample(s.Samples, sample.sentPerSec)
			kv := []bench.KV{{Key: "lost_fraction_total", Value: lostTotal(s)}, {Key: "median_round", Value: ms.Round},
				{Key: "median_round_delivered_per_sec", Value: ms.Value.deliveredPerSec()},
				{Key: "median_round_lost_fraction", Value: ms.Value.lostFraction()}}
			if res.Get(s.Group, rawRefOf(s.Mode)) != nil {
				kv = append(kv, bench.KV{Key: "raw_ref", Value: rawRefOf(s.Mode)})
			}
			return kv
		},
	}
	var shares []float64
	for _, s := range res.Series {
		for _, smp := range s.Samples {
			shares = append(shares, div(smp.Value.CPU.Seconds(), smp.Value.Elapsed.Seconds()))
		}
	}
	d.SenderCPUShare, d.Winner = bench.Summarize(shares).Median, rep.Fastest()
	rep.JSON = func(modes []bench.ModeJSON, _ []bench.Target) any { d.Modes = modes; return d }

	dests := "1 destination"
	if c.Dests > 1 {
		dests = fmt.Sprintf("%d destinations (runs of %d)", c.Dests, runLen(c.Batch, c.Dests))
	}
	path := "loopback"
	if c.Path == "veth" {
		path = fmt.Sprintf("a veth pair between two network namespaces (MTU %d)", d.Env.MTU)
	}
	rep.Head = fmt.Sprintf("batchbench: %d-byte datagrams in batches of %d to %s over %s, %s\n%s; %d round(s) x %v per mode, modes alternating\n\n",
		c.Size, c.Batch, dests, path, c.Network, d.Env.Env, c.Count, c.Duration)
	rep.Notes = func(w io.Writer) { d.notes(w, rep) }
	return rep
}

// notes is what the table says under its rows: how GSO went, the fastest
// mode, and how to read the columns.
func (d *sendDoc) notes(w io.Writer, rep *bench.Report[sample]) {
	fmt.Fprintf(w, "GSO: %s", d.gsoLine())
	if st := rep.Figure("", modeBatchconnGSO, "GSO sends/batch"); d.GSO.Used && st != nil {
		fmt.Fprintf(w, " (batchconn-gso: %.1f GSO sends per batch, at most %d datagrams each)", st.Median, d.Config.SegsPerGSO)
	}
	fmt.Fprintln(w)
	if win := d.Winner; win != "" {
		fmt.Fprintf(w, "fastest: %s", win)
		if st := rep.Figure("", win, "vs writeto"); st != nil && win != modeWriteTo {
			fmt.Fprintf(w, ", %.2fx writeto", st.Median)
		}
		if st := rep.Figure("", win, "vs raw"); st != nil && !isRaw(win) {
			fmt.Fprintf(w, ", %.2fx %s (the limit)", st.Median, rawRefOf(win))
		}
		fmt.Fprintln(w)
	}
	if b, x := rep.Results.Get("", modeBatchconn), rep.Results.Get("", modeXNet); b != nil && x != nil {
		if st := bench.Ratio(b.Samples, x.Samples, bench.Over(sample.sentPerSec)); st != nil {
			fmt.Fprintf(w, "batchconn (GSO off) vs xnet WriteBatch: %.2fx (%.2f–%.2f)\n", st.Median, st.Min, st.Max)
		}
	}
	var lost []string
	for _, s := range rep.Results.Series {
		if l := lostTotal(s); l > 0 {
			lost = append(lost, s.Mode+" "+bench.Pct(l))
		}
	}
	if len(lost) > 0 {
		fmt.Fprintf(w, "lost over all rounds: %s\n", strings.Join(lost, ", "))
	}
	if d.SenderCPUShare > 0 && d.SenderCPUShare < 0.8 {
		fmt.Fprintf(w, "note: the sender thread ran only %.0f%% of the time (median): other load on this machine\n"+
			"      takes the CPU; sent/s swings with it, CPU/dgram much less.\n", d.SenderCPUShare*100)
	}
	fmt.Fprint(w, `
sent/s: datagrams the kernel accepted per second in the median round (min–max of the rounds);
delivered/s: what the receiver read with recvmmsg in that same round; lost: the share of that round's
datagrams dropped because the receiver fell behind (delivered/s = sent/s x (1 - lost)).
Gbit/s: payload sent. CPU/dgram: `+d.CPUClock+`.
vs writeto, vs raw: this mode's sent/s over that mode's in the same round, median of the rounds;
raw is raw-gso for the GSO modes, raw-sendmmsg for the others.
`)
}

// gsoLine says in a few words whether GSO was available and used, and why not.
func (d *sendDoc) gsoLine() string {
	g := &d.GSO
	switch {
	case g.Used:
		return "available and used"
	case g.Available:
		return "available but not used: " + g.Why
	case g.SegmentTooBig:
		return "not usable for this -size: " + g.Why
	default:
		return "not available: " + g.Why
	}
}

// segmentTooBigError says that UDP GSO works on the path but not for
// datagrams of this size: the kernel refuses (EINVAL or EMSGSIZE) a GSO segment whose
// packet would not fit the path MTU, because GSO never fragments.
type segmentTooBigError struct{ size, packet, mtu, largest int }

func (e *segmentTooBigError) Error() string {
	return fmt.Sprintf("a %d-byte datagram is a %d-byte packet, larger than the path MTU (%d), and a UDP GSO segment must fit in one packet; GSO takes -size %d or less here",
		e.size, e.packet, e.mtu, e.largest)
}

// segmentFits returns a *segmentTooBigError when size-byte datagrams make
// packets larger than mtu.
func segmentFits(size, mtu int, v6 bool) error {
	hdr := 20 + 8 // IPv4 and UDP headers
	if v6 {
		hdr = 40 + 8
	}
	if size+hdr <= mtu {
		return nil
	}
	return &segmentTooBigError{size: size, packet: size + hdr, mtu: mtu, largest: mtu - hdr}
}

// runLen is how many consecutive datagrams of a batch go to one destination.
func runLen(batch, dests int) int { return (batch + dests - 1) / dests }
