package main

import (
	"bytes"
	"context"
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
	if !slices.Equal(cfg.writers, []int{1, 8, 64}) || cfg.size != 1200 || !cfg.gso {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = parseWritersFlags([]string{"-writers", " 4, 2 ,,16", "-gso=false"}, io.Discard)
	if err != nil || !slices.Equal(cfg.writers, []int{4, 2, 16}) || cfg.gso {
		t.Errorf("-writers ' 4, 2 ,,16' -gso=false: %+v, %v", cfg, err)
	}
}

func TestWritersBadFlagsExitWithStatus2AndAMessage(t *testing.T) {
	for _, args := range [][]string{
		{"-writers", "0"}, {"-writers", "-8"}, {"-writers", "x"}, {"-writers", "8,8"}, {"-writers", ""},
		{"-writers", " , "}, {"-writers", "5000"}, {"-size", "0"}, {"-size", "65508"}, {"-duration", "0s"},
		{"-count", "0"}, {"-count", "1001"}, {"-nope"}, {"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := batchbench(append([]string{"writers"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("batchbench writers %q: exit status %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("batchbench writers %q wrote to stdout: %q", args, stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "batchbench: ") || strings.Count(msg, "\n") > 3 {
			t.Errorf("batchbench writers %q: stderr %q, want a short batchbench: message", args, msg)
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

// A mode added to writersModes (issue 23's write queue, say) gets its own
// columns: datagrams/s and CPU, each with its ratio against the UDPConn,
// and its datagrams per system call.
func TestWritersTableHasColumnsForEveryMode(t *testing.T) {
	cells := []writersCell{{writers: 1}, {writers: 8, perG: true}}
	modes := []string{"UDPConn", "batchconn", "queue"}
	var groups []bench.Group[writersSample]
	for _, c := range cells {
		g := bench.Group[writersSample]{Name: c.String()}
		for i, m := range modes {
			g.Modes = append(g.Modes, bench.Mode[writersSample]{Name: m, Sample: func(context.Context, int) (writersSample, error) {
				n := uint64(100_000 * (i + 1)) // each mode i+1 times the UDPConn's datagrams, at the same CPU
				return writersSample{datagrams: n, syscalls: n / uint64(i+1), elapsed: time.Second, cpu: time.Second}, nil
			}})
		}
		groups = append(groups, g)
	}
	res, err := bench.Run(context.Background(), bench.Plan[writersSample]{Rounds: 3, Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printWriters(&b, writersConfig{size: 1200, count: 3, duration: time.Second, gso: true}, cells, modes, res)
	want := `ratios are medians of same-round ratios (batchconn, queue / UDPConn)
CPU: the whole process's user+system time (getrusage RUSAGE_SELF), receivers excluded (nothing reads)

writers  dests  UDPConn dg/s  batchconn dg/s  ratio  queue dg/s  ratio  UDPConn CPU  batchconn CPU  ratio  queue CPU  ratio  batchconn dg/syscall  queue dg/syscall
1        one          100000          200000  2.00x      300000  3.00x      10000ns         5000ns  0.50x     3333ns  0.33x                   2.0               3.0
8        each         100000          200000  2.00x      300000  3.00x      10000ns         5000ns  0.50x     3333ns  0.33x                   2.0               3.0
`
	if !strings.HasSuffix(b.String(), want) {
		t.Errorf("got\n%s\nwant it to end\n%s", b.String(), want)
	}
}
