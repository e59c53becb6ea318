package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The writers subcommand measures group commit: G goroutines calling WriteTo
// on one socket, a *net.UDPConn against a *batchconn.Conn.
//
//	go run ./cmd/batchbench writers [-writers 1,8,64] [-size 1200] [-gso=false] ...
//
// For each number of writers it measures two destination sets: every
// goroutine writing to one destination, and each goroutine to its own. The
// two sockets run in alternating rounds (A B B A ...), so a shared machine's
// drift hits both alike, and the table shows medians of the per-round
// ratios.

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
	fs.IntVar(&cfg.count, "count", 9, "rounds; the two sockets alternate within each")
	fs.BoolVar(&cfg.gso, "gso", true, "let the batchconn.Conn coalesce batches into UDP GSO sends")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "usage: batchbench writers [flags]\n\nMeasures G goroutines calling WriteTo on a *net.UDPConn and on a *batchconn.Conn (group commit).\n\n")
			fs.PrintDefaults()
			return cfg, err
		}
		return cfg, usagef("writers: %v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("writers: unexpected argument %q (it takes only flags)", fs.Arg(0))
	}
	var err error
	if cfg.writers, err = parseWriters(*list); err != nil {
		return cfg, err
	}
	switch {
	case cfg.size < 1:
		return cfg, usagef("-size %d: a datagram needs at least 1 byte of payload", cfg.size)
	case cfg.size > maxPayload4:
		return cfg, usagef("-size %d: the largest UDP payload over IPv4 is %d bytes", cfg.size, maxPayload4)
	case cfg.duration <= 0:
		return cfg, usagef("-duration %v: must be positive", cfg.duration)
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	}
	return cfg, nil
}

// parseWriters parses -writers: distinct numbers from 1 to maxWriters, in
// the order given.
func parseWriters(s string) ([]int, error) {
	var ws []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		switch {
		case err != nil:
			return nil, usagef("-writers: %q is not a number of goroutines", f)
		case n < 1 || n > maxWriters:
			return nil, usagef("-writers: %d goroutines: want 1 to %d", n, maxWriters)
		case slices.Contains(ws, n):
			return nil, usagef("-writers: %d listed twice", n)
		}
		ws = append(ws, n)
	}
	if len(ws) == 0 {
		return nil, usagef("-writers: no numbers given (for example -writers 1,8,64)")
	}
	return ws, nil
}

// writersMain runs the writers subcommand and returns its exit status.
func writersMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseWritersFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = runWriters(cfg, stdout, stderr)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "batchbench: %v\n", err)
	if _, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(stderr, "run 'batchbench writers -h' for the flags\n")
		return 2
	}
	return 1
}

// A writersCell is one row: a number of writers and a destination set, with
// each socket's samples, one per round.
type writersCell struct {
	writers int
	perG    bool // each goroutine its own destination
	udp     []writersSample
	bc      []writersSample
}

// writersSample is one socket's measurement in one round.
type writersSample struct {
	datagrams uint64
	syscalls  uint64
	elapsed   time.Duration
	cpu       time.Duration // process CPU time (user+system)
}

func (s writersSample) rate() float64 { return float64(s.datagrams) / s.elapsed.Seconds() }
func (s writersSample) cpuPer() float64 {
	return float64(s.cpu.Nanoseconds()) / max(1, float64(s.datagrams))
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printWriters prints the table.
func printWriters(w io.Writer, cfg writersConfig, cells []*writersCell) {
	fmt.Fprintf(w, "G goroutines calling WriteTo, %d-byte datagrams, loopback, %d rounds of %v per socket, alternating; batchconn GSO %v\n",
		cfg.size, cfg.count, cfg.duration, onOff(cfg.gso))
	fmt.Fprintf(w, "datagrams/s and CPU per datagram are medians over rounds; ratios are medians of same-round ratios (batchconn / UDPConn)\n")
	fmt.Fprintf(w, "CPU: the whole process's user+system time (getrusage RUSAGE_SELF), receivers excluded (nothing reads)\n\n")
	fmt.Fprintf(w, "%-7s %-5s  %14s %14s %7s  %12s %12s %7s  %9s\n",
		"writers", "dests", "UDPConn dg/s", "batchconn dg/s", "ratio", "UDPConn CPU", "batchconn CPU", "ratio", "dg/syscall")
	for _, c := range cells {
		var ur, br, rr, uc, bcpu, cr, per []float64
		for i := range c.udp {
			u, b := c.udp[i], c.bc[i]
			ur, br = append(ur, u.rate()), append(br, b.rate())
			rr = append(rr, b.rate()/u.rate())
			uc, bcpu = append(uc, u.cpuPer()), append(bcpu, b.cpuPer())
			cr = append(cr, b.cpuPer()/u.cpuPer())
			per = append(per, float64(b.datagrams)/max(1, float64(b.syscalls)))
		}
		dests := "one"
		if c.perG {
			dests = "each"
		}
		fmt.Fprintf(w, "%-7d %-5s  %14.0f %14.0f %6.2fx  %10.0fns %10.0fns %6.2fx  %9.1f\n",
			c.writers, dests, median(ur), median(br), median(rr), median(uc), median(bcpu), median(cr), median(per))
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
