package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// benchConfig is what bench's flags ask for.
type benchConfig struct {
	count       int
	seconds     int
	sockets     []string
	clients     int
	outstanding int
	queue       int
	out         bench.Output
}

// Limits the flags are checked against.
const (
	maxCount       = 1000
	maxSeconds     = 3600
	maxClients     = 256   // dnsperf's own limit (-c)
	maxOutstanding = 65535 // dnsperf's own limit (-q)
)

func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	var cfg benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.count, "count", 5, "rounds; each runs every socket once, and the table shows medians")
	fs.IntVar(&cfg.seconds, "seconds", 5, "seconds of dnsperf load per socket and round")
	socketList := fs.String("sockets", strings.Join(sockets.Names(), ","), "comma-separated `sockets` to compare; udpconn must be among them (the ratios are against it)")
	fs.IntVar(&cfg.clients, "clients", 8, "dnsperf's clients (-c): its sockets, each with its own source port")
	fs.IntVar(&cfg.outstanding, "outstanding", 100, "dnsperf's queries outstanding at most (-q)")
	queue := fs.String("queue", "1MiB", "the write queue's size for conn-queue (suffixes KiB, MiB, GiB)")
	cfg.out.Flags(fs)
	if err := bench.Parse(fs, args, stderr, "usage: miekg-dns bench [flags]\n\n"+
		"Measures a miekg/dns server on each socket (a child process per socket and round)\n"+
		"under dnsperf (Debian package dnsperf) on loopback: queries per second, and the\n"+
		"server's CPU time per query, medians of same-round ratios against udpconn.\n\n"); err != nil {
		return cfg, err
	}
	if err := cfg.out.Check(fs); err != nil {
		return cfg, err
	}
	switch {
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, bench.Usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case cfg.seconds < 1 || cfg.seconds > maxSeconds:
		return cfg, bench.Usagef("-seconds %d: must be between 1 and %d", cfg.seconds, maxSeconds)
	case cfg.clients < 1 || cfg.clients > maxClients:
		return cfg, bench.Usagef("-clients %d: must be between 1 and %d", cfg.clients, maxClients)
	case cfg.outstanding < 1 || cfg.outstanding > maxOutstanding:
		return cfg, bench.Usagef("-outstanding %d: must be between 1 and %d", cfg.outstanding, maxOutstanding)
	}
	var err error
	if cfg.sockets, err = bench.ParseList("-sockets", *socketList, sockets.Names()...); err != nil {
		return cfg, err
	}
	if !slices.Contains(cfg.sockets, "udpconn") {
		return cfg, bench.Usagef("-sockets %q: udpconn must be among them, the ratios are against it", *socketList)
	}
	cfg.queue, err = bench.ParseQueue("-queue", *queue)
	return cfg, err
}

// sample is one dnsperf run against one server.
type sample struct {
	Sent, Completed, Lost float64
	Seconds               float64 // dnsperf's run time
	CPUNs                 float64 // the server process's CPU time during the run
}

func (s sample) qps() float64          { return bench.Div(s.Completed, s.Seconds) }
func (s sample) cpuPerQuery() float64  { return bench.Div(s.CPUNs, s.Completed) }
func (s sample) lostFraction() float64 { return bench.Div(s.Lost, s.Sent) }

// runBench runs the benchmark and writes its report to stdout.
func runBench(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	dnsperf, err := exec.LookPath("dnsperf")
	if err != nil {
		return fmt.Errorf("dnsperf is needed (Debian: apt-get install dnsperf): %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "miekg-dns-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	queries := filepath.Join(dir, "queries")
	if err := writeQueryFile(queries); err != nil {
		return err
	}

	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	var modes []bench.Mode[sample]
	for _, socket := range cfg.sockets {
		m := &serverMode{exe: exe, dnsperf: dnsperf, queries: queries, socket: socket, cfg: cfg}
		modes = append(modes, bench.Mode[sample]{Name: socket, Setup: m.setup, Sample: m.sample, Teardown: m.teardown})
	}
	res, err := bench.Run(ctx, bench.Plan[sample]{Name: "miekg-dns bench", Rounds: cfg.count, Warmup: true,
		Groups: []bench.Group[sample]{{Modes: modes}}, Progress: cfg.out.Progress(stderr)})
	if err != nil {
		return err
	}
	rep := report(cfg, res)
	return rep.Write(stdout, cfg.out)
}

// report is the benchmark's table, targets and notes.
func report(cfg benchConfig, res *bench.Results[sample]) bench.Report[sample] {
	refs := []string{"udpconn"}
	if slices.Contains(cfg.sockets, "packetconn") {
		refs = append(refs, "packetconn")
	}
	var goals []bench.Goal
	for _, m := range []string{"conn", "conn-queue"} {
		goals = append(goals, bench.Goal{Mode: m, Column: "queries/s vs udpconn", Cmp: bench.AtLeast, Want: 1.2})
	}
	cols := []bench.Column[sample]{
		{Name: "queries/s", JSON: "queries_per_second", Value: sample.qps, Format: bench.Rate, Range: true},
		{Name: "CPU/query", JSON: "cpu_per_query", Value: sample.cpuPerQuery, Format: bench.Nanos},
		{Name: "lost", JSON: "lost", Value: sample.lostFraction, Format: bench.Pct},
	}
	for _, ref := range refs {
		for _, of := range cols[:2] { // queries/s and CPU/query
			cols = append(cols, bench.Column[sample]{Name: of.Name + " vs " + ref, Of: of.Name, Vs: bench.Ref(ref),
				JSON: of.JSON + "_vs_" + ref})
		}
	}
	r := bench.Report[sample]{
		Name: "MiekgDNS", Pkg: "github.com/batchconn/batchconn/examples/miekg-dns",
		Head: fmt.Sprintf("miekg/dns v1.1.73 under dnsperf (%d clients, %d outstanding, %ds per run, %d rounds)\n",
			cfg.clients, cfg.outstanding, cfg.seconds, cfg.count),
		Config: map[string]any{"count": cfg.count, "seconds": cfg.seconds, "sockets": cfg.sockets,
			"clients": cfg.clients, "outstanding": cfg.outstanding, "queue": cfg.queue},
		Env:     bench.ThisMachine(),
		Results: res,
		Columns: cols,
		Goals:   goals,
	}
	r.Notes = func(w io.Writer) {
		fmt.Fprintf(w, "queries/s: answered queries per second of dnsperf's run; CPU/query: the server process's\n"+
			"user+system CPU time (all threads, getrusage) per answered query; lost: queries dnsperf\n"+
			"got no answer for. Every answer must be NOERROR (a run with another rcode fails).\n"+
			"Ratios: medians of same-round ratios. dnsperf runs on the same %d CPUs as the server.\n\n", r.Env.NumCPU)
		bench.WriteTargets(w, r.Targets())
	}
	return r
}

// writeQueryFile writes dnsperf's input: every host of the zone, type A.
func writeQueryFile(path string) error {
	var b strings.Builder
	for i := range zoneHosts {
		fmt.Fprintf(&b, "%s A\n", hostName(i))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// serverMode runs one socket's server as a child process (this program's
// serve -internal-control) for each sample, and dnsperf against it.
type serverMode struct {
	exe, dnsperf, queries, socket string
	cfg                           benchConfig

	server *bench.Child
	port   string
}

func (m *serverMode) setup(ctx context.Context, round int) error {
	var addr string
	var err error
	m.server, addr, err = bench.StartServer("server ("+m.socket+")", "addr", m.exe, "serve", "-socket", m.socket,
		"-net", "udp4", "-addr", "127.0.0.1:0", "-queue", strconv.Itoa(m.cfg.queue), "-"+bench.ControlFlag)
	if err != nil {
		return err
	}
	if _, m.port, err = net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("server: bad address %q", addr)
	}
	return nil
}

func (m *serverMode) sample(ctx context.Context, round int) (sample, error) {
	cpu0, err := m.server.CPU()
	if err != nil {
		return sample{}, err
	}
	perf := exec.CommandContext(ctx, m.dnsperf, "-s", "127.0.0.1", "-p", m.port, "-d", m.queries,
		"-l", strconv.Itoa(m.cfg.seconds), "-c", strconv.Itoa(m.cfg.clients), "-q", strconv.Itoa(m.cfg.outstanding),
		"-t", "2")
	out, err := perf.CombinedOutput()
	if err != nil { // or interrupted: bench.Run then reports that
		return sample{}, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	cpu1, err := m.server.CPU()
	if err != nil {
		return sample{}, err
	}
	r, err := parseDNSPerf(string(out))
	if err != nil {
		return sample{}, err
	}
	if r.completed == 0 {
		return sample{}, fmt.Errorf("dnsperf got no answers:\n%s", out)
	}
	if r.noerror != r.completed {
		return sample{}, fmt.Errorf("%d of %d answers were not NOERROR (%s):\n%s", r.completed-r.noerror, r.completed, r.rcodes, out)
	}
	return sample{Sent: float64(r.sent), Completed: float64(r.completed), Lost: float64(r.lost),
		Seconds: r.seconds, CPUNs: float64(cpu1 - cpu0)}, nil
}

func (m *serverMode) teardown() error {
	if m.server == nil {
		return nil
	}
	return m.server.Stop(5 * time.Second)
}

// dnsperfResult is what the benchmark takes from dnsperf's statistics.
type dnsperfResult struct {
	sent, completed, lost, noerror int64
	rcodes                         string
	seconds                        float64
}

var (
	perfSent      = regexp.MustCompile(`(?m)^\s*Queries sent:\s+(\d+)`)
	perfCompleted = regexp.MustCompile(`(?m)^\s*Queries completed:\s+(\d+)`)
	perfLost      = regexp.MustCompile(`(?m)^\s*Queries lost:\s+(\d+)`)
	perfRcodes    = regexp.MustCompile(`(?m)^\s*Response codes:\s+(.*)$`)
	perfNoerror   = regexp.MustCompile(`\bNOERROR (\d+)`)
	perfRunTime   = regexp.MustCompile(`(?m)^\s*Run time \(s\):\s+([0-9.]+)`)
)

// parseDNSPerf reads dnsperf's (2.x) statistics.
func parseDNSPerf(out string) (dnsperfResult, error) {
	var r dnsperfResult
	ints := []struct {
		name string
		re   *regexp.Regexp
		v    *int64
	}{{"Queries sent", perfSent, &r.sent}, {"Queries completed", perfCompleted, &r.completed}, {"Queries lost", perfLost, &r.lost}}
	for _, f := range ints {
		m := f.re.FindStringSubmatch(out)
		if m == nil {
			return r, fmt.Errorf("dnsperf's output has no %q line:\n%s", f.name, out)
		}
		*f.v, _ = strconv.ParseInt(m[1], 10, 64)
	}
	m := perfRunTime.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("dnsperf's output has no run time:\n%s", out)
	}
	r.seconds, _ = strconv.ParseFloat(m[1], 64)
	if r.completed > 0 {
		m = perfRcodes.FindStringSubmatch(out)
		if m == nil {
			return r, fmt.Errorf("dnsperf's output has no response codes:\n%s", out)
		}
		r.rcodes = strings.TrimSpace(m[1])
		if m := perfNoerror.FindStringSubmatch(r.rcodes); m != nil {
			r.noerror, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	return r, nil
}
