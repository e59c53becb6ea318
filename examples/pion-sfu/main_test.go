package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
	"github.com/batchconn/batchconn/internal/bench/benchtest"
)

// TestMain lets the test binary stand in for the processes bench starts
// (the SFU and the load): it re-executes os.Executable, which under go
// test is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(envTestChild) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const envTestChild = "PION_SFU_TEST_CHILD"

func TestCommandLine(t *testing.T) {
	benchtest.CommandLine(t, run, []benchtest.Usage{
		{Name: "no command is a usage error", Status: 2, InStderr: "no command given"},
		{Name: "an unknown command is a usage error", Args: []string{"forward"}, Status: 2, InStderr: `unknown command "forward"`},
		{Name: "-h prints the commands", Args: []string{"-h"}, Status: 0, InStderr: "pion-sfu load [flags]"},
		{Name: "serve -h prints serve's flags", Args: []string{"serve", "-h"}, Status: 0, InStderr: "-socket"},
		{Name: "load -h prints load's flags", Args: []string{"load", "-h"}, Status: 0, InStderr: "-subscribers"},
		{Name: "bench -h prints bench's flags", Args: []string{"bench", "-h"}, Status: 0, InStderr: "-configs"},
		{Name: "a bad flag names the command's help", Args: []string{"load", "-rate", "x"}, Status: 2, InStderr: "run 'pion-sfu load -h'"},
	})
}

func TestServeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c serveConfig)
	}{
		{name: "no flags give the documented defaults", check: func(t *testing.T, c serveConfig) {
			if c.socket != "conn-queue" || c.addr != "127.0.0.1:50000" || c.http != "127.0.0.1:8080" || c.queue != 1<<20 || c.control {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "every socket is accepted", args: []string{"-socket", "conn-queue-gro", "-queue", "256KiB"}, check: func(t *testing.T, c serveConfig) {
			if c.socket != "conn-queue-gro" || c.queue != 256<<10 {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "an unknown socket is refused", args: []string{"-socket", "tcp"}, wantErr: `-socket "tcp"`},
		{name: "a queue of 0 is refused", args: []string{"-queue", "0"}, wantErr: `-queue "0"`},
		{name: "a queue over 1GiB is refused", args: []string{"-queue", "2GiB"}, wantErr: "at most 1GiB"},
		{name: "a queue without a number is refused", args: []string{"-queue", "KiB"}, wantErr: `-queue "KiB"`},
		{name: "an unknown flag is refused", args: []string{"-port", "5000"}, wantErr: "-port"},
		{name: "a positional argument is refused", args: []string{"now"}, wantErr: `unexpected argument "now"`},
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
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-addr", "127.0.0.1"}, "-addr 127.0.0.1: "},
		{[]string{"-addr", "127.0.0.1:99999"}, "-addr 127.0.0.1:99999: "},
		{[]string{"-addr", "[::1]:0"}, "-addr [::1]:0: "},
		{[]string{"-addr", "127.0.0.1:0", "-http", "127.0.0.1:99999"}, "-http 127.0.0.1:99999: "},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			if status := run(append([]string{"serve", "-socket", "conn"}, tc.args...), strings.NewReader(""), io.Discard, &stderr); status != 1 {
				t.Errorf("status %d, want 1; stderr:\n%s", status, stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), "pion-sfu: "+tc.says) {
				t.Errorf("stderr does not start with %q:\n%s", "pion-sfu: "+tc.says, stderr.String())
			}
		})
	}
}

// TestServeControl: serve's hidden control protocol, which bench uses:
// an http line, then serving until stdin closes.
func TestServeControl(t *testing.T) {
	var stdout, stderr bytes.Buffer
	status := run([]string{"serve", "-addr", "127.0.0.1:0", "-http", "127.0.0.1:0", "-" + bench.ControlFlag}, strings.NewReader(""), &stdout, &stderr)
	if status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "http 127.0.0.1:") || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("stdout %q, want one http line", stdout.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestLoadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c loadFlags)
	}{
		{name: "no flags give the documented defaults", check: func(t *testing.T, c loadFlags) {
			want := loadConfig{server: "http://127.0.0.1:8080", publishers: 1, subscribers: 10, rate: 300, duration: 5 * time.Second, size: 1200}
			if c.loadConfig != want || c.json {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "fractions of a second are taken", args: []string{"-seconds", "0.5"}, check: func(t *testing.T, c loadFlags) {
			if c.duration != 500*time.Millisecond {
				t.Errorf("duration = %v", c.duration)
			}
		}},
		{name: "a server that is not a URL is refused", args: []string{"-server", "127.0.0.1:8080"}, wantErr: `-server "127.0.0.1:8080"`},
		{name: "a server without a host is refused", args: []string{"-server", "http://"}, wantErr: `-server "http://"`},
		{name: "a server of another scheme is refused", args: []string{"-server", "ftp://x"}, wantErr: `-server "ftp://x"`},
		{name: "0 publishers are refused", args: []string{"-publishers", "0"}, wantErr: "-publishers 0"},
		{name: "too many publishers are refused", args: []string{"-publishers", "1001"}, wantErr: "-publishers 1001"},
		{name: "0 subscribers are refused", args: []string{"-subscribers", "0"}, wantErr: "-subscribers 0"},
		{name: "negative subscribers are refused", args: []string{"-subscribers", "-5"}, wantErr: "-subscribers -5"},
		{name: "a rate under a packet per frame is refused", args: []string{"-rate", "29"}, wantErr: "-rate 29"},
		{name: "a rate over 100000 is refused", args: []string{"-rate", "100001"}, wantErr: "-rate 100001"},
		{name: "0 seconds are refused", args: []string{"-seconds", "0"}, wantErr: "-seconds 0"},
		{name: "NaN seconds are refused", args: []string{"-seconds", "NaN"}, wantErr: "-seconds NaN"},
		{name: "seconds over an hour are refused", args: []string{"-seconds", "3601"}, wantErr: "-seconds 3601"},
		{name: "a payload under 8 bytes is refused", args: []string{"-size", "7"}, wantErr: "-size 7"},
		{name: "a payload over 1400 bytes is refused", args: []string{"-size", "1401"}, wantErr: "-size 1401"},
		{name: "a positional argument is refused", args: []string{"go"}, wantErr: `unexpected argument "go"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, ok := benchtest.Flags(t, parseLoadFlags, tc.args, tc.wantErr); ok && tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestLoadWithoutSFU(t *testing.T) {
	var stderr bytes.Buffer
	status := run([]string{"load", "-server", "http://127.0.0.1:1", "-subscribers", "1", "-seconds", "0.1"}, nil, io.Discard, &stderr)
	if status != 1 || !strings.Contains(stderr.String(), "publisher 0:") || !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("status %d, stderr:\n%s\nwant status 1 and the refused connection of publisher 0", status, stderr.String())
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c benchConfig)
	}{
		{name: "no flags give the documented defaults", check: func(t *testing.T, c benchConfig) {
			want := []shape{{2, 2, 100}, {1, 50, 300}, {4, 10, 300}, {1, 50, 900}, {4, 10, 900}}
			if c.count != 5 || c.seconds != 5 || !slices.Equal(c.shapes, want) || !slices.Equal(c.sockets, defaultSockets) ||
				c.size != 1200 || c.queue != 1<<20 || c.out.Format != "table" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "configurations are taken in the order given", args: []string{"-configs", " 2x3@60 ,1x1@30"}, check: func(t *testing.T, c benchConfig) {
			if !slices.Equal(c.shapes, []shape{{2, 3, 60}, {1, 1, 30}}) {
				t.Errorf("shapes = %v", c.shapes)
			}
		}},
		{name: "count 0 is refused", args: []string{"-count", "0"}, wantErr: "-count 0"},
		{name: "count over 1000 is refused", args: []string{"-count", "1001"}, wantErr: "-count 1001"},
		{name: "seconds under 0.1 are refused", args: []string{"-seconds", "0.05"}, wantErr: "-seconds 0.05"},
		{name: "infinite seconds are refused", args: []string{"-seconds", "+Inf"}, wantErr: "-seconds +Inf"},
		{name: "a configuration without @ is refused", args: []string{"-configs", "1x50"}, wantErr: `"1x50" is not a configuration`},
		{name: "a configuration without x is refused", args: []string{"-configs", "50@300"}, wantErr: `"50@300" is not a configuration`},
		{name: "0 publishers are refused", args: []string{"-configs", "0x50@300"}, wantErr: `has publishers "0"`},
		{name: "publishers that are not a number are refused", args: []string{"-configs", "ax50@300"}, wantErr: `has publishers "a"`},
		{name: "too many subscribers are refused", args: []string{"-configs", "1x1001@300"}, wantErr: `has subscribers "1001"`},
		{name: "a rate under 30 is refused", args: []string{"-configs", "1x50@10"}, wantErr: `has rate "10"`},
		{name: "a rate over 100000 is refused", args: []string{"-configs", "1x50@100001"}, wantErr: `has rate "100001"`},
		{name: "a configuration listed twice is refused", args: []string{"-configs", "1x50@300,1x50@300"}, wantErr: "listed twice"},
		{name: "an empty configuration is refused", args: []string{"-configs", "1x50@300,"}, wantErr: `"" is not a configuration`},
		{name: "an unknown socket is refused", args: []string{"-sockets", "udpconn,xdp"}, wantErr: `"xdp" is not one of`},
		{name: "sockets without udpconn are refused", args: []string{"-sockets", "conn,conn-queue"}, wantErr: "udpconn must be among them"},
		{name: "a socket listed twice is refused", args: []string{"-sockets", "udpconn,udpconn"}, wantErr: "udpconn listed twice"},
		{name: "a payload over 1400 bytes is refused", args: []string{"-size", "1500"}, wantErr: "-size 1500"},
		{name: "a queue over 1GiB is refused", args: []string{"-queue", "8GiB"}, wantErr: "at most 1GiB"},
		{name: "an unknown format is refused", args: []string{"-format", "xml"}, wantErr: `-format "xml"`},
		{name: "-json and another format contradict", args: []string{"-json", "-format", "gobench"}, wantErr: "contradict"},
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

// TestBenchSmallestRun runs the benchmark as a user would, at its
// smallest (one round, one small configuration, half a second per run),
// and checks its output's shape: the table's rows and the JSON's.
func TestBenchSmallestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts an SFU and a load process per socket")
	}
	t.Setenv(envTestChild, "1")
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-count", "1", "-seconds", "0.5", "-configs", "1x2@60"}
	if status := run(args, nil, &stdout, &stderr); status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"CPU/fwd", "fwd/s", "delivered", "vs udpconn", "targets met:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table has no %q:\n%s", want, out)
		}
	}
	for _, s := range defaultSockets {
		if !strings.Contains(out, "\n1x2@60  "+s+" ") {
			t.Errorf("the table has no row for 1x2@60 %s:\n%s", s, out)
		}
	}

	stdout.Reset()
	if status := run(append(args, "-sockets", "udpconn,conn-queue", "-json"), nil, &stdout, &stderr); status != 0 {
		t.Fatalf("-json: status %d; stderr:\n%s", status, stderr.String())
	}
	var rep struct {
		Modes []struct {
			Group, Mode string
			Samples     []sample
		}
		Targets []struct {
			Where, What string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	if len(rep.Modes) != 2 || rep.Modes[0].Mode != "udpconn" || rep.Modes[1].Mode != "conn-queue" || rep.Modes[1].Group != "1x2@60" {
		t.Fatalf("-json modes: %+v", rep.Modes)
	}
	for _, m := range rep.Modes {
		if len(m.Samples) != 1 {
			t.Fatalf("%s: %d samples, want 1", m.Mode, len(m.Samples))
		}
		s := m.Samples[0]
		if s.Publishers != 1 || s.Subscribers != 2 || s.Sent == 0 || s.Expected != 2*s.Sent || s.SFUCPUNs <= 0 || s.SFUForward == 0 {
			t.Errorf("%s: sample %+v", m.Mode, s)
		}
	}
	if len(rep.Targets) != 3 || rep.Targets[0].Where != "1x2@60" || !strings.HasPrefix(rep.Targets[0].What, "conn-queue CPU/fwd vs udpconn <= 0.85") {
		t.Errorf("-json targets: %+v", rep.Targets)
	}
}
