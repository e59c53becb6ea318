package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/batchconn/batchconn/internal/bench"
	"github.com/batchconn/batchconn/internal/bench/benchtest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c config)
	}{
		{name: "no flags give the README defaults", args: nil, check: func(t *testing.T, c config) {
			if c.size != 1200 || c.batch != 64 || c.dests != 1 || c.count != 15 || c.duration != 150*time.Millisecond {
				t.Errorf("defaults = size %d batch %d dests %d count %d duration %v", c.size, c.batch, c.dests, c.count, c.duration)
			}
			if c.out.Format != "table" || c.ipv6 || c.netns || c.out.Quiet {
				t.Errorf("defaults = format %q ipv6 %v netns %v quiet %v", c.out.Format, c.ipv6, c.netns, c.out.Quiet)
			}
			if !slices.Equal(c.modes, allModes) {
				t.Errorf("modes = %v, want all", c.modes)
			}
		}},
		{name: "size 0 is refused", args: []string{"-size", "0"}, wantErr: "-size 0"},
		{name: "negative size is refused", args: []string{"-size", "-5"}, wantErr: "-size -5"},
		{name: "size over 65507 is refused over IPv4", args: []string{"-size", "65508"}, wantErr: "65507"},
		{name: "size 65507 is the IPv4 maximum", args: []string{"-size", "65507"}},
		{name: "size 65527 is the IPv6 maximum", args: []string{"-ipv6", "-size", "65527"}},
		{name: "size over 65527 is refused over IPv6", args: []string{"-ipv6", "-size", "65528"}, wantErr: "65527"},
		{name: "batch 0 is refused", args: []string{"-batch", "0"}, wantErr: "-batch 0"},
		{name: "batch over 1024 is refused", args: []string{"-batch", "1025"}, wantErr: "1024"},
		{name: "batch 1024 is allowed", args: []string{"-batch", "1024"}},
		{name: "negative duration is refused", args: []string{"-duration", "-1s"}, wantErr: "-duration -1s"},
		{name: "zero duration is refused", args: []string{"-duration", "0"}, wantErr: "at least 10ms"},
		{name: "a 1ns duration is refused", args: []string{"-duration", "1ns"}, wantErr: "-duration 1ns: at least 10ms"},
		{name: "a duration just under the minimum is refused", args: []string{"-duration", "9ms"}, wantErr: "at least 10ms"},
		{name: "the minimum duration is allowed", args: []string{"-duration", "10ms"}},
		{name: "count 0 is refused", args: []string{"-count", "0"}, wantErr: "-count 0"},
		{name: "dests 0 is refused", args: []string{"-dests", "0"}, wantErr: "-dests 0"},
		{name: "more dests than batch is refused", args: []string{"-batch", "4", "-dests", "5"}, wantErr: "more destinations"},
		{name: "modes are put in table order", args: []string{"-modes", "raw-gso, writeto"}, check: func(t *testing.T, c config) {
			if want := []string{"writeto", "raw-gso"}; !slices.Equal(c.modes, want) {
				t.Errorf("modes = %v, want %v", c.modes, want)
			}
		}},
		{name: "an unknown mode is refused", args: []string{"-modes", "writeto,sendto"}, wantErr: `unknown mode "sendto"`},
		{name: "a mode listed twice is refused", args: []string{"-modes", "xnet,xnet"}, wantErr: "twice"},
		{name: "an empty mode list is refused", args: []string{"-modes", ","}, wantErr: "no modes"},
		{name: "json selects the json format", args: []string{"-json"}, check: func(t *testing.T, c config) {
			if c.out.Format != "json" {
				t.Errorf("format = %q", c.out.Format)
			}
		}},
		{name: "gobench format is accepted", args: []string{"-format", "gobench"}},
		{name: "an unknown format is refused", args: []string{"-format", "csv"}, wantErr: `-format "csv"`},
		{name: "json with gobench contradict", args: []string{"-json", "-format", "gobench"}, wantErr: "contradict"},
		{name: "json with an explicit table format contradict", args: []string{"-json", "-format", "table"}, wantErr: "-json and -format table contradict"},
		{name: "json with an explicit json format agree", args: []string{"-format", "json", "-json"}, check: func(t *testing.T, c config) {
			if c.out.Format != "json" {
				t.Errorf("format = %q", c.out.Format)
			}
		}},
		{name: "an unknown flag is refused", args: []string{"-sizes", "3"}, wantErr: "sizes"},
		{name: "a non-number is refused", args: []string{"-batch", "many"}, wantErr: "batch"},
		{name: "a positional argument is refused", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, ok := benchtest.Flags(t, parseFlags, tt.args, tt.wantErr); ok && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestBadFlagsExitWithStatus2AndAMessage(t *testing.T) {
	for _, args := range [][]string{
		{"-size", "0"}, {"-size", "70000"}, {"-batch", "2000"}, {"-duration", "-3s"}, {"-nope"}, {"-count", "x"},
		{"-duration", "1ns"}, {"-json", "-format", "table"},
	} {
		var stdout, stderr bytes.Buffer
		if code := batchbench(args, &stdout, &stderr); code != 2 {
			t.Errorf("batchbench(%q) exit status = %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("batchbench(%q) wrote to stdout: %q", args, stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "batchbench: ") || strings.Count(msg, "\n") > 3 {
			t.Errorf("batchbench(%q) stderr = %q, want a short batchbench: message", args, msg)
		}
	}
}

func TestHelpExitsWith0(t *testing.T) {
	var stderr bytes.Buffer
	if code := batchbench([]string{"-h"}, io.Discard, &stderr); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-dests") {
		t.Errorf("help does not list the flags: %q", stderr.String())
	}
	if _, err := parseFlags([]string{"-help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: err = %v, want flag.ErrHelp", err)
	}
}

// sendOut is the send report's JSON as a script reads it.
type sendOut struct {
	sendDoc
	Modes []struct {
		Mode, Unavailable string
		Samples           []sample
		SentPerSec        bench.Stat  `json:"sent_per_sec"`
		SyscallsPerDgram  bench.Stat  `json:"syscalls_per_dgram"`
		AllocsPerBatch    bench.Stat  `json:"allocs_per_batch"`
		VsWriteTo         *bench.Stat `json:"vs_writeto"`
		RawRef            string      `json:"raw_ref"`
		VsRaw             *bench.Stat `json:"vs_raw"`
		MedianRound       int         `json:"median_round"`
	} `json:"modes"`
}

// write writes rep as out asks, failing the test on an error.
func write[S any](t *testing.T, rep *bench.Report[S], out bench.Output) string {
	t.Helper()
	var b bytes.Buffer
	if err := rep.Write(&b, out); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// sendJSON is rep's -json output, decoded.
func sendJSON(t *testing.T, rep *bench.Report[sample]) *sendOut {
	t.Helper()
	out := write(t, rep, bench.Output{Format: "json"})
	var r sendOut
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return &r
}

// fakeReport is a send report of made-up but consistent samples.
func fakeReport() *bench.Report[sample] {
	d := &sendDoc{CPUClock: "test clock"}
	d.Config.Size, d.Config.Batch, d.Config.Dests = 1200, 64, 1
	d.Config.Duration, d.Config.Count = 100*time.Millisecond, 2
	d.Config.Modes, d.Config.Network, d.Config.Path, d.Config.SegsPerGSO = allModes, "udp4", "loopback", 54
	d.Env.GOOS, d.Env.GOARCH, d.Env.GOMAXPROCS, d.Env.Kernel = "linux", "amd64", 2, "Linux 6.18"
	d.GSO.Available, d.GSO.Used = true, true
	perBatch := map[string]time.Duration{ // time for one batch of 64
		modeWriteTo: 200 * time.Microsecond, modeXNet: 170 * time.Microsecond,
		modeBatchconn: 160 * time.Microsecond, modeBatchconnGSO: 40 * time.Microsecond,
		modeRawSendmmsg: 155 * time.Microsecond, modeRawGSO: 36 * time.Microsecond,
	}
	res := &bench.Results[sample]{}
	for _, m := range allModes {
		s := &bench.Series[sample]{Mode: m}
		for round := 1; round <= 2; round++ {
			batches := uint64(100*time.Millisecond/perBatch[m]) + uint64(round)
			sent := batches * 64
			s.Samples = append(s.Samples, bench.Sample[sample]{Round: round, Value: sample{
				Round: round, Elapsed: 100 * time.Millisecond, Batches: batches, Sent: sent,
				Delivered: sent - sent/100, Bytes: sent * 1200, CPU: 90 * time.Millisecond,
				Syscalls: batches, GSOSends: 2 * batches, SentPerSec: float64(sent) * 10,
			}})
		}
		res.Series = append(res.Series, s)
	}
	return d.report(res)
}

func TestSendReportFiguresAndWinner(t *testing.T) {
	rep := fakeReport()
	if w := rep.Fastest(); w != modeBatchconnGSO {
		t.Errorf("winner = %q, want batchconn-gso (raw modes are the limit, not contenders)", w)
	}
	if st := rep.Figure("", modeBatchconnGSO, "vs writeto"); st == nil || st.Median < 4.9 || st.Median > 5.1 {
		t.Errorf("batchconn-gso vs writeto = %+v, want about 5", st)
	}
	if st := rep.Figure("", modeWriteTo, "syscalls/dgram"); st == nil || st.Median != 1.0/64 {
		t.Errorf("syscalls/dgram = %+v, want 1/64", st)
	}
	r := sendJSON(t, rep)
	for _, m := range r.Modes {
		if want := rawRefOf(m.Mode); m.RawRef != want || m.VsRaw == nil {
			t.Errorf("%s: raw reference %q (%+v), want %s", m.Mode, m.RawRef, m.VsRaw, want)
		}
	}
	if r.Winner != modeBatchconnGSO {
		t.Errorf("JSON winner = %q", r.Winner)
	}
}

func TestJSONOutputRoundTrips(t *testing.T) {
	out := write(t, fakeReport(), bench.Output{Format: "json"})
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	for _, key := range []string{"config", "env", "gso", "cpu_clock", "sender_cpu_share", "modes", "winner"} {
		if _, ok := got[key]; !ok {
			t.Errorf("JSON has no %q", key)
		}
	}
	back := sendJSON(t, fakeReport())
	if len(back.Modes) != len(allModes) || back.Config.Duration != 100*time.Millisecond {
		t.Fatalf("decoded %d modes, duration %v", len(back.Modes), back.Config.Duration)
	}
	// The keys a script reads, in every mode.
	for _, key := range []string{"sent_per_sec", "delivered_per_sec", "lost_fraction", "gbit_per_sec", "cpu_ns_per_dgram",
		"syscalls_per_dgram", "allocs_per_batch", "gso_sends_per_batch", "vs_writeto", "vs_raw"} {
		if n := strings.Count(out, `"`+key+`": {`); n != len(allModes) {
			t.Errorf("JSON has %d %q summaries, want one per mode", n, key)
		}
	}
	for _, key := range []string{"lost_fraction_total", "median_round", "median_round_delivered_per_sec", "median_round_lost_fraction", "raw_ref"} {
		if n := strings.Count(out, `"`+key+`": `); n != len(allModes) {
			t.Errorf("JSON has %d %q, want one per mode", n, key)
		}
	}
	m := back.Modes[0]
	if m.SentPerSec.Median <= 0 || m.SentPerSec.Min > m.SentPerSec.Median || m.SentPerSec.Max < m.SentPerSec.Median {
		t.Errorf("sent/s summary %+v is not min <= median <= max", m.SentPerSec)
	}
	if m.Samples[0].SentPerSec <= 0 || m.Samples[1].Round != 2 {
		t.Errorf("samples carry no sent_per_sec or round: %+v", m.Samples)
	}
}

func TestGobenchOutputIsWhatBenchstatReads(t *testing.T) {
	out := write(t, fakeReport(), bench.Output{Format: "gobench"})
	line := regexp.MustCompile(`^BenchmarkSend/mode=[a-z-]+/path=loopback/net=udp4/size=1200/batch=64/dests=1-2\t\d+(\t[0-9.]+ [a-zA-Z/-]+)+$`)
	config := regexp.MustCompile(`^[a-z]+: \S.*$`)
	benches := 0
	for l := range strings.Lines(out) {
		l = strings.TrimSuffix(l, "\n")
		switch {
		case strings.HasPrefix(l, "Benchmark"):
			benches++
			if !line.MatchString(l) {
				t.Errorf("benchmark line not in the benchstat format: %q", l)
			}
		case config.MatchString(l):
		default:
			t.Errorf("stray line: %q", l)
		}
	}
	if want := len(allModes) * 2; benches != want {
		t.Errorf("%d benchmark lines, want %d (one per mode per round)", benches, want)
	}
}

func TestTableIsAligned(t *testing.T) {
	out := write(t, fakeReport(), bench.Output{Format: "table", Quiet: true})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+len(allModes) {
		t.Fatalf("-q table has %d lines, want header + %d modes:\n%s", len(lines), len(allModes), out)
	}
	// Every row's "vs writeto" column ends at the same place as the header's.
	head := []rune(lines[0])
	col := utf8.RuneCountInString(lines[0][:strings.Index(lines[0], "vs writeto")])
	col += len("vs writeto") - 1
	if head[col] != 'o' {
		t.Fatalf("header %q", lines[0])
	}
	for _, l := range lines[1:] {
		if r := []rune(l); len(r) <= col || r[col] != 'x' {
			t.Errorf("row not aligned under the header:\n%s\n%s", lines[0], l)
		}
	}
	if !strings.Contains(out, "<- fastest") {
		t.Errorf("table does not mark the winner:\n%s", out)
	}
	full := write(t, fakeReport(), bench.Output{Format: "table"})
	for _, want := range []string{"batchbench: 1200-byte datagrams in batches of 64 to 1 destination over loopback, udp4\n" +
		"Linux 6.18, ", "\nGSO: available and used (batchconn-gso: 2.0 GSO sends per batch, at most 54 datagrams each)\n",
		"\nfastest: batchconn-gso, 4.98x writeto, 0.90x raw-gso (the limit)\n", "\nbatchconn (GSO off) vs xnet WriteBatch: 1.06x",
		"\nlost over all rounds: writeto 1.0%,", "Gbit/s: payload sent. CPU/dgram: test clock.\n"} {
		if !strings.Contains(full, want) {
			t.Errorf("table lacks %q:\n%s", want, full)
		}
	}
}

func TestGSOSegmentMustFitTheMTU(t *testing.T) {
	tests := []struct {
		size, mtu int
		v6        bool
		largest   int // 0: fits
	}{
		{size: 1472, mtu: 1500},
		{size: 1473, mtu: 1500, largest: 1472},
		{size: 9000, mtu: 1500, largest: 1472},
		{size: 1452, mtu: 1500, v6: true},
		{size: 1453, mtu: 1500, v6: true, largest: 1452},
		{size: 9000, mtu: 65536},
	}
	for _, tt := range tests {
		err := segmentFits(tt.size, tt.mtu, tt.v6)
		if tt.largest == 0 {
			if err != nil {
				t.Errorf("segmentFits(%d, %d, v6=%v) = %v, want nil", tt.size, tt.mtu, tt.v6, err)
			}
			continue
		}
		e, ok := errors.AsType[*segmentTooBigError](err)
		if !ok || e.largest != tt.largest {
			t.Errorf("segmentFits(%d, %d, v6=%v) = %v, want the largest size %d", tt.size, tt.mtu, tt.v6, err, tt.largest)
		}
	}
}

// The table's sent/s, delivered/s and lost must describe the same datagrams,
// so that delivered/s = sent/s × (1 − lost), even when rounds differ widely.
func TestTableRatesAndLossReconcile(t *testing.T) {
	d := &sendDoc{CPUClock: "test clock"}
	d.Config.Size, d.Config.Batch, d.Config.Count = 1000, 100, 4
	s := &bench.Series[sample]{Mode: modeWriteTo}
	for i, c := range []struct{ sent, delivered uint64 }{
		{100_000, 100_000}, // 100k/s, nothing lost
		{200_000, 100_000}, // 200k/s, half lost
		{300_000, 270_000}, // 300k/s, 10% lost
		{400_000, 40_000},  // 400k/s, 90% lost
	} {
		s.Samples = append(s.Samples, bench.Sample[sample]{Round: i + 1, Value: sample{Round: i + 1, Elapsed: time.Second,
			Batches: c.sent / 100, Sent: c.sent, Delivered: c.delivered, Bytes: c.sent * 1000}})
	}
	rep := d.report(&bench.Results[sample]{Series: []*bench.Series[sample]{s}})
	out := write(t, rep, bench.Output{Format: "table", Quiet: true})
	row := strings.Fields(strings.Split(out, "\n")[1])
	// mode sent/s (min–max) delivered/s lost ...
	sent, delivered, lost := parseRate(t, row[1]), parseRate(t, row[3]), row[4]
	l, err := strconv.ParseFloat(strings.TrimSuffix(lost, "%"), 64)
	if err != nil {
		t.Fatalf("lost %q: %v", lost, err)
	}
	if want := sent * (1 - l/100); math.Abs(delivered-want) > 0.01*want {
		t.Errorf("sent/s %s, delivered/s %s, lost %s do not reconcile: %v x (1 - %v%%) = %v\n%s",
			row[1], row[3], lost, sent, l, want, out)
	}
	if r := sendJSON(t, rep); r.Modes[0].MedianRound != 2 {
		t.Errorf("median round = %d, want 2 (the lower middle of 4 by sent/s)", r.Modes[0].MedianRound)
	}
}

func parseRate(t *testing.T, s string) float64 {
	t.Helper()
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("rate %q: %v", s, err)
	}
	return f * mult
}
