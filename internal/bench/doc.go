// Package bench is the one engine every benchmark command of this repository
// runs on (cmd/batchbench and its writers subcommand, cmd/quicbench,
// integration/wireguard/cmd/wgbench). It owns what they all do, once:
//
//   - the rounds ([Run]): every mode once per round, in an order that rotates
//     round by round (A B C, B C A, C A B), a garbage collection before each,
//     an optional warm-up round that is not kept, a mode that cannot run or
//     stops ([Unavailable]) taken out with its reason, and a signal
//     ([SignalContext]) ending the run cleanly after the sample under way;
//   - the clocks: [ThreadCPU] (a locked thread's, CLOCK_THREAD_CPUTIME_ID),
//     [ProcessCPU] (getrusage RUSAGE_SELF), [ChildCPU] (a child process's);
//   - the figures: medians and min–max over the rounds ([Of], [Summarize]),
//     medians of same-round ratios ([Ratio]), never quotients of medians,
//     because the machines are shared and a busy moment hits both modes of
//     a round alike;
//   - targets as data ([Target], [Check], [Goal]), printed met or MISSED
//     the same way everywhere ([WriteTargets], [Target.Tag]);
//   - the outputs: an aligned text table ([WriteTable]), -json
//     ([WriteJSON]), -format gobench for benchstat ([WriteGobenchLine]),
//     -svg bar charts ([Chart]), the flags that ask for them ([Output]),
//     a progress line on a terminal ([Plan.Progress]), and the command-line
//     plumbing ([Parse], [Exit], [ParseBytes], [ParseList], [ParseCounts]).
//
// # Adding a benchmark
//
// A benchmark is a command with its own flags, a sample type and modes.
// The sample type S is a struct of whatever one measurement produces
// (queries answered, elapsed time, CPU time). A [Mode] is a name and a
// function that measures once and returns an S, with optional Setup and
// Teardown around it that are not measured (open a fresh socket, start a
// server process, close them). Modes compared with each other form a
// [Group]; a matrix (connections × GSO on/off) is one group per cell. So
// the whole of a new benchmark is:
//
//	type sample struct{ Queries, Seconds, CPU float64 }
//
//	func main() {
//		var out bench.Output
//		fs := flag.NewFlagSet("dnsbench", flag.ContinueOnError)
//		fs.SetOutput(io.Discard)
//		count := fs.Int("count", 9, "rounds")
//		out.Flags(fs) // -format, -json, -q, -svg
//		err := bench.Parse(fs, os.Args[1:], os.Stderr, "usage: dnsbench [flags]\n\n")
//		if err == nil {
//			err = out.Check(fs)
//		}
//		if err == nil {
//			err = run(*count, out)
//		}
//		os.Exit(bench.Exit(err, os.Stderr, "dnsbench", "dnsbench"))
//	}
//
//	func run(count int, out bench.Output) error {
//		ctx, stop := bench.SignalContext(context.Background())
//		defer stop()
//		var srv *server
//		mode := func(name string, conn func() (net.PacketConn, error)) bench.Mode[sample] {
//			return bench.Mode[sample]{Name: name,
//				Setup:    func(ctx context.Context, round int) (err error) { srv, err = start(conn); return err },
//				Sample:   func(ctx context.Context, round int) (sample, error) { return load(ctx, srv) },
//				Teardown: func() error { return srv.Close() },
//			}
//		}
//		res, err := bench.Run(ctx, bench.Plan[sample]{Name: "dnsbench", Rounds: count,
//			Groups:   []bench.Group[sample]{{Modes: []bench.Mode[sample]{mode("udpconn", listenUDP), mode("conn", listenConn)}}},
//			Progress: out.Progress(os.Stderr)})
//		if err != nil {
//			return err
//		}
//		qps := func(s sample) float64 { return s.Queries / s.Seconds }
//		rep := bench.Report[sample]{Name: "DNS", Pkg: "github.com/batchconn/batchconn/examples/dns/cmd/dnsbench",
//			Title: "dnsbench: miekg/dns on a UDPConn and on a Conn", Env: bench.ThisMachine(), Results: res,
//			Columns: []bench.Column[sample]{
//				{Name: "queries/s", Value: qps, Format: bench.Rate, Range: true, Vs: []string{"udpconn"}},
//				{Name: "CPU/query", Value: func(s sample) float64 { return s.CPU / s.Queries }, Format: bench.Nanos, Vs: []string{"udpconn"}},
//			},
//			Goals: []bench.Goal{{Mode: "conn", Column: "queries/s", Vs: "udpconn", Cmp: bench.AtLeast, Want: 1.2}},
//		}
//		return rep.Write(os.Stdout, out)
//	}
//
// [Report] prints the table (a row per mode, each column's median, the
// min–max where asked, a "vs" ratio column per reference mode, the targets),
// the JSON, the gobench lines and the chart, so a benchmark with no layout
// of its own writes no output code. One with a layout of its own (batchbench's
// tables, quicbench's matrix) builds its rows from [Of] and [Ratio] and prints
// them with [WriteTable] or its own format, and its targets with [Check].
//
// Errors: a Setup or Sample error wrapped in [Unavailable] takes the mode out
// (the table says why) and the run goes on; any other error ends the run,
// named by round, mode and group. A nested module (integration/wireguard,
// examples/...) may import this package: Go's internal rule is by import
// path, and its go.mod replaces the root module with ../.. already.
//
// Round numbers start at 1; round 0 is the warm-up. Adding a mode to an
// existing benchmark is adding one Mode to its group (batchbench writers:
// one entry in writersModes).
package bench
