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

// The writers subcommand measures group commit: G goroutines calling WriteTo
// on one socket, a *net.UDPConn against a *batchconn.Conn.
//
//	go run ./cmd/batchbench writers [-writers 1,8,64] [-size 1200] [-gso=false] ...
//
// For each number of writers it measures two destination sets: every
// goroutine writing to one destination, and each goroutine to its own. The
// sockets take turns within each round, in an order that rotates round by
// round, so a shared machine's drift hits them alike, and the table shows
// medians of the same-round ratios against the *net.UDPConn.

// writersConfig is what the writers subcommand's flags ask for.
type writersConfig struct {
	writers  []int
	size     int
	duration time.Duration
	count    int
	gso      bool
}

// maxWriters bounds -writers: enough to show where group commit stops
// helping, few enough not to exhaust the machine.
const maxWriters = 4096

func parseWritersFlags(args []string, stderr io.Writer) (writersConfig, error) {
	cfg := writersConfig{}
	fs := flag.NewFlagSet("batchbench writers", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	list := fs.String("writers", "1,8,64", "comma-separated numbers of writing goroutines")
	fs.IntVar(&cfg.size, "size", 1200, "datagram payload `bytes` (at most 65507)")
	fs.DurationVar(&cfg.duration, "duration", 200*time.Millisecond, "sending time per socket per round")
	fs.IntVar(&cfg.count, "count", 9, "rounds; the sockets take turns within each")
	fs.BoolVar(&cfg.gso, "gso", true, "let the batchconn.Conn coalesce batches into UDP GSO sends")
	if err := bench.Parse(fs, args, stderr, "usage: batchbench writers [flags]\n\n"+
		"Measures G goroutines calling WriteTo on a *net.UDPConn and on a *batchconn.Conn (group commit).\n\n"); err != nil {
		return cfg, err
	}
	var err error
	if cfg.writers, err = bench.ParseCounts("-writers", *list, "number of goroutines", maxWriters, true); err != nil {
		return cfg, err
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
	cpu       time.Duration // process CPU time (user+system)
}

func (s writersSample) rate() float64 { return bench.Div(float64(s.datagrams), s.elapsed.Seconds()) }
func (s writersSample) cpuPer() float64 {
	return bench.Div(float64(s.cpu.Nanoseconds()), float64(s.datagrams))
}
func (s writersSample) perSyscall() float64 {
	return bench.Div(float64(s.datagrams), float64(s.syscalls))
}

// A writersCell is one row of the table: a number of writers, and whether
// each writes to a destination of its own or all to one.
type writersCell struct {
	writers int
	perG    bool
}

func (c writersCell) String() string {
	if c.perG {
		return fmt.Sprintf("%d each", c.writers)
	}
	return fmt.Sprintf("%d one", c.writers)
}

// printWriters prints the table: a row per cell (writers, destinations),
// for each socket its datagrams/s and CPU per datagram, and for each but the
// first (the *net.UDPConn) the ratios against the first and its datagrams
// per system call.
func printWriters(w io.Writer, cfg writersConfig, cells []writersCell, modes []string, res *bench.Results[writersSample]) {
	fmt.Fprintf(w, "G goroutines calling WriteTo, %d-byte datagrams, loopback, %d rounds of %v per socket, alternating; batchconn GSO %v\n",
		cfg.size, cfg.count, cfg.duration, onOff(cfg.gso))
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
		g := c.String()
		dests := "one"
		if c.perG {
			dests = "each"
		}
		row := []string{strconv.Itoa(c.writers), dests}
		base := res.Get(g, ref).Samples
		for _, fig := range []struct {
			f      func(writersSample) float64
			format func(float64) string
		}{
			{writersSample.rate, func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }},
			{writersSample.cpuPer, func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) + "ns" }},
		} {
			row = append(row, fig.format(bench.Of(base, fig.f).Median))
			for _, m := range others {
				ss := res.Get(g, m).Samples
				row = append(row, fig.format(bench.Of(ss, fig.f).Median), bench.Times(bench.Ratio(ss, base, bench.Over(fig.f))))
			}
		}
		for _, m := range others {
			row = append(row, strconv.FormatFloat(bench.Of(res.Get(g, m).Samples, writersSample.perSyscall).Median, 'f', 1, 64))
		}
		rows = append(rows, row)
	}
	bench.WriteTable(w, 2, rows)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
