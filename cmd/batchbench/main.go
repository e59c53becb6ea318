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
// The raw modes are the system call's ceiling, checked against the same loops
// in C (ceiling/sendmmsg.c, below): on the README's machine raw-sendmmsg
// used 0.98–1.00× the C loop's CPU time per datagram and raw-gso 1.02–1.04×.
//
// For each mode it reports datagrams per second sent and delivered (so drops
// show), payload Gbit/s, CPU time per datagram, system calls per datagram,
// allocations per batch, and ratios against writeto and against the raw mode
// that is its ceiling.
// Modes alternate for -count rounds, each round starting one mode further
// along (A B C, B C A, C A B, ...) after a warm-up round, with a GC before
// each mode, so drift on a shared machine hits all of them alike and no mode
// always follows the same one; the table shows the median and the min–max of
// the rounds (internal/bench runs the rounds).
//
// Flags:
//
//	-size N        datagram payload bytes (default 1200; at most 65507, 65527 with -ipv6)
//	-batch N       datagrams per batch (default 64; at most 1024, Linux's UIO_MAXIOV)
//	-dests N       destinations; each batch is split into runs of batch/N datagrams per
//	               destination, so batches mix destinations (default 1)
//	-duration D    how long each mode sends in each round (default 150ms, at least 10ms)
//	-count N       rounds (default 15: about 2 s per mode, under 20 s in all); many short
//	               rounds cancel a shared machine's drift better than a few long ones
//	-modes LIST    comma-separated modes to run (default all)
//	-ipv6          use ::1 (or IPv6 on the veth pair) instead of IPv4
//	-json          print the results as JSON (same as -format json; with any other
//	               -format it is an error)
//	-format F      table (default), json, or gobench (lines benchstat reads)
//	-netns         measure between two network namespaces joined by a veth pair
//	               (1500-byte MTU, the peer's real receive path); needs root
//	-q             print only the results: no progress line, no notes
//	-cpuprofile F  write a pprof CPU profile of the run to F
//	-memprofile F  record every allocation (runtime.MemProfileRate = 1) and write
//	               a pprof allocation profile to F, to find what allocates
//
//	-svg FILE      also draw the table as an SVG bar chart in FILE: one bar per mode
//	               (its median datagrams/s, min–max whiskers) labelled with its ratios
//
// # Receiving
//
// With -recv it measures the receive side instead: the same datagrams, sent
// by a raw sendmmsg sender over loopback, read in six ways (modes):
//
//	readfrom                a loop of (*net.UDPConn).ReadFrom, one datagram per call, what
//	                        most Go code does
//	xnet-readbatch          golang.org/x/net ipv4/ipv6 PacketConn.ReadBatch
//	batchconn-read          batchconn's ReadMessages with UDP GRO off
//	batchconn-gro           batchconn's ReadMessages with UDP GRO on
//	batchconn-readfrom-gro  single ReadFrom calls on a batchconn Conn with GRO on: the same
//	                        loop as readfrom, served from the Conn's batches
//	raw-recvmmsg            a reference, not a ceiling: recvmmsg through unix.Syscall6,
//	                        prebuilt headers, no runtime poller, no GRO. It reads 3-19%
//	                        slower per datagram than batchconn-read here, for reasons
//	                        not found (not its socket: one from net.ListenUDP reads as
//	                        slowly); the ceiling is ceiling/recvmmsg.c, the same drain in
//	                        C (see below)
//
// Each mode reads from a fresh socket (SO_RCVBUFFORCE 32 MiB as root,
// net.core.rmem_max otherwise). By default the socket is first filled with as
// many datagrams as its buffer safely holds and the drain is timed: the
// receiver alone, no sender competing for the CPU. With -live a sender sends
// for -duration while the mode reads, and drops show as lost.
//
// It reports datagrams per second read, the reading thread's CPU time per
// datagram (CLOCK_THREAD_CPUTIME_ID on its locked thread: steadier than rates
// on a shared machine), datagrams per call, allocations per call, and the
// medians of same-round ratios against readfrom, xnet-readbatch and
// raw-recvmmsg, by rate and by CPU time. The receive flags:
//
//	-recv          measure receiving (the modes above) instead of sending
//	-traffic T     gso (default): the sender sends 14 datagrams per UDP GSO send, as
//	               quic-go does; plain: one datagram per message
//	-live          a live sender for -duration per mode per round, instead of
//	               draining a pre-filled socket
//	-size N        datagram payload bytes (default 1400 with -recv; with -traffic gso
//	               at most 4679, so that 14 segments fit one 65507-byte send)
//	-batch N       messages per read call for the batch modes (default 64)
//	-duration D    with -live, how long the sender sends per mode per round; a drain
//	               takes as long as reading the filled socket takes
//
// -count, -modes, -ipv6, -format, -json, -q, -svg and the profiles work as for
// sends; -dests and -netns are for sends only. The four runs:
//
//	go run ./cmd/batchbench -recv                          # drain GSO-sent traffic
//	go run ./cmd/batchbench -recv -traffic plain           # drain plain traffic
//	go run ./cmd/batchbench -recv -live                    # live, GSO-sent
//	go run ./cmd/batchbench -recv -live -traffic plain     # live, plain
//
// The fill is three quarters of the datagrams a GRO-less socket held before
// its first drop, measured once per run (at most 131072). The rounds rotate
// as for sends. CPU time is CLOCK_THREAD_CPUTIME_ID, not getrusage, whose
// whole scheduler ticks (4 ms here) are a third of a drain.
//
// The system call's own ceiling, without Go, is ceiling/recvmmsg.c: the same
// fill and recvmmsg drain of 64 prebuilt headers in C, printing the median
// CPU time per datagram:
//
//	gcc -O2 -o /tmp/recvmmsg cmd/batchbench/ceiling/recvmmsg.c && /tmp/recvmmsg 15 22540
//
// On the 2-CPU machine of the README it measured 537–572 ns per datagram
// where batchconn-read measured 578–594 ns (1.04–1.08× the C drain) and
// raw-recvmmsg 639–664 ns (1.16–1.19×), each run alone, three times.
//
// SIGINT, SIGTERM or SIGHUP ends the run after the sample under way (and
// removes -netns's namespaces).
//
// Exit status: 0 on success, 2 for bad flags, 1 when the measurement fails
// or is interrupted.
// Linux only: on other systems it explains that and exits 1.
package main

import (
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
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

// The receive modes (-recv), in table order.
const (
	modeReadFrom             = "readfrom"
	modeXNetReadBatch        = "xnet-readbatch"
	modeBatchconnRead        = "batchconn-read"
	modeBatchconnGRO         = "batchconn-gro"
	modeBatchconnReadFromGRO = "batchconn-readfrom-gro"
	modeRawRecvmmsg          = "raw-recvmmsg"
)

var allRecvModes = []string{modeReadFrom, modeXNetReadBatch, modeBatchconnRead, modeBatchconnGRO, modeBatchconnReadFromGRO, modeRawRecvmmsg}

// The receive traffic shapes (-traffic).
const (
	trafficGSO   = "gso"
	trafficPlain = "plain"
	// gsoSegs is how many datagrams the sender puts in one UDP GSO send with
	// -traffic gso: what quic-go sends (see ../shared/research/gro.md).
	gsoSegs = 14
	// recvSize is -size's default with -recv: quic-go's usual 1400-byte packets.
	recvSize = 1400
)

// Limits the flags are checked against.
const (
	maxPayload4 = 65535 - 20 - 8 // 65507: IPv4 total length minus IPv4 and UDP headers
	maxPayload6 = 65535 - 8      // 65527: IPv6 payload length minus the UDP header
	maxBatch    = 1024           // UIO_MAXIOV: sendmmsg clamps its vector to this
	maxCount    = 1000
	// minDuration is the shortest -duration: below about 10ms a round is a
	// handful of batches, so the clock's resolution, one scheduler tick and
	// the first batch's cache misses are the measurement, not the mode.
	minDuration = 10 * time.Millisecond
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
	netns    bool
	out      bench.Output // -format, -json, -q, -svg

	recv    bool   // measure receiving
	traffic string // with recv: trafficGSO or trafficPlain
	live    bool   // with recv: a live sender instead of draining a filled socket

	cpuProfile, memProfile string // pprof output files, for profiling the library
}

// parseFlags parses and checks the command line. Problems are
// *bench.UsageError values; -h and -help return flag.ErrHelp after printing
// the usage to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("batchbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.size, "size", 1200, "datagram payload `bytes` (at most 65507, 65527 with -ipv6; 1400 by default with -recv)")
	fs.IntVar(&cfg.batch, "batch", 64, "datagrams per batch (at most 1024); with -recv, messages per read call")
	fs.IntVar(&cfg.dests, "dests", 1, "destinations, interleaved in runs of batch/dests within each batch")
	fs.DurationVar(&cfg.duration, "duration", 150*time.Millisecond, "sending time per mode per round (with -recv, only with -live)")
	fs.IntVar(&cfg.count, "count", 15, "rounds; modes alternate within each round")
	modes := fs.String("modes", "all", "comma-separated modes: "+strings.Join(allModes, ",")+"; with -recv, those -recv lists")
	fs.BoolVar(&cfg.ipv6, "ipv6", false, "use IPv6")
	cfg.out.Flags(fs)
	fs.BoolVar(&cfg.netns, "netns", false, "measure across a veth pair between two network namespaces (root only)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to `file`")
	fs.StringVar(&cfg.memProfile, "memprofile", "", "record every allocation and write a pprof allocation profile to `file`")
	fs.BoolVar(&cfg.recv, "recv", false, "measure receiving instead of sending (modes: "+strings.Join(allRecvModes, ",")+")")
	fs.StringVar(&cfg.traffic, "traffic", trafficGSO, "with -recv: what the sender sends: gso (14 datagrams per UDP GSO send) or plain")
	fs.BoolVar(&cfg.live, "live", false, "with -recv: read while a sender sends, instead of draining a pre-filled socket")
	if err := bench.Parse(fs, args, stderr, "usage: batchbench [flags]\n\nMeasures batchconn against WriteToUDPAddrPort, x/net WriteBatch and raw sendmmsg;\n"+
		"with -recv, against ReadFrom, x/net ReadBatch and raw recvmmsg.\n\n"); err != nil {
		return cfg, err
	}

	if cfg.recv {
		if !bench.IsSet(fs, "size") {
			cfg.size = recvSize
		}
		switch {
		case bench.IsSet(fs, "dests"):
			return cfg, bench.Usagef("-dests is for sends: -recv reads one socket")
		case cfg.netns:
			return cfg, bench.Usagef("-netns is for sends: -recv measures over loopback")
		case cfg.traffic != trafficGSO && cfg.traffic != trafficPlain:
			return cfg, bench.Usagef("-traffic %q: want gso or plain", cfg.traffic)
		}
	} else {
		for _, name := range []string{"traffic", "live"} {
			if bench.IsSet(fs, name) {
				return cfg, bench.Usagef("-%s is for receiving: add -recv", name)
			}
		}
	}

	maxSize, fam := maxPayload4, "IPv4"
	if cfg.ipv6 {
		maxSize, fam = maxPayload6, "IPv6"
	}
	switch {
	case cfg.size < 1:
		return cfg, bench.Usagef("-size %d: a datagram needs at least 1 byte of payload", cfg.size)
	case cfg.size > maxSize:
		return cfg, bench.Usagef("-size %d: the largest UDP payload over %s is %d bytes", cfg.size, fam, maxSize)
	case cfg.batch < 1:
		return cfg, bench.Usagef("-batch %d: a batch needs at least 1 datagram", cfg.batch)
	case cfg.batch > maxBatch:
		return cfg, bench.Usagef("-batch %d: at most %d messages fit in one sendmmsg or recvmmsg call (UIO_MAXIOV)", cfg.batch, maxBatch)
	case cfg.dests < 1:
		return cfg, bench.Usagef("-dests %d: need at least 1 destination", cfg.dests)
	case cfg.dests > cfg.batch:
		return cfg, bench.Usagef("-dests %d: more destinations than datagrams per batch (%d)", cfg.dests, cfg.batch)
	case cfg.duration < minDuration:
		return cfg, bench.Usagef("-duration %v: at least %v per mode per round (shorter rounds measure the clock, not the mode)", cfg.duration, minDuration)
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, bench.Usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case cfg.recv && cfg.traffic == trafficGSO && cfg.size*gsoSegs > maxSize:
		return cfg, bench.Usagef("-size %d: with -traffic gso, %d segments per send must fit in %d bytes (at most -size %d)",
			cfg.size, gsoSegs, maxSize, maxSize/gsoSegs)
	}
	if err := cfg.out.Check(fs); err != nil {
		return cfg, err
	}

	var err error
	if cfg.recv {
		cfg.modes, err = parseModes(*modes, allRecvModes, allModes, "a send mode: leave out -recv")
	} else {
		cfg.modes, err = parseModes(*modes, allModes, allRecvModes, "a receive mode: add -recv")
	}
	return cfg, err
}

// parseModes turns "all" or a comma-separated list into modes of all, in
// table order. A name from other (the other direction's modes) is refused
// with hint.
func parseModes(s string, all, other []string, hint string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(all), nil
	}
	var picked []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if slices.Contains(other, name) {
			return nil, bench.Usagef("-modes: %q is %s (modes: %s)", name, hint, strings.Join(all, ", "))
		}
		if !slices.Contains(all, name) {
			return nil, bench.Usagef("-modes: unknown mode %q (modes: %s)", name, strings.Join(all, ", "))
		}
		if slices.Contains(picked, name) {
			return nil, bench.Usagef("-modes: %q listed twice", name)
		}
		picked = append(picked, name)
	}
	if len(picked) == 0 {
		return nil, bench.Usagef("-modes: no modes given (modes: %s)", strings.Join(all, ", "))
	}
	slices.SortFunc(picked, func(a, b string) int {
		return slices.Index(all, a) - slices.Index(all, b)
	})
	return picked, nil
}

// batchbench runs the command and returns its exit status.
func batchbench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "writers" {
		err := writersMain(args[1:], stdout, stderr) // writers.go
		return bench.Exit(err, stderr, "batchbench", "batchbench writers")
	}
	cfg, err := parseFlags(args, stderr)
	if err == nil {
		err = run(cfg, stdout, stderr)
	}
	return bench.Exit(err, stderr, "batchbench", "batchbench")
}

func main() {
	os.Exit(batchbench(os.Args[1:], os.Stdout, os.Stderr))
}
