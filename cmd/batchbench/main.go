// Command batchbench measures, on your own machine, what batchconn buys over
// the ways Go programs send UDP today.
//
//	go run ./cmd/batchbench
//
// It sends the same datagrams, over loopback, to a receiver that drains them
// with recvmmsg, in six ways (modes):
//
//	writeto        a loop of (*net.UDPConn).WriteToUDPAddrPort, what most Go code does
//	xnet           golang.org/x/net ipv4/ipv6 PacketConn.WriteBatch, the existing batch API
//	batchconn      batchconn's WriteMessages with UDP GSO off
//	batchconn-gso  batchconn's WriteMessages with UDP GSO on (the default)
//	raw-sendmmsg   the machine's limit: sendmmsg through unix.Syscall, prebuilt headers,
//	               no runtime poller
//	raw-gso        the same with one pre-coalesced UDP_SEGMENT buffer per destination run
//
// For each mode it reports datagrams per second sent and delivered (so drops
// show), payload Gbit/s, CPU time per datagram, system calls per datagram,
// allocations per batch, and ratios against writeto and against the raw limit.
// Modes alternate (A B C … A B C …) for -count rounds, so drift on a shared
// machine hits all of them alike; the table shows the median and the min–max of
// the rounds.
//
// Flags:
//
//	-size N        datagram payload bytes (default 1200; at most 65507, 65527 with -ipv6)
//	-batch N       datagrams per batch (default 64; at most 1024, Linux's UIO_MAXIOV)
//	-dests N       destinations; each batch is split into runs of batch/N datagrams per
//	               destination, so batches mix destinations (default 1)
//	-duration D    how long each mode sends in each round (default 150ms)
//	-count N       rounds (default 15: about 2 s per mode, under 20 s in all); many short
//	               rounds cancel a shared machine's drift better than a few long ones
//	-modes LIST    comma-separated modes to run (default all)
//	-ipv6          use ::1 (or IPv6 on the veth pair) instead of IPv4
//	-json          print the results as JSON
//	-format F      table (default), json, or gobench (lines benchstat reads)
//	-netns         measure between two network namespaces joined by a veth pair
//	               (1500-byte MTU, the peer's real receive path); needs root
//	-q             print only the results: no progress line, no notes
//	-cpuprofile F  write a pprof CPU profile of the run to F
//	-memprofile F  record every allocation (runtime.MemProfileRate = 1) and write
//	               a pprof allocation profile to F, to find what allocates
//
// Exit status: 0 on success, 2 for bad flags, 1 when the measurement fails.
// Linux only: on other systems it explains that and exits 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// The modes, in the order they run within a round and appear in the table.
const (
	modeWriteTo      = "writeto"
	modeXNet         = "xnet"
	modeBatchconn    = "batchconn"
	modeBatchconnGSO = "batchconn-gso"
	modeRawSendmmsg  = "raw-sendmmsg"
	modeRawGSO       = "raw-gso"
)

var allModes = []string{modeWriteTo, modeXNet, modeBatchconn, modeBatchconnGSO, modeRawSendmmsg, modeRawGSO}

// Limits the flags are checked against.
const (
	maxPayload4 = 65535 - 20 - 8 // 65507: IPv4 total length minus IPv4 and UDP headers
	maxPayload6 = 65535 - 8      // 65527: IPv6 payload length minus the UDP header
	maxBatch    = 1024           // UIO_MAXIOV: sendmmsg clamps its vector to this
	maxCount    = 1000
)

// config is what the flags ask for.
type config struct {
	size     int           // datagram payload bytes
	batch    int           // datagrams per batch
	dests    int           // destinations, interleaved in runs within a batch
	duration time.Duration // sending time per mode per round
	count    int           // rounds
	modes    []string      // in allModes order
	ipv6     bool
	format   string // "table", "json" or "gobench"
	quiet    bool
	netns    bool

	cpuProfile, memProfile string // pprof output files, for profiling the library
}

// usageError is a problem with the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// parseFlags parses and checks the command line. Problems are *usageError
// values; -h and -help return flag.ErrHelp after printing the usage to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("batchbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.size, "size", 1200, "datagram payload `bytes` (at most 65507, 65527 with -ipv6)")
	fs.IntVar(&cfg.batch, "batch", 64, "datagrams per batch (at most 1024)")
	fs.IntVar(&cfg.dests, "dests", 1, "destinations, interleaved in runs of batch/dests within each batch")
	fs.DurationVar(&cfg.duration, "duration", 150*time.Millisecond, "sending time per mode per round")
	fs.IntVar(&cfg.count, "count", 15, "rounds; modes alternate within each round")
	modes := fs.String("modes", "all", "comma-separated modes: "+strings.Join(allModes, ","))
	fs.BoolVar(&cfg.ipv6, "ipv6", false, "use IPv6")
	asJSON := fs.Bool("json", false, "print the results as JSON (same as -format json)")
	fs.StringVar(&cfg.format, "format", "table", "output `format`: table, json, or gobench (for benchstat)")
	fs.BoolVar(&cfg.quiet, "q", false, "print only the results: no progress line, no notes")
	fs.BoolVar(&cfg.netns, "netns", false, "measure across a veth pair between two network namespaces (root only)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to `file`")
	fs.StringVar(&cfg.memProfile, "memprofile", "", "record every allocation and write a pprof allocation profile to `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "usage: batchbench [flags]\n\nMeasures batchconn against WriteToUDPAddrPort, x/net WriteBatch and raw sendmmsg.\n\n")
			fs.PrintDefaults()
			return cfg, err
		}
		return cfg, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q (batchbench takes only flags)", fs.Arg(0))
	}

	maxSize, fam := maxPayload4, "IPv4"
	if cfg.ipv6 {
		maxSize, fam = maxPayload6, "IPv6"
	}
	switch {
	case cfg.size < 1:
		return cfg, usagef("-size %d: a datagram needs at least 1 byte of payload", cfg.size)
	case cfg.size > maxSize:
		return cfg, usagef("-size %d: the largest UDP payload over %s is %d bytes", cfg.size, fam, maxSize)
	case cfg.batch < 1:
		return cfg, usagef("-batch %d: a batch needs at least 1 datagram", cfg.batch)
	case cfg.batch > maxBatch:
		return cfg, usagef("-batch %d: at most %d datagrams fit in one sendmmsg call (UIO_MAXIOV)", cfg.batch, maxBatch)
	case cfg.dests < 1:
		return cfg, usagef("-dests %d: need at least 1 destination", cfg.dests)
	case cfg.dests > cfg.batch:
		return cfg, usagef("-dests %d: more destinations than datagrams per batch (%d)", cfg.dests, cfg.batch)
	case cfg.duration <= 0:
		return cfg, usagef("-duration %v: must be positive", cfg.duration)
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	}

	if *asJSON {
		if cfg.format != "table" && cfg.format != "json" {
			return cfg, usagef("-json and -format %s contradict each other", cfg.format)
		}
		cfg.format = "json"
	}
	switch cfg.format {
	case "table", "json", "gobench":
	default:
		return cfg, usagef("-format %q: want table, json, or gobench", cfg.format)
	}

	var err error
	if cfg.modes, err = parseModes(*modes); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseModes turns "all" or a comma-separated list into modes in table order.
func parseModes(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(allModes), nil
	}
	var picked []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(allModes, name) {
			return nil, usagef("-modes: unknown mode %q (modes: %s)", name, strings.Join(allModes, ", "))
		}
		if slices.Contains(picked, name) {
			return nil, usagef("-modes: %q listed twice", name)
		}
		picked = append(picked, name)
	}
	if len(picked) == 0 {
		return nil, usagef("-modes: no modes given (modes: %s)", strings.Join(allModes, ", "))
	}
	slices.SortFunc(picked, func(a, b string) int {
		return slices.Index(allModes, a) - slices.Index(allModes, b)
	})
	return picked, nil
}

// batchbench runs the command and returns its exit status.
func batchbench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "writers" {
		return writersMain(args[1:], stdout, stderr) // writers.go
	}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = run(cfg, stdout, stderr)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "batchbench: %v\n", err)
	if _, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(stderr, "run 'batchbench -h' for the flags\n")
		return 2
	}
	return 1
}

func main() {
	os.Exit(batchbench(os.Args[1:], os.Stdout, os.Stderr))
}
