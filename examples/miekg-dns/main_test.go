package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/batchconn/batchconn/internal/bench"
	"github.com/batchconn/batchconn/internal/bench/benchtest"
)

// TestMain lets the test binary stand in for the server processes bench
// starts: it re-executes os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(envTestChild) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const envTestChild = "MIEKG_DNS_TEST_CHILD"

func TestCommandLine(t *testing.T) {
	benchtest.CommandLine(t, run, []benchtest.Usage{
		{Name: "no command is a usage error", Status: 2, InStderr: "no command given"},
		{Name: "an unknown command is a usage error", Args: []string{"query"}, Status: 2, InStderr: `unknown command "query"`},
		{Name: "-h prints the commands", Args: []string{"-h"}, Status: 0, InStderr: "miekg-dns bench [flags]"},
		{Name: "serve -h prints serve's flags", Args: []string{"serve", "-h"}, Status: 0, InStderr: "-socket"},
		{Name: "bench -h prints bench's flags", Args: []string{"bench", "-h"}, Status: 0, InStderr: "-outstanding"},
		{Name: "the hidden flag is not in the help", Args: []string{"serve", "-h"}, Status: 0, InStderr: ""},
		{Name: "a bad flag names the command's help", Args: []string{"bench", "-count", "x"}, Status: 2, InStderr: "run 'miekg-dns bench -h'"},
	})
}

func TestServeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c serveConfig)
	}{
		{name: "no flags give the documented defaults", check: func(t *testing.T, c serveConfig) {
			if c.socket != "conn" || c.network != "udp4" || c.addr != "127.0.0.1:5353" || c.queue != 1<<20 || c.control {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "every socket is accepted", args: []string{"-socket", "conn-queue", "-queue", "64KiB"}, check: func(t *testing.T, c serveConfig) {
			if c.socket != "conn-queue" || c.queue != 64<<10 {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "an unknown socket is refused", args: []string{"-socket", "xdp"}, wantErr: `-socket "xdp"`},
		{name: "an empty socket is refused", args: []string{"-socket", ""}, wantErr: `-socket ""`},
		{name: "an unknown network is refused", args: []string{"-net", "tcp"}, wantErr: `-net "tcp"`},
		{name: "a queue of 0 is refused", args: []string{"-queue", "0"}, wantErr: `-queue "0"`},
		{name: "a negative queue is refused", args: []string{"-queue", "-1KiB"}, wantErr: `-queue "-1KiB"`},
		{name: "a queue over 1GiB is refused", args: []string{"-queue", "2GiB"}, wantErr: "at most 1GiB"},
		{name: "a queue with an unknown suffix is refused", args: []string{"-queue", "1MB"}, wantErr: `-queue "1MB"`},
		{name: "an unknown flag is refused", args: []string{"-port", "53"}, wantErr: "-port"},
		{name: "a positional argument is refused", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, ok := benchtest.Flags(t, parseServeFlags, tc.args, tc.wantErr); ok && tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestServeListenErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1"},
		{"-addr", "[::1:53"},
		{"-addr", "127.0.0.1:99999"},
		{"-net", "udp6", "-addr", "127.0.0.1:0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			if status := run(append([]string{"serve"}, args...), strings.NewReader(""), io.Discard, &stderr); status != 1 {
				t.Errorf("status %d, want 1; stderr:\n%s", status, stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), "miekg-dns: -addr "+args[len(args)-1]+": ") {
				t.Errorf("stderr does not say listening failed:\n%s", stderr.String())
			}
		})
	}
}

// TestServeControl: serve's hidden control protocol, which bench uses.
func TestServeControl(t *testing.T) {
	var stdout, stderr bytes.Buffer
	status := run([]string{"serve", "-addr", "127.0.0.1:0", "-" + bench.ControlFlag}, strings.NewReader("cpu\ncpu\n"), &stdout, &stderr)
	if status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "addr 127.0.0.1:") ||
		!strings.HasPrefix(lines[1], "cpu ") || !strings.HasPrefix(lines[2], "cpu ") {
		t.Errorf("stdout:\n%s\nwant an addr line and two cpu lines", stdout.String())
	}
	stderr.Reset()
	status = run([]string{"serve", "-addr", "127.0.0.1:0", "-" + bench.ControlFlag}, strings.NewReader("stats\n"), io.Discard, &stderr)
	if status != 1 || !strings.Contains(stderr.String(), `unknown command "stats"`) {
		t.Errorf("an unknown control command: status %d, stderr:\n%s", status, stderr.String())
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c benchConfig)
	}{
		{name: "no flags give the documented defaults", check: func(t *testing.T, c benchConfig) {
			if c.count != 5 || c.seconds != 5 || c.clients != 8 || c.outstanding != 100 || c.queue != 1<<20 ||
				!slices.Equal(c.sockets, sockets.Names()) || c.out.Format != "table" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "sockets are taken in the order given", args: []string{"-sockets", "conn,udpconn"}, check: func(t *testing.T, c benchConfig) {
			if !slices.Equal(c.sockets, []string{"conn", "udpconn"}) {
				t.Errorf("sockets = %v", c.sockets)
			}
		}},
		{name: "-json is -format json", args: []string{"-json"}, check: func(t *testing.T, c benchConfig) {
			if c.out.Format != "json" {
				t.Errorf("format = %q", c.out.Format)
			}
		}},
		{name: "count 0 is refused", args: []string{"-count", "0"}, wantErr: "-count 0"},
		{name: "count over 1000 is refused", args: []string{"-count", "1001"}, wantErr: "-count 1001"},
		{name: "a count that is not a number is refused", args: []string{"-count", "many"}, wantErr: "-count"},
		{name: "seconds 0 is refused", args: []string{"-seconds", "0"}, wantErr: "-seconds 0"},
		{name: "seconds over an hour are refused", args: []string{"-seconds", "3601"}, wantErr: "-seconds 3601"},
		{name: "clients 0 are refused", args: []string{"-clients", "0"}, wantErr: "-clients 0"},
		{name: "clients over dnsperf's 256 are refused", args: []string{"-clients", "257"}, wantErr: "-clients 257"},
		{name: "outstanding 0 is refused", args: []string{"-outstanding", "0"}, wantErr: "-outstanding 0"},
		{name: "outstanding over 65535 is refused", args: []string{"-outstanding", "65536"}, wantErr: "-outstanding 65536"},
		{name: "an unknown socket is refused", args: []string{"-sockets", "udpconn,quic"}, wantErr: `"quic" is not one of`},
		{name: "a socket listed twice is refused", args: []string{"-sockets", "udpconn,conn,conn"}, wantErr: "conn listed twice"},
		{name: "sockets without udpconn are refused", args: []string{"-sockets", "conn,conn-queue"}, wantErr: "udpconn must be among them"},
		{name: "an empty socket list is refused", args: []string{"-sockets", ""}, wantErr: `"" is not one of`},
		{name: "a queue of 0 is refused", args: []string{"-queue", "0"}, wantErr: `-queue "0"`},
		{name: "a queue over 1GiB is refused", args: []string{"-queue", "4GiB"}, wantErr: "at most 1GiB"},
		{name: "an unknown format is refused", args: []string{"-format", "csv"}, wantErr: `-format "csv"`},
		{name: "-json and another format contradict", args: []string{"-json", "-format", "table"}, wantErr: "contradict"},
		{name: "an -svg file in no directory is refused", args: []string{"-svg", "/no/such/dir/x.svg"}, wantErr: "no directory"},
		{name: "a positional argument is refused", args: []string{"now"}, wantErr: `unexpected argument "now"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, ok := benchtest.Flags(t, parseBenchFlags, tc.args, tc.wantErr); ok && tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestParseDNSPerf(t *testing.T) {
	const good = `Statistics:

  Queries sent:         9
  Queries completed:    8 (88.89%)
  Queries lost:         1 (11.11%)

  Response codes:       NOERROR 6 (75.00%), NXDOMAIN 2 (25.00%)
  Average packet size:  request 34, response 103
  Run time (s):         0.002933
  Queries per second:   3068.530515
`
	r, err := parseDNSPerf(good)
	if err != nil {
		t.Fatal(err)
	}
	want := dnsperfResult{sent: 9, completed: 8, lost: 1, noerror: 6, rcodes: "NOERROR 6 (75.00%), NXDOMAIN 2 (25.00%)", seconds: 0.002933}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	for _, bad := range []struct{ name, out, says string }{
		{"empty output", "", `no "Queries sent" line`},
		{"no sent line", strings.Replace(good, "Queries sent", "Sent", 1), `no "Queries sent" line`},
		{"no lost line", strings.Replace(good, "Queries lost", "Lost", 1), `no "Queries lost" line`},
		{"no run time", strings.Replace(good, "Run time (s)", "Time", 1), "no run time"},
		{"no response codes", strings.Replace(good, "Response codes", "Codes", 1), "no response codes"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := parseDNSPerf(bad.out)
			if err == nil || !strings.Contains(err.Error(), bad.says) {
				t.Errorf("error %v, want one saying %s", err, bad.says)
			}
		})
	}
}

// TestBenchSmallestRun runs the benchmark as a user would, at its
// smallest (one round, one second per socket), and checks its output's
// shape: the table's rows, and the JSON's modes, figures and targets.
func TestBenchSmallestRun(t *testing.T) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		t.Skip("dnsperf is not installed (Debian: apt-get install dnsperf)")
	}
	t.Setenv(envTestChild, "1")
	var stdout, stderr bytes.Buffer
	if status := run([]string{"bench", "-count", "1", "-seconds", "1"}, nil, &stdout, &stderr); status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"mode ", "queries/s", "CPU/query", "vs udpconn", "vs packetconn", "lost", "targets met:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table has no %q:\n%s", want, out)
		}
	}
	for _, s := range sockets.Names() {
		if !strings.Contains(out, "\n"+s+" ") {
			t.Errorf("the table has no row for %s:\n%s", s, out)
		}
	}

	stdout.Reset()
	if status := run([]string{"bench", "-count", "1", "-seconds", "1", "-sockets", "udpconn,conn", "-json"}, nil, &stdout, &stderr); status != 0 {
		t.Fatalf("-json: status %d; stderr:\n%s", status, stderr.String())
	}
	var rep struct {
		Modes []struct {
			Mode    string
			Samples []sample
			QPS     struct{ Median float64 } `json:"queries_per_second"`
		}
		Targets []struct {
			What string
			Met  bool
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	if len(rep.Modes) != 2 || rep.Modes[0].Mode != "udpconn" || rep.Modes[1].Mode != "conn" {
		t.Fatalf("-json modes: %+v", rep.Modes)
	}
	for _, m := range rep.Modes {
		if len(m.Samples) != 1 || m.Samples[0].Completed == 0 || m.Samples[0].CPUNs <= 0 {
			t.Errorf("%s: samples %+v, want one with answers and CPU time", m.Mode, m.Samples)
		}
		if m.QPS.Median <= 0 {
			t.Errorf("%s: queries/s %+v", m.Mode, m.QPS)
		}
	}
	if len(rep.Targets) != 1 || !strings.HasPrefix(rep.Targets[0].What, "conn queries/s vs udpconn >= 1.2") {
		t.Errorf("-json targets: %+v", rep.Targets)
	}
}
