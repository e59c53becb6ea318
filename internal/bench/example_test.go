package bench_test

import (
	"context"
	"os"

	"github.com/batchconn/batchconn/internal/bench"
)

// sample is what one measurement of a made-up DNS benchmark produces.
type sample struct {
	Queries, Seconds, CPUNs float64
}

// A whole benchmark on the engine: two modes (a server on a *net.UDPConn
// and on a Conn), what one sample measures, the figures to show and a
// target. A real one parses its flags with bench.Parse and an
// bench.Output, and exits with bench.Exit.
func Example() {
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	mode := func(name string, qps float64) bench.Mode[sample] {
		// Setup would start the server on a fresh socket and Teardown
		// close it; Sample sends the load and returns what it measured.
		return bench.Mode[sample]{Name: name, Sample: func(ctx context.Context, round int) (sample, error) {
			q := qps * (1 + float64(round)/10) // this round's load on the machine
			return sample{Queries: q, Seconds: 1, CPUNs: 1e9 * q / qps}, nil
		}}
	}
	res, err := bench.Run(ctx, bench.Plan[sample]{Name: "dnsbench", Rounds: 5, Warmup: true,
		Groups:   []bench.Group[sample]{{Modes: []bench.Mode[sample]{mode("udpconn", 100_000), mode("conn", 130_000)}}},
		Progress: os.Stderr})
	if err != nil {
		panic(err)
	}
	env := bench.Env{GoVersion: "go1.26.8", GOOS: "linux", GOARCH: "amd64", Kernel: "Linux 6.18", NumCPU: 2, GOMAXPROCS: 2} // bench.ThisMachine()
	rep := bench.Report[sample]{Results: res, Env: env,
		Head: "dnsbench: miekg/dns on a *net.UDPConn and on a Conn\n" + env.String() + "\n\n",
		Columns: []bench.Column[sample]{
			{Name: "queries/s", JSON: "queries_per_sec", Value: func(s sample) float64 { return s.Queries / s.Seconds }, Format: bench.Rate, Range: true},
			{Name: "CPU/query", JSON: "cpu_ns_per_query", Value: func(s sample) float64 { return s.CPUNs / s.Queries }, Format: bench.Nanos},
			{Name: "vs udpconn", JSON: "vs_udpconn", Of: "queries/s", Vs: bench.Ref("udpconn")},
			{Name: "CPU vs udpconn", Of: "CPU/query", Vs: bench.Ref("udpconn"), Inverse: true}, // the reference's over this one's
		},
		Goals: []bench.Goal{{Mode: "conn", Column: "vs udpconn", Cmp: bench.AtLeast, Want: 1.2}},
		Name:  "DNS", Pkg: "github.com/batchconn/batchconn/examples/dns", Chart: bench.Chart{Title: "dnsbench"},
	}
	if err := rep.Write(os.Stdout, bench.Output{Format: "table"}); err != nil { // -json, -format gobench, -svg alike
		panic(err)
	}
	// Output:
	// dnsbench: miekg/dns on a *net.UDPConn and on a Conn
	// Linux 6.18, go1.26.8 linux/amd64, 2 CPUs
	//
	// mode     queries/s    (min–max)  CPU/query  vs udpconn  CPU vs udpconn
	// udpconn       130k  (110k–150k)     10.0µs       1.00x           1.00x
	// conn          169k  (143k–195k)     7692ns       1.30x           1.30x
	//
	// targets met: 1, missed: 0
}
