package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// shape is one configuration of the load: publishers × subscribers at a
// rate per publisher.
type shape struct{ publishers, subscribers, rate int }

func (s shape) String() string {
	return fmt.Sprintf("%dx%d@%d", s.publishers, s.subscribers, s.rate)
}

// parseShapes reads -configs: a comma-separated list of PxS@RATE, each at
// most once.
func parseShapes(s string) ([]shape, error) {
	var shapes []shape
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		bad := func(why string) error {
			return bench.Usagef("-configs %q: %q %s (want PUBLISHERSxSUBSCRIBERS@RATE, as 1x50@300)", s, f, why)
		}
		ps, rate, ok := strings.Cut(f, "@")
		p, sub, ok2 := strings.Cut(ps, "x")
		if !ok || !ok2 {
			return nil, bad("is not a configuration")
		}
		var sh shape
		var err error
		if sh.publishers, err = strconv.Atoi(p); err != nil || sh.publishers < 1 || sh.publishers > maxPeers {
			return nil, bad(fmt.Sprintf("has publishers %q, not 1 to %d", p, maxPeers))
		}
		if sh.subscribers, err = strconv.Atoi(sub); err != nil || sh.subscribers < 1 || sh.subscribers > maxPeers {
			return nil, bad(fmt.Sprintf("has subscribers %q, not 1 to %d", sub, maxPeers))
		}
		if sh.rate, err = strconv.Atoi(rate); err != nil || sh.rate < fps || sh.rate > maxRate {
			return nil, bad(fmt.Sprintf("has rate %q, not %d to %d packets per second", rate, fps, maxRate))
		}
		if slices.Contains(shapes, sh) {
			return nil, bad("is listed twice")
		}
		shapes = append(shapes, sh)
	}
	return shapes, nil
}

type benchConfig struct {
	count   int
	seconds float64
	shapes  []shape
	sockets []string
	size    int
	queue   int
	out     bench.Output
}

const maxCount = 1000

func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	var cfg benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.count, "count", 5, "rounds; each runs every socket once per configuration, and the table shows medians")
	fs.Float64Var(&cfg.seconds, "seconds", 5, "seconds of sending measured per run")
	configs := fs.String("configs", "2x2@100,1x50@300,4x10@300,1x50@900,4x10@900",
		"comma-separated load `configurations`, PUBLISHERSxSUBSCRIBERS@RATE: every subscriber receives every publisher's track, RATE packets per second each")
	socketList := fs.String("sockets", strings.Join(defaultSockets, ","), "comma-separated `sockets` of the SFU to compare (udpconn must be among them, the ratios are against it):"+sockets.Help())
	fs.IntVar(&cfg.size, "size", 1200, "RTP payload bytes per packet")
	queue := fs.String("queue", "1MiB", "the write queue's size for the conn-queue sockets (suffixes KiB, MiB, GiB)")
	cfg.out.Flags(fs)
	if err := bench.Parse(fs, args, stderr, "usage: pion-sfu bench [flags]\n\n"+
		"Measures the SFU (a child process per run) on each socket under the load (another\n"+
		"child: publishers and subscribers on loopback, every packet checked): the SFU's CPU\n"+
		"time per forwarded packet, forwarded packets per second and the fraction delivered,\n"+
		"medians of same-round ratios against udpconn.\n\n"); err != nil {
		return cfg, err
	}
	if err := cfg.out.Check(fs); err != nil {
		return cfg, err
	}
	switch {
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, bench.Usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case !(cfg.seconds >= 0.1 && cfg.seconds <= maxSeconds):
		return cfg, bench.Usagef("-seconds %v: must be between 0.1 and %d", cfg.seconds, maxSeconds)
	case cfg.size < minSize || cfg.size > maxSize:
		return cfg, bench.Usagef("-size %d: must be between %d and %d", cfg.size, minSize, maxSize)
	}
	var err error
	if cfg.shapes, err = parseShapes(*configs); err != nil {
		return cfg, err
	}
	if cfg.sockets, err = bench.ParseList("-sockets", *socketList, sockets.Names()...); err != nil {
		return cfg, err
	}
	if !slices.Contains(cfg.sockets, "udpconn") {
		return cfg, bench.Usagef("-sockets %q: udpconn must be among them, the ratios are against it", *socketList)
	}
	cfg.queue, err = bench.ParseQueue("-queue", *queue)
	return cfg, err
}

// sample is one load run against one SFU: what the load reported.
type sample = loadResult

func cpuPerForward(s sample) float64 { return bench.Div(float64(s.SFUCPUNs), float64(s.SFUForward)) }
func forwardRate(s sample) float64   { return bench.Div(float64(s.SFUForward), s.Seconds) }
func delivered(s sample) float64     { return bench.Div(float64(s.Received), float64(s.Expected)) }

// fraction formats a fraction as a percentage with two decimals, so
// that a loss of a few packets in ten thousand shows.
func fraction(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + "%" }

func runBench(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	var groups []bench.Group[sample]
	for _, sh := range cfg.shapes {
		g := bench.Group[sample]{Name: sh.String()}
		for _, socket := range cfg.sockets {
			m := &sfuMode{exe: exe, socket: socket, shape: sh, cfg: cfg}
			g.Modes = append(g.Modes, bench.Mode[sample]{Name: socket, Setup: m.setup, Sample: m.sample, Teardown: m.teardown})
		}
		groups = append(groups, g)
	}
	res, err := bench.Run(ctx, bench.Plan[sample]{Name: "pion-sfu bench", Rounds: cfg.count, Warmup: true,
		Groups: groups, Progress: cfg.out.Progress(stderr)})
	if err != nil {
		return err
	}
	rep := report(cfg, res)
	return rep.Write(stdout, cfg.out)
}

// report is the benchmark's table, targets (issue 24) and notes.
func report(cfg benchConfig, res *bench.Results[sample]) bench.Report[sample] {
	var goals []bench.Goal
	for _, sh := range cfg.shapes {
		g := sh.String()
		goals = append(goals,
			bench.Goal{Group: g, Mode: "conn-queue", Column: "CPU/fwd vs udpconn", Cmp: bench.AtMost, Want: 0.85},
			bench.Goal{Group: g, Mode: "conn-queue", Column: "CPU/fwd vs udpconn", Cmp: bench.AtMost, Want: 1.00},
			bench.Goal{Group: g, Mode: "conn-queue", Column: "delivered vs udpconn", Cmp: bench.AtLeast, Want: 1.00},
		)
	}
	var shapes []string
	for _, sh := range cfg.shapes {
		shapes = append(shapes, sh.String())
	}
	r := bench.Report[sample]{
		Name: "PionSFU", Pkg: "github.com/batchconn/batchconn/examples/pion-sfu",
		Head: fmt.Sprintf("pion/webrtc v4.2.27 SFU, WriteRTP forwarding over one ICE UDP mux (%gs per run, %d rounds, %d-byte payloads)\n",
			cfg.seconds, cfg.count, cfg.size),
		Config: map[string]any{"count": cfg.count, "seconds": cfg.seconds, "configs": shapes,
			"sockets": cfg.sockets, "size": cfg.size, "queue": cfg.queue},
		Env:     bench.ThisMachine(),
		Results: res,
		Columns: []bench.Column[sample]{
			{Name: "CPU/fwd", JSON: "cpu_per_forward", Value: cpuPerForward, Format: bench.Nanos, Range: true},
			{Name: "fwd/s", JSON: "forwarded_per_second", Value: forwardRate, Format: bench.Rate},
			{Name: "delivered", JSON: "delivered", Value: delivered, Format: fraction},
			{Name: "CPU/fwd vs udpconn", JSON: "cpu_per_forward_vs_udpconn", Of: "CPU/fwd", Vs: bench.Ref("udpconn")},
			{Name: "fwd/s vs udpconn", JSON: "forwarded_per_second_vs_udpconn", Of: "fwd/s", Vs: bench.Ref("udpconn")},
			{Name: "delivered vs udpconn", JSON: "delivered_vs_udpconn", Of: "delivered", Vs: bench.Ref("udpconn")},
		},
		Goals: goals,
	}
	r.Notes = func(w io.Writer) {
		fmt.Fprintf(w, "Configurations are PUBLISHERSxSUBSCRIBERS@RATE (packets per second per publisher, in 30 frames\n"+
			"a second). CPU/fwd: the SFU process's user+system CPU time (all threads, getrusage) per RTP\n"+
			"packet it forwarded, over the measured window; fwd/s: packets forwarded per second; delivered:\n"+
			"the fraction of the window's packets every subscriber received, each checked (sequence number,\n"+
			"payload). Ratios: medians of same-round ratios. The load runs on the same %d CPUs as the SFU.\n\n", r.Env.NumCPU)
		bench.WriteTargets(w, r.Targets())
	}
	return r
}

// sfuMode runs one socket's SFU as a child process (this program's serve
// -internal-control) for each sample, and the load (this program's load)
// against it.
type sfuMode struct {
	exe, socket string
	shape       shape
	cfg         benchConfig

	sfu    *bench.Child
	server string
}

func (m *sfuMode) setup(ctx context.Context, round int) error {
	var addr string
	var err error
	m.sfu, addr, err = bench.StartServer("SFU ("+m.socket+")", "http", m.exe, "serve", "-socket", m.socket,
		"-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-queue", strconv.Itoa(m.cfg.queue), "-"+bench.ControlFlag)
	m.server = "http://" + addr
	return err
}

func (m *sfuMode) sample(ctx context.Context, round int) (sample, error) {
	load := exec.CommandContext(ctx, m.exe, "load", "-server", m.server,
		"-publishers", strconv.Itoa(m.shape.publishers), "-subscribers", strconv.Itoa(m.shape.subscribers),
		"-rate", strconv.Itoa(m.shape.rate), "-seconds", strconv.FormatFloat(m.cfg.seconds, 'g', -1, 64),
		"-size", strconv.Itoa(m.cfg.size), "-json")
	var stderr bytes.Buffer
	load.Stderr = &stderr
	out, err := load.Output()
	if err != nil { // or interrupted: bench.Run then reports that
		return sample{}, fmt.Errorf("load: %v\n%s", err, stderr.String())
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return sample{}, fmt.Errorf("load's result: %v\n%s", err, out)
	}
	if r.SFUForward == 0 {
		return sample{}, fmt.Errorf("the SFU forwarded nothing in the window: %s", &r)
	}
	return r, nil
}

func (m *sfuMode) teardown() error {
	if m.sfu == nil {
		return nil
	}
	return m.sfu.Stop(10 * time.Second)
}
