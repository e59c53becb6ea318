package bench

import (
	"bytes"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		got  float64
		cmp  Cmp
		want float64
		met  bool
	}{
		{0.97, AtLeast, 0.97, true}, {0.96, AtLeast, 0.97, false},
		{0.80, AtMost, 0.80, true}, {0.81, AtMost, 0.80, false},
		{1.01, Above, 1, true}, {1, Above, 1, false},
		{0.99, Below, 1, true}, {1, Below, 1, false},
		{0, Exactly, 0, true}, {0.0046, Exactly, 0, false},
		{5, Cmp("=>"), 1, false}, // a comparison that is none is never met
	} {
		tg := Check("x", "a figure", tt.got, tt.cmp, tt.want)
		if tg.Met != tt.met {
			t.Errorf("%v %s %v: met %v, want %v", tt.got, tt.cmp, tt.want, tg.Met, tt.met)
		}
		verdict := map[bool]string{true: "met", false: "MISSED"}[tt.met]
		if tg.Verdict() != verdict || tg.Tag() != verdict+":x" {
			t.Errorf("%v %s %v: verdict %q tag %q", tt.got, tt.cmp, tt.want, tg.Verdict(), tg.Tag())
		}
	}
}

func TestWriteTargetsCountsAndListsTheMissed(t *testing.T) {
	ts := []Target{
		Check(">=0.97x", "throughput ratio", 1.2, AtLeast, 0.97),
		Check("CPU<=0.80x", "CPU/GiB ratio", 0.834, AtMost, 0.80),
		Check("zero allocations", "allocs/call", 0, Exactly, 0),
	}
	ts[1].Where = "8 conns, GSO on"
	var b bytes.Buffer
	WriteTargets(&b, ts)
	want := "targets met: 2, missed: 1\n  MISSED 8 conns, GSO on: CPU<=0.80x: got 0.834 (CPU/GiB ratio)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	WriteTargets(&b, nil)
	if b.String() != "targets met: 0, missed: 0\n" {
		t.Errorf("no targets: %q", b.String())
	}
}
