package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// A stat summarizes one metric over the rounds.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// summarize takes the median as the middle value, the lower middle one for an
// even count: always a value some round produced, never an average of two.
func summarize(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Sorted(slices.Values(xs))
	return stat{Median: s[(len(s)-1)/2], Min: s[0], Max: s[len(s)-1]}
}

// medianSample is the round whose sent/s is the median (as summarize picks
// it). The table's sent/s, delivered/s and lost all come from this one round,
// so they reconcile: delivered/s = sent/s × (1 − lost).
func medianSample(samples []sample) (sample, bool) {
	if len(samples) == 0 {
		return sample{}, false
	}
	s := slices.SortedStableFunc(slices.Values(samples), func(a, b sample) int {
		return cmp.Compare(a.sentPerSec(), b.sentPerSec())
	})
	return s[(len(s)-1)/2], true
}

// modeResult is one mode's samples and their summaries.
type modeResult struct {
	Mode        string   `json:"mode"`
	Unavailable string   `json:"unavailable,omitempty"` // why the mode did not run, or stopped
	Samples     []sample `json:"samples"`

	SentPerSec      stat    `json:"sent_per_sec"`
	DeliveredPerSec stat    `json:"delivered_per_sec"`
	LostFraction    stat    `json:"lost_fraction"`       // per round
	LostTotal       float64 `json:"lost_fraction_total"` // over all rounds
	// MedianRound is the round with the median sent/s; the table's sent/s,
	// delivered/s and lost are that round's, so they reconcile.
	MedianRound      int     `json:"median_round"`
	MedianDelivered  float64 `json:"median_round_delivered_per_sec"`
	MedianLost       float64 `json:"median_round_lost_fraction"`
	GbitPerSec       stat    `json:"gbit_per_sec"`
	CPUNsPerDgram    stat    `json:"cpu_ns_per_dgram"`
	SyscallsPerDgram stat    `json:"syscalls_per_dgram"`
	AllocsPerBatch   stat    `json:"allocs_per_batch"`
	GSOSendsPerBatch stat    `json:"gso_sends_per_batch"`

	// Ratios of datagrams/s sent, the median over rounds of this mode's
	// round divided by the reference's same round (paired, so drift cancels).
	VsWriteTo *stat  `json:"vs_writeto,omitempty"`
	RawRef    string `json:"raw_ref,omitempty"` // the raw mode that is this mode's ceiling
	VsRaw     *stat  `json:"vs_raw,omitempty"`
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
		GoVersion  string `json:"go_version"`
		GOOS       string `json:"goos"`
		GOARCH     string `json:"goarch"`
		Kernel     string `json:"kernel"`
		CPU        string `json:"cpu"`
		NumCPU     int    `json:"num_cpu"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		RcvBuf     int    `json:"receiver_rcvbuf_bytes"`
		MTU        int    `json:"mtu,omitempty"`
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
		col := func(f func(sample) float64) stat {
			xs := make([]float64, len(m.Samples))
			for i, s := range m.Samples {
				xs[i] = f(s)
			}
			return summarize(xs)
		}
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
		if ms, ok := medianSample(m.Samples); ok {
			m.MedianRound, m.MedianDelivered, m.MedianLost = ms.Round, ms.deliveredPerSec(), ms.lostFraction()
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
	r.SenderCPUShare = summarize(shares).Median
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

// ratio is m's datagrams/s sent over ref's, paired by round.
func ratio(m, ref *modeResult) *stat {
	if m == nil || ref == nil {
		return nil
	}
	var xs []float64
	for _, s := range m.Samples {
		for _, t := range ref.Samples {
			if t.Round == s.Round && t.sentPerSec() > 0 {
				xs = append(xs, s.sentPerSec()/t.sentPerSec())
			}
		}
	}
	if len(xs) == 0 {
		return nil
	}
	st := summarize(xs)
	return &st
}

func (r *report) mode(name string) *modeResult {
	for _, m := range r.Modes {
		if m.Mode == name {
			return m
		}
	}
	return nil
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeGobench prints one benchmark line per mode and round, in the format
// benchstat reads: an op is one batch.
func (r *report) writeGobench(w io.Writer) error {
	c := &r.Config
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/batchconn/batchconn/cmd/batchbench\n", r.Env.GOOS, r.Env.GOARCH)
	if r.Env.CPU != "" {
		fmt.Fprintf(w, "cpu: %s\n", r.Env.CPU)
	}
	fmt.Fprintf(w, "kernel: %s\ngso: %s\n", r.Env.Kernel, r.gsoLine())
	for round := 1; round <= c.Count; round++ {
		for _, m := range r.Modes {
			for _, s := range m.Samples {
				if s.Round != round {
					continue
				}
				fmt.Fprintf(w, "BenchmarkSend/mode=%s/path=%s/net=%s/size=%d/batch=%d/dests=%d-%d\t%d\t%.1f ns/op\t%.2f MB/s\t%.0f sent/s\t%.0f delivered/s\t%.1f cpu-ns/dgram\t%.4f syscalls/dgram\t%.3f allocs/op\n",
					m.Mode, c.Path, c.Network, c.Size, c.Batch, c.Dests, r.Env.GOMAXPROCS,
					s.Batches, div(float64(s.Elapsed.Nanoseconds()), float64(s.Batches)),
					perSec(s.Bytes, s.Elapsed)/1e6, s.sentPerSec(), s.deliveredPerSec(),
					s.cpuPerDgram(), s.syscallsPerDgram(), s.allocsPerBatch())
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
			rate(m.SentPerSec.Median),
			"(" + rate(m.SentPerSec.Min) + "–" + rate(m.SentPerSec.Max) + ")",
			rate(m.MedianDelivered),
			pct(m.MedianLost),
			strconv.FormatFloat(m.GbitPerSec.Median, 'f', 2, 64),
			nanos(m.CPUNsPerDgram.Median),
			strconv.FormatFloat(m.SyscallsPerDgram.Median, 'f', 3, 64),
			allocs(m.AllocsPerBatch.Median),
			times(m.VsWriteTo),
			times(m.VsRaw),
			mark,
		})
	}
	writeAligned(w, rows)

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
			lost = append(lost, m.Mode+" "+pct(m.LostTotal))
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

func rate(x float64) string {
	switch {
	case x >= 1e6:
		return strconv.FormatFloat(x/1e6, 'f', 2, 64) + "M"
	case x >= 1e3:
		return strconv.FormatFloat(x/1e3, 'f', 0, 64) + "k"
	default:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func nanos(ns float64) string {
	if ns >= 10000 {
		return strconv.FormatFloat(ns/1000, 'f', 1, 64) + "µs"
	}
	return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
}

func allocs(a float64) string {
	switch {
	case a == math.Trunc(a):
		return strconv.FormatFloat(a, 'f', 0, 64)
	case a < 0.01:
		return strconv.FormatFloat(a, 'g', 2, 64) // not "0.00": some calls allocate
	}
	return strconv.FormatFloat(a, 'f', 2, 64)
}

func times(s *stat) string {
	if s == nil {
		return "-"
	}
	return strconv.FormatFloat(s.Median, 'f', 2, 64) + "x"
}

// writeAligned prints rows as columns: the first left-aligned, the rest right-aligned.
func writeAligned(w io.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			switch {
			case i == 0:
				b.WriteString(cell + pad)
			case i == len(row)-1:
				b.WriteString("  " + cell) // the marker column: left-aligned, no trailing pad
			default:
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
