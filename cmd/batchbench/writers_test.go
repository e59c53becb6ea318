package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

func TestWritersFlags(t *testing.T) {
	cfg, err := parseWritersFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.writers, []int{1, 8, 64}) || cfg.size != 1200 || !cfg.gso || cfg.queue != 256<<10 || cfg.dests != 1 || cfg.burst != 1 {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, tt := range []struct {
		args []string
		want writersConfig
	}{
		{[]string{"-writers", " 4, 2 ,,16", "-gso=false"}, writersConfig{writers: []int{4, 2, 16}, queue: 256 << 10, dests: 1, burst: 1}},
		{[]string{"-queue", "0"}, writersConfig{gso: true, dests: 1, burst: 1}},
		{[]string{"-queue", "1MiB", "-writers", "1", "-dests", "50", "-burst", "10"}, writersConfig{writers: []int{1}, gso: true, queue: 1 << 20, dests: 50, burst: 10}},
		{[]string{"-queue", "1240"}, writersConfig{gso: true, queue: 1240, dests: 1, burst: 1}}, // one 1200-byte datagram
		{[]string{"-queue", "1GiB", "-writers", "64", "-dests", "256"}, writersConfig{writers: []int{64}, gso: true, queue: 1 << 30, dests: 256, burst: 1}},
	} {
		cfg, err := parseWritersFlags(tt.args, io.Discard)
		if tt.want.writers == nil {
			tt.want.writers = []int{1, 8, 64}
		}
		cfg.size, cfg.duration, cfg.count = 0, 0, 0
		if err != nil || !slices.Equal(cfg.writers, tt.want.writers) || cfg.gso != tt.want.gso || cfg.queue != tt.want.queue ||
			cfg.dests != tt.want.dests || cfg.burst != tt.want.burst {
			t.Errorf("%q: %+v, %v; want %+v", tt.args, cfg, err, tt.want)
		}
	}
}

func TestWritersBadFlagsExitWithStatus2AndAMessage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-writers", "0"}, "-writers"}, {[]string{"-writers", "-8"}, "-writers"}, {[]string{"-writers", "x"}, "-writers"},
		{[]string{"-writers", "8,8"}, "twice"}, {[]string{"-writers", ""}, "-writers"}, {[]string{"-writers", " , "}, "-writers"},
		{[]string{"-writers", "5000"}, "-writers"}, {[]string{"-size", "0"}, "-size 0"}, {[]string{"-size", "65508"}, "65507"},
		{[]string{"-duration", "0s"}, "-duration"}, {[]string{"-count", "0"}, "-count"}, {[]string{"-count", "1001"}, "-count"},
		{[]string{"-nope"}, "nope"}, {[]string{"extra"}, "extra"},
		{[]string{"-queue", "-1"}, `-queue "-1": want a positive number of bytes`},
		{[]string{"-queue", "lots"}, `-queue "lots"`},
		{[]string{"-queue", "1TiB"}, `-queue "1TiB"`},
		{[]string{"-queue", "2GiB"}, "-queue 2GiB: at most 1GiB"},
		{[]string{"-queue", "9223372036854775807"}, "at most 1GiB"},
		{[]string{"-queue", "1KiB"}, "-queue 1KiB: holds no 1200-byte datagram"},
		{[]string{"-queue", "64KiB", "-size", "65507"}, "holds no 65507-byte datagram"},
		{[]string{"-dests", "0"}, "-dests 0: need at least 1"},
		{[]string{"-dests", "-3"}, "-dests -3"},
		{[]string{"-dests", "x"}, "-dests"},
		{[]string{"-dests", "300"}, "-dests 300: 64 writers, each with destinations of its own, need 19200 sockets"},
		{[]string{"-burst", "0"}, "-burst 0: must be between 1 and 1024"},
		{[]string{"-burst", "1025"}, "-burst 1025"},
		{[]string{"-burst", "1.5"}, "-burst"},
	} {
		var stdout, stderr bytes.Buffer
		if code := batchbench(append([]string{"writers"}, tt.args...), &stdout, &stderr); code != 2 {
			t.Errorf("batchbench writers %q: exit status %d, want 2", tt.args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("batchbench writers %q wrote to stdout: %q", tt.args, stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "batchbench: ") || strings.Count(msg, "\n") > 3 || !strings.Contains(msg, tt.want) {
			t.Errorf("batchbench writers %q: stderr %q, want a short batchbench: message saying %q", tt.args, msg, tt.want)
		}
	}
}

func TestWritersHelpExitsWith0(t *testing.T) {
	var stderr bytes.Buffer
	if code := batchbench([]string{"writers", "-h"}, io.Discard, &stderr); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-writers") {
		t.Errorf("help does not list -writers: %q", stderr.String())
	}
}

// fakeWriters runs made-up samples on the engine: per cell, each mode i
// sends (i+1) times the UDPConn's datagrams at the same CPU time, so at
// 1/(i+1) of its CPU per datagram, and batches i+1 datagrams per call.
func fakeWriters(t *testing.T, cells []writersCell, modes []string) *bench.Results[writersSample] {
	t.Helper()
	var groups []bench.Group[writersSample]
	for _, c := range cells {
		g := bench.Group[writersSample]{Name: c.String()}
		for i, m := range modes {
			g.Modes = append(g.Modes, bench.Mode[writersSample]{Name: m, Sample: func(context.Context, int) (writersSample, error) {
				n := uint64(100_000 * (i + 1))
				return writersSample{datagrams: n, syscalls: n / uint64(i+1), elapsed: time.Second, cpu: time.Second}, nil
			}})
		}
		groups = append(groups, g)
	}
	res, err := bench.Run(context.Background(), bench.Plan[writersSample]{Rounds: 3, Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A mode added to writersModes (the write queue, say) gets its own
// columns: datagrams/s and CPU, each with its ratio against the UDPConn,
// and its datagrams per system call.
func TestWritersTableHasColumnsForEveryMode(t *testing.T) {
	cells := []writersCell{{writers: 1, dests: 1}, {writers: 8, perG: true, dests: 1}}
	modes := []string{"UDPConn", "batchconn", "queue"}
	var b bytes.Buffer
	printWriters(&b, writersConfig{size: 1200, count: 3, duration: time.Second, gso: true, queue: 256 << 10, queueArg: "256KiB", dests: 1, burst: 1},
		cells, modes, fakeWriters(t, cells, modes))
	want := `G goroutines calling WriteTo, 1200-byte datagrams, loopback, 3 rounds of 1s per socket, alternating; batchconn GSO on, queue 256KiB
datagrams/s and CPU per datagram are medians over rounds; ratios are medians of same-round ratios (batchconn, queue / UDPConn)
CPU: the whole process's user+system time (getrusage RUSAGE_SELF), receivers excluded (nothing reads)

writers  dests  UDPConn dg/s  batchconn dg/s  ratio  queue dg/s  ratio  UDPConn CPU  batchconn CPU  ratio  queue CPU  ratio  batchconn dg/syscall  queue dg/syscall
1        one          100000          200000  2.00x      300000  3.00x      10000ns         5000ns  0.50x     3333ns  0.33x                   2.0               3.0
8        each         100000          200000  2.00x      300000  3.00x      10000ns         5000ns  0.50x     3333ns  0.33x                   2.0               3.0

targets met: 6, missed: 0
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// The default run's table, without the queue mode (-queue 0), is what it
// was before the queue: the same title, heads and rows.
func TestWritersTableWithoutTheQueueIsTodays(t *testing.T) {
	cells := []writersCell{{writers: 1, dests: 1}, {writers: 8, dests: 1}, {writers: 8, perG: true, dests: 1}}
	modes := []string{"UDPConn", "batchconn"}
	var b bytes.Buffer
	printWriters(&b, writersConfig{size: 1200, count: 9, duration: 200 * time.Millisecond, gso: true, dests: 1, burst: 1},
		cells, modes, fakeWriters(t, cells, modes))
	want := `G goroutines calling WriteTo, 1200-byte datagrams, loopback, 9 rounds of 200ms per socket, alternating; batchconn GSO on
datagrams/s and CPU per datagram are medians over rounds; ratios are medians of same-round ratios (batchconn / UDPConn)
CPU: the whole process's user+system time (getrusage RUSAGE_SELF), receivers excluded (nothing reads)

writers  dests  UDPConn dg/s  batchconn dg/s  ratio  UDPConn CPU  batchconn CPU  ratio  dg/syscall
1        one          100000          200000  2.00x      10000ns         5000ns  0.50x         2.0
8        one          100000          200000  2.00x      10000ns         5000ns  0.50x         2.0
8        each         100000          200000  2.00x      10000ns         5000ns  0.50x         2.0

targets met: 4, missed: 0
`
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("got\n%s\nwant it to start\n%s", b.String(), want)
	}
}

// The targets of issue 23, by writers and mode.
func TestWritersTargets(t *testing.T) {
	cells := []writersCell{{writers: 1, dests: 50}, {writers: 8, dests: 1}, {writers: 64, perG: true, dests: 1}, {writers: 2, dests: 1}}
	ts := writersTargets(cells, []string{"UDPConn", "batchconn", "queue"}, fakeWriters(t, cells, []string{"UDPConn", "batchconn", "queue"}))
	var got []string
	for _, tg := range ts {
		got = append(got, fmt.Sprintf("%s: %s %s %.2f", tg.Where, tg.Name, tg.Verdict(), tg.Got))
	}
	want := []string{
		"1 50: batchconn dg/s>=0.97x met 2.00", "1 50: batchconn CPU<=1.03x met 0.50",
		"1 50: queue dg/s>=2.00x met 3.00", "1 50: queue CPU<=0.50x met 0.33",
		"8 one: batchconn dg/s>=1.50x met 2.00", "8 one: queue dg/s>=1.50x met 3.00",
		"64 each: batchconn dg/s>=1.40x met 2.00", "64 each: queue dg/s>=1.40x met 3.00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("targets\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWritersCellNames(t *testing.T) {
	for c, want := range map[writersCell]string{
		{writers: 1, dests: 1}: "1 one", {writers: 8, perG: true, dests: 1}: "8 each",
		{writers: 1, dests: 50}: "1 50", {writers: 8, perG: true, dests: 50}: "8 50 each",
	} {
		if got := c.String(); got != want {
			t.Errorf("%+v: %q, want %q", c, got, want)
		}
	}
}
