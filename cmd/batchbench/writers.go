package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// The writers subcommand measures what existing code that writes one
// datagram at a time gains: G goroutines calling WriteTo on one socket, a
// *net.UDPConn against a *batchconn.Conn (group commit) and a Conn with a
// write queue (WithWriteQueue).
//
//	go run ./cmd/batchbench writers [-writers 1,8,64] [-size 1200] [-gso=false] [-queue 256KiB] ...
//	go run ./cmd/batchbench writers -writers 1 -dests 50 -burst 10   # an SFU's forwarding loop
//
// For each number of writers it measures two destination sets: every
// goroutine writing to the same destinations, and each goroutine to its
// own. With -dests D -burst K each writer writes bursts of K datagrams to
// each of D destinations, packet-major (packet k to every destination, then
// packet k+1), as an SFU forwards a frame to its subscribers; by default
// (1 and 1) one datagram after another to one destination. The sockets take
// turns within each round, in an order that rotates round by round, so a
// shared machine's drift hits them alike, and the table shows medians of
// the same-round ratios against the *net.UDPConn, and the targets of
// issue 23.

// The writers modes besides UDPConn: a Conn, and a Conn with a write queue.
const (
	modeConn  = "batchconn"
	modeQueue = "queue"
)

// writersConfig is what the writers subcommand's flags ask for.
type writersConfig struct {
	writers  []int
	size     int
	duration time.Duration
	count    int
	gso      bool
	queue    int    // the queue mode's WithWriteQueue bytes; 0: no queue mode
	queueArg string // -queue as given, for the title
	dests    int    // destinations per writer
	burst    int    // datagrams to each destination per burst
}

// Bounds of the writers flags: enough to show where group commit stops
// helping, few enough not to exhaust the machine (a sink socket per
// destination, per writer with "each").
const (
	maxWriters = 4096
	maxSinks   = 16384
	maxBurst   = 1024
	// queueOverhead is what a datagram takes in the queue beyond its
	// payload (WithWriteQueue's doc).
	queueOverhead = 40
)

func parseWritersFlags(args []string, stderr io.Writer) (writersConfig, error) {
	cfg := writersConfig{}
	fs := flag.NewFlagSet("batchbench writers", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	list := fs.String("writers", "1,8,64", "comma-separated numbers of writing goroutines")
	fs.IntVar(&cfg.size, "size", 1200, "datagram payload `bytes` (at most 65507)")
	fs.DurationVar(&cfg.duration, "duration", 200*time.Millisecond, "sending time per socket per round")
	fs.IntVar(&cfg.count, "count", 9, "rounds; the sockets take turns within each")
	fs.BoolVar(&cfg.gso, "gso", true, "let the batchconn.Conn coalesce batches into UDP GSO sends")
	fs.StringVar(&cfg.queueArg, "queue", "256KiB", "the queue mode's write queue (WithWriteQueue), in `bytes` (KiB, MiB suffixes); 0: no queue mode")
	fs.IntVar(&cfg.dests, "dests", 1, "destinations each writer writes to, in turn")
	fs.IntVar(&cfg.burst, "burst", 1, "datagrams each writer writes to each destination per burst, packet-major")
	if err := bench.Parse(fs, args, stderr, "usage: batchbench writers [flags]\n\n"+
		"Measures G goroutines calling WriteTo on a *net.UDPConn, on a *batchconn.Conn (group commit)\n"+
		"and on a Conn with a write queue.\n\n"); err != nil {
		return cfg, err
	}
	var err error
	if cfg.writers, err = bench.ParseCounts("-writers", *list, "number of goroutines", maxWriters, true); err != nil {
		return cfg, err
	}
	if cfg.queueArg != "0" {
		if cfg.queue, err = bench.ParseQueue("-queue", cfg.queueArg); err != nil {
			return cfg, err
		}
	}
	sinks := cfg.dests
	for _, g := range cfg.writers {
		sinks = max(sinks, g*cfg.dests)
	}
	switch {
	case cfg.size < 1:
		return cfg, bench.Usagef("-size %d: a datagram needs at least 1 byte of payload", cfg.size)
	case cfg.size > maxPayload4:
		return cfg, bench.Usagef("-size %d: the largest UDP payload over IPv4 is %d bytes", cfg.size, maxPayload4)
	case cfg.duration <= 0:
		return cfg, bench.Usagef("-duration %v: must be positive", cfg.duration)
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, bench.Usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case cfg.queue > 0 && cfg.queue < cfg.size+queueOverhead:
		return cfg, bench.Usagef("-queue %s: holds no %d-byte datagram (each takes its size and %d bytes); 0 leaves the queue mode out",
			cfg.queueArg, cfg.size, queueOverhead)
	case cfg.dests < 1:
		return cfg, bench.Usagef("-dests %d: need at least 1 destination", cfg.dests)
	case sinks > maxSinks:
		return cfg, bench.Usagef("-dests %d: %d writers, each with destinations of its own, need %d sockets, more than %d", cfg.dests, sinks/cfg.dests, sinks, maxSinks)
	case cfg.burst < 1 || cfg.burst > maxBurst:
		return cfg, bench.Usagef("-burst %d: must be between 1 and %d datagrams", cfg.burst, maxBurst)
	}
	return cfg, nil
}

// writersMain runs the writers subcommand.
func writersMain(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseWritersFlags(args, stderr)
	if err != nil {
		return err
	}
	return runWriters(cfg, stdout, stderr)
}

// writersSample is one socket's measurement in one round.
type writersSample struct {
	datagrams uint64
	syscalls  uint64
	elapsed   time.Duration
	cpu       time.Duration // process CPU time (user+system), every thread's
}

func (s writersSample) rate() float64 { return bench.Div(float64(s.datagrams), s.elapsed.Seconds()) }
func (s writersSample) cpuPer() float64 {
	return bench.Div(float64(s.cpu.Nanoseconds()), float64(s.datagrams))
}
func (s writersSample) perSyscall() float64 {
	return bench.Div(float64(s.datagrams), float64(s.syscalls))
}

// A writersCell is one row of the table: a number of writers, and whether
// each writes to destinations of its own or all to the same.
type writersCell struct {
	writers int
	perG    bool
	dests   int // destinations per writer
}

// String is the cell's writers and dests columns.
func (c writersCell) String() string {
	d := "one"
	if c.dests > 1 {
		d = strconv.Itoa(c.dests)
	}
	if c.perG {
		d = strings.TrimPrefix(d+" each", "one ")
	}
	return fmt.Sprintf("%d %s", c.writers, d)
}

// printWriters prints the table: a row per cell (writers, destinations),
// for each socket its datagrams/s and CPU per datagram, and for each but the
// first (the *net.UDPConn) the ratios against the first and its datagrams
// per system call; then the targets.
func printWriters(w io.Writer, cfg writersConfig, cells []writersCell, modes []string, res *bench.Results[writersSample]) {
	shape := fmt.Sprintf("%d-byte datagrams", cfg.size)
	if cfg.dests > 1 || cfg.burst > 1 {
		shape += fmt.Sprintf(" in bursts of %d to each of %d destinations (packet-major)", cfg.burst, cfg.dests)
	}
	gso := onOff(cfg.gso)
	if cfg.queue > 0 {
		gso += ", queue " + cfg.queueArg
	}
	fmt.Fprintf(w, "G goroutines calling WriteTo, %s, loopback, %d rounds of %v per socket, alternating; batchconn GSO %s\n",
		shape, cfg.count, cfg.duration, gso)
	ref, others := modes[0], modes[1:]
	fmt.Fprintf(w, "datagrams/s and CPU per datagram are medians over rounds; ratios are medians of same-round ratios (%s / %s)\n",
		strings.Join(others, ", "), ref)
	fmt.Fprintf(w, "CPU: the whole process's user+system time (getrusage RUSAGE_SELF), receivers excluded (nothing reads)\n\n")
	head := []string{"writers", "dests"}
	for _, fig := range []string{"dg/s", "CPU"} {
		head = append(head, ref+" "+fig)
		for _, m := range others {
			head = append(head, m+" "+fig, "ratio")
		}
	}
	for _, m := range others {
		if len(others) == 1 {
			head = append(head, "dg/syscall")
		} else {
			head = append(head, m+" dg/syscall")
		}
	}
	rows := [][]string{head}
	for _, c := range cells {
		row := strings.Fields(c.String())
		row = []string{row[0], strings.Join(row[1:], " ")}
		base := res.Get(c.String(), ref).Samples
		for _, fig := range []struct {
			f      func(writersSample) float64
			format func(float64) string
		}{
			{writersSample.rate, bench.Fixed(0)},
			{writersSample.cpuPer, func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) + "ns" }},
		} {
			row = append(row, fig.format(bench.Of(base, fig.f).Median))
			for _, m := range others {
				ss := res.Get(c.String(), m).Samples
				row = append(row, fig.format(bench.Of(ss, fig.f).Median), bench.Times(bench.Ratio(ss, base, bench.Over(fig.f))))
			}
		}
		for _, m := range others {
			row = append(row, bench.Fixed(1)(bench.Of(res.Get(c.String(), m).Samples, writersSample.perSyscall).Median))
		}
		rows = append(rows, row)
	}
	bench.WriteTable(w, 2, rows)
	fmt.Fprintln(w)
	bench.WriteTargets(w, writersTargets(cells, modes, res))
}

// writersGoals are issue 23's targets, against the UDPConn in each cell
// with that many writers: one writer gains nothing and loses nothing
// without the queue, and with it at least doubles the datagrams/s at half
// the CPU per datagram; 8 and 64 writers keep group commit's gains, with
// the queue and without ("": every mode).
var writersGoals = []struct {
	writers   int
	mode, fig string // fig: "dg/s" or "CPU" (per datagram)
	cmp       bench.Cmp
	want      float64
}{
	{1, modeConn, "dg/s", bench.AtLeast, 0.97}, {1, modeConn, "CPU", bench.AtMost, 1.03},
	{1, modeQueue, "dg/s", bench.AtLeast, 2}, {1, modeQueue, "CPU", bench.AtMost, 0.5},
	{8, "", "dg/s", bench.AtLeast, 1.5}, {64, "", "dg/s", bench.AtLeast, 1.4},
}

// writersTargets checks writersGoals in every cell, for the modes that ran.
func writersTargets(cells []writersCell, modes []string, res *bench.Results[writersSample]) []bench.Target {
	var ts []bench.Target
	for _, c := range cells {
		base := res.Get(c.String(), modes[0]).Samples
		for _, m := range modes[1:] {
			for _, g := range writersGoals {
				if g.writers != c.writers || (g.mode != "" && g.mode != m) {
					continue
				}
				f := writersSample.rate
				if g.fig == "CPU" {
					f = writersSample.cpuPer
				}
				st := bench.Ratio(res.Get(c.String(), m).Samples, base, bench.Over(f))
				if st == nil {
					continue
				}
				t := bench.Check(fmt.Sprintf("%s %s%s%.2fx", m, g.fig, g.cmp, g.want), g.fig+" ratio against "+modes[0]+", median of rounds",
					st.Median, g.cmp, g.want)
				t.Where = c.String()
				ts = append(ts, t)
			}
		}
	}
	return ts
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
