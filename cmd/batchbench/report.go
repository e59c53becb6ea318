package main

import (
	"fmt"
	"io"
	"strconv"
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
func (s sample) allocsPerBatch() float64 { return div(float64(s.Mallocs), float64(s.Batches)) }
func (s sample) lostFraction() float64 {
	if s.Sent == 0 || s.Delivered >= s.Sent {
		return 0
	}
	return float64(s.Sent-s.Delivered) / float64(s.Sent)
}

func perSec(n uint64, d time.Duration) float64 { return div(float64(n), d.Seconds()) }

var div = bench.Div

// modeResult is one mode's samples and their summaries.
type modeResult struct {
	Mode        string   `json:"mode"`
	Unavailable string   `json:"unavailable,omitempty"` // why the mode did not run, or stopped
	Samples     []sample `json:"samples"`

	SentPerSec      bench.Stat `json:"sent_per_sec"`
	DeliveredPerSec bench.Stat `json:"delivered_per_sec"`
	LostFraction    bench.Stat `json:"lost_fraction"`       // per round
	LostTotal       float64    `json:"lost_fraction_total"` // over all rounds
	// MedianRound is the round with the median sent/s; the table's sent/s,
	// delivered/s and lost are that round's, so they reconcile.
	MedianRound      int        `json:"median_round"`
	MedianDelivered  float64    `json:"median_round_delivered_per_sec"`
	MedianLost       float64    `json:"median_round_lost_fraction"`
	GbitPerSec       bench.Stat `json:"gbit_per_sec"`
	CPUNsPerDgram    bench.Stat `json:"cpu_ns_per_dgram"`
	SyscallsPerDgram bench.Stat `json:"syscalls_per_dgram"`
	AllocsPerBatch   bench.Stat `json:"allocs_per_batch"`
	GSOSendsPerBatch bench.Stat `json:"gso_sends_per_batch"`

	// Ratios of datagrams/s sent, the median over rounds of this mode's
	// round divided by the reference's same round (paired, so drift cancels).
	VsWriteTo *bench.Stat `json:"vs_writeto,omitempty"`
	RawRef    string      `json:"raw_ref,omitempty"` // the raw mode that is this mode's ceiling
	VsRaw     *bench.Stat `json:"vs_raw,omitempty"`
}

// report is everything one run produced; -json prints it as is.
type report struct {
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
	SenderCPUShare float64       `json:"sender_cpu_share"`
	Modes          []*modeResult `json:"modes"`
	Winner         string        `json:"winner,omitempty"` // fastest non-raw mode by median datagrams/s sent
}

// rawRefOf names the raw mode that is mode's ceiling.
func rawRefOf(mode string) string {
	if mode == modeBatchconnGSO || mode == modeRawGSO {
		return modeRawGSO
	}
	return modeRawSendmmsg
}

func isRaw(mode string) bool { return mode == modeRawSendmmsg || mode == modeRawGSO }

// finish fills in the summaries, ratios and winner from the samples.
func (r *report) finish() {
	byMode := map[string]*modeResult{}
	for _, m := range r.Modes {
		byMode[m.Mode] = m
		ss := m.samples()
		col := func(f func(sample) float64) bench.Stat { return bench.Of(ss, f) }
		m.SentPerSec = col(sample.sentPerSec)
		m.DeliveredPerSec = col(sample.deliveredPerSec)
		m.LostFraction = col(sample.lostFraction)
		var sent, delivered uint64
		for _, s := range m.Samples {
			sent, delivered = sent+s.Sent, delivered+min(s.Delivered, s.Sent)
		}
		m.LostTotal = 1 - div(float64(delivered), float64(sent))
		if sent == 0 {
			m.LostTotal = 0
		}
		// The table's sent/s, delivered/s and lost all come from the round
		// with the median sent/s, so they reconcile: delivered/s = sent/s ×
		// (1 − lost).
		if ms, ok := bench.MedianSample(ss, sample.sentPerSec); ok {
			m.MedianRound, m.MedianDelivered, m.MedianLost = ms.Round, ms.Value.deliveredPerSec(), ms.Value.lostFraction()
		}
		m.GbitPerSec = col(sample.gbitPerSec)
		m.CPUNsPerDgram = col(sample.cpuPerDgram)
		m.SyscallsPerDgram = col(sample.syscallsPerDgram)
		m.AllocsPerBatch = col(sample.allocsPerBatch)
		m.GSOSendsPerBatch = col(func(s sample) float64 { return div(float64(s.GSOSends), float64(s.Batches)) })
		for i := range m.Samples {
			m.Samples[i].SentPerSec = m.Samples[i].sentPerSec()
		}
	}
	var shares []float64
	for _, m := range r.Modes {
		for _, s := range m.Samples {
			shares = append(shares, div(s.CPU.Seconds(), s.Elapsed.Seconds()))
		}
	}
	r.SenderCPUShare = bench.Summarize(shares).Median
	for _, m := range r.Modes {
		m.VsWriteTo = ratio(m, byMode[modeWriteTo])
		if ref := byMode[rawRefOf(m.Mode)]; ref != nil {
			m.RawRef = ref.Mode
			m.VsRaw = ratio(m, ref)
		}
	}
	r.Winner = ""
	best := -1.0
	for _, onlyUsable := range []bool{true, false} {
		for _, m := range r.Modes {
			if len(m.Samples) == 0 || (onlyUsable && isRaw(m.Mode)) {
				continue
			}
			if m.SentPerSec.Median > best {
				best, r.Winner = m.SentPerSec.Median, m.Mode
			}
		}
		if r.Winner != "" {
			break
		}
	}
}

// samples returns m's samples as the engine keeps them, by round.
func (m *modeResult) samples() []bench.Sample[sample] {
	ss := make([]bench.Sample[sample], len(m.Samples))
	for i, s := range m.Samples {
		ss[i] = bench.Sample[sample]{Round: s.Round, Value: s}
	}
	return ss
}

// ratio is m's datagrams/s sent over ref's: the median of same-round ratios.
func ratio(m, ref *modeResult) *bench.Stat {
	if m == nil || ref == nil {
		return nil
	}
	return bench.Ratio(m.samples(), ref.samples(), bench.Over(sample.sentPerSec))
}

func (r *report) mode(name string) *modeResult {
	for _, m := range r.Modes {
		if m.Mode == name {
			return m
		}
	}
	return nil
}

// writeGobench prints one benchmark line per mode and round, in the format
// benchstat reads: an op is one batch.
func (r *report) writeGobench(w io.Writer) error {
	c := &r.Config
	bench.WriteGobenchHeader(w, "github.com/batchconn/batchconn/cmd/batchbench", r.Env.Env, "kernel", r.Env.Kernel, "gso", r.gsoLine())
	for round := 1; round <= c.Count; round++ {
		for _, m := range r.Modes {
			for _, s := range m.Samples {
				if s.Round != round {
					continue
				}
				bench.WriteGobenchLine(w, fmt.Sprintf("BenchmarkSend/mode=%s/path=%s/net=%s/size=%d/batch=%d/dests=%d-%d",
					m.Mode, c.Path, c.Network, c.Size, c.Batch, c.Dests, r.Env.GOMAXPROCS), s.Batches,
					bench.Unit{Value: div(float64(s.Elapsed.Nanoseconds()), float64(s.Batches)), Name: "ns/op", Decimals: 1},
					bench.Unit{Value: perSec(s.Bytes, s.Elapsed) / 1e6, Name: "MB/s", Decimals: 2},
					bench.Unit{Value: s.sentPerSec(), Name: "sent/s"},
					bench.Unit{Value: s.deliveredPerSec(), Name: "delivered/s"},
					bench.Unit{Value: s.cpuPerDgram(), Name: "cpu-ns/dgram", Decimals: 1},
					bench.Unit{Value: s.syscallsPerDgram(), Name: "syscalls/dgram", Decimals: 4},
					bench.Unit{Value: s.allocsPerBatch(), Name: "allocs/op", Decimals: 3})
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

// gsoLine says in a few words whether GSO was available and used, and why not.
func (r *report) gsoLine() string {
	g := &r.GSO
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

// writeTable prints the results for a person to read.
func (r *report) writeTable(w io.Writer, quiet bool) error {
	c := &r.Config
	if !quiet {
		dests := "1 destination"
		if c.Dests > 1 {
			dests = fmt.Sprintf("%d destinations (runs of %d)", c.Dests, runLen(c.Batch, c.Dests))
		}
		path := "loopback"
		if c.Path == "veth" {
			path = fmt.Sprintf("a veth pair between two network namespaces (MTU %d)", r.Env.MTU)
		}
		fmt.Fprintf(w, "batchbench: %d-byte datagrams in batches of %d to %s over %s, %s\n",
			c.Size, c.Batch, dests, path, c.Network)
		fmt.Fprintf(w, "%s, %s %s/%s, %d CPUs; %d round(s) x %v per mode, modes alternating\n\n",
			r.Env.Kernel, r.Env.GoVersion, r.Env.GOOS, r.Env.GOARCH, r.Env.NumCPU, c.Count, c.Duration)
	}

	rows := [][]string{{"mode", "sent/s", "(min–max)", "delivered/s", "lost", "Gbit/s", "CPU/dgram", "syscalls/dgram", "allocs/batch", "vs writeto", "vs raw", ""}}
	for _, m := range r.Modes {
		if len(m.Samples) == 0 {
			rows = append(rows, []string{m.Mode, "-", "", "-", "", "", "", "", "", "", "", "unavailable"})
			continue
		}
		mark := ""
		if m.Mode == r.Winner {
			mark = "<- fastest"
		}
		rows = append(rows, []string{
			m.Mode,
			bench.Rate(m.SentPerSec.Median),
			"(" + bench.Rate(m.SentPerSec.Min) + "–" + bench.Rate(m.SentPerSec.Max) + ")",
			bench.Rate(m.MedianDelivered),
			bench.Pct(m.MedianLost),
			strconv.FormatFloat(m.GbitPerSec.Median, 'f', 2, 64),
			bench.Nanos(m.CPUNsPerDgram.Median),
			strconv.FormatFloat(m.SyscallsPerDgram.Median, 'f', 3, 64),
			bench.Allocs(m.AllocsPerBatch.Median),
			bench.Times(m.VsWriteTo),
			bench.Times(m.VsRaw),
			mark,
		})
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
	fmt.Fprintf(w, "GSO: %s", r.gsoLine())
	if g := r.mode(modeBatchconnGSO); r.GSO.Used && g != nil {
		fmt.Fprintf(w, " (batchconn-gso: %.1f GSO sends per batch, at most %d datagrams each)", g.GSOSendsPerBatch.Median, c.SegsPerGSO)
	}
	fmt.Fprintln(w)
	if r.Winner != "" {
		wm := r.mode(r.Winner)
		fmt.Fprintf(w, "fastest: %s", r.Winner)
		if wm.VsWriteTo != nil && r.Winner != modeWriteTo {
			fmt.Fprintf(w, ", %.2fx writeto", wm.VsWriteTo.Median)
		}
		if wm.VsRaw != nil && !isRaw(r.Winner) {
			fmt.Fprintf(w, ", %.2fx %s (the limit)", wm.VsRaw.Median, wm.RawRef)
		}
		fmt.Fprintln(w)
	}
	if b, x := r.mode(modeBatchconn), r.mode(modeXNet); b != nil && x != nil {
		if st := ratio(b, x); st != nil {
			fmt.Fprintf(w, "batchconn (GSO off) vs xnet WriteBatch: %.2fx (%.2f–%.2f)\n", st.Median, st.Min, st.Max)
		}
	}
	var lost []string
	for _, m := range r.Modes {
		if m.LostTotal > 0 {
			lost = append(lost, m.Mode+" "+bench.Pct(m.LostTotal))
		}
	}
	if len(lost) > 0 {
		fmt.Fprintf(w, "lost over all rounds: %s\n", strings.Join(lost, ", "))
	}
	if r.SenderCPUShare > 0 && r.SenderCPUShare < 0.8 {
		fmt.Fprintf(w, "note: the sender thread ran only %.0f%% of the time (median): other load on this machine\n"+
			"      takes the CPU; sent/s swings with it, CPU/dgram much less.\n", r.SenderCPUShare*100)
	}
	fmt.Fprint(w, `
sent/s: datagrams the kernel accepted per second in the median round (min–max of the rounds);
delivered/s: what the receiver read with recvmmsg in that same round; lost: the share of that round's
datagrams dropped because the receiver fell behind (delivered/s = sent/s x (1 - lost)).
Gbit/s: payload sent. CPU/dgram: `+r.CPUClock+`.
vs writeto, vs raw: this mode's sent/s over that mode's in the same round, median of the rounds;
raw is raw-gso for the GSO modes, raw-sendmmsg for the others.
`)
	return nil
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

// chart is the send table as bars of datagrams/s sent.
func (r *report) chart() bench.Chart {
	c := &r.Config
	ch := bench.Chart{
		Title: fmt.Sprintf("batchbench: sending %d-byte datagrams in batches of %d over %s (%s)", c.Size, c.Batch, c.Path, c.Network),
		Subtitle: fmt.Sprintf("%s, %s, %d CPUs; %d rounds x %v per mode, modes alternating\nratios: medians of same-round ratios; grey: the raw limit, green: the fastest usable mode",
			r.Env.Kernel, r.Env.GoVersion, r.Env.NumCPU, c.Count, c.Duration),
		Unit:   "datagrams/s sent",
		Footer: "GSO: " + bench.Truncate(r.gsoLine(), 140),
	}
	for _, m := range r.Modes {
		b := bench.Bar{Label: m.Mode, Ceiling: isRaw(m.Mode), Best: m.Mode == r.Winner}
		if len(m.Samples) == 0 {
			b.Unavailable = m.Unavailable
			if b.Unavailable == "" {
				b.Unavailable = "no samples"
			}
		} else {
			b.Value, b.Min, b.Max = m.SentPerSec.Median, m.SentPerSec.Min, m.SentPerSec.Max
			var notes []string
			if m.VsWriteTo != nil && m.Mode != modeWriteTo {
				notes = append(notes, bench.Times(m.VsWriteTo)+" writeto")
			}
			if m.VsRaw != nil && !isRaw(m.Mode) {
				notes = append(notes, bench.Times(m.VsRaw)+" "+m.RawRef)
			}
			b.Note = strings.Join(notes, " · ")
		}
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}
