package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// recorder is a benchmark whose modes record the order they ran in.
type recorder struct {
	ran []string // "round mode", in order
}

func (r *recorder) modes(names ...string) []Mode[int] {
	var ms []Mode[int]
	for _, name := range names {
		ms = append(ms, Mode[int]{Name: name, Sample: func(_ context.Context, round int) (int, error) {
			r.ran = append(r.ran, fmt.Sprint(round, " ", name))
			return round * 10, nil
		}})
	}
	return ms
}

func TestRunRotatesTheModeOrderEveryRound(t *testing.T) {
	for _, tt := range []struct {
		name   string
		warmup bool
		want   []string
	}{
		{"without a warm-up, round 1 runs the modes in the order given", false,
			[]string{"1 a", "1 b", "1 c", "2 b", "2 c", "2 a", "3 c", "3 a", "3 b", "4 a", "4 b", "4 c"}},
		{"with a warm-up, the warm-up runs them in the order given", true,
			[]string{"0 a", "0 b", "0 c", "1 b", "1 c", "1 a", "2 c", "2 a", "2 b", "3 a", "3 b", "3 c", "4 b", "4 c", "4 a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			res, err := Run(context.Background(), Plan[int]{Rounds: 4, Warmup: tt.warmup,
				Groups: []Group[int]{{Modes: r.modes("a", "b", "c")}}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.ran, tt.want) {
				t.Errorf("ran %q,\nwant %q", r.ran, tt.want)
			}
			for _, s := range res.Series {
				var rounds []int
				for _, smp := range s.Samples {
					rounds = append(rounds, smp.Round)
					if smp.Value != smp.Round*10 {
						t.Errorf("%s round %d: value %d, want the one its round returned", s.Mode, smp.Round, smp.Value)
					}
				}
				if !slices.Equal(rounds, []int{1, 2, 3, 4}) {
					t.Errorf("%s: samples of rounds %v, want 1 to 4 (the warm-up's not kept)", s.Mode, rounds)
				}
			}
		})
	}
}

func TestRunRunsEveryGroupEveryRound(t *testing.T) {
	var r recorder
	res, err := Run(context.Background(), Plan[int]{Rounds: 2, Groups: []Group[int]{
		{Name: "g1", Modes: r.modes("a", "b")}, {Name: "g2", Modes: r.modes("a", "b")}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1 a", "1 b", "1 a", "1 b", "2 b", "2 a", "2 b", "2 a"}; !slices.Equal(r.ran, want) {
		t.Errorf("ran %q, want %q", r.ran, want)
	}
	if len(res.Series) != 4 || res.Get("g2", "b") == nil || len(res.Get("g2", "b").Samples) != 2 || res.Get("g3", "a") != nil {
		t.Errorf("series: %+v", res.Series)
	}
}

func TestRunCollectsGarbageBeforeEveryMode(t *testing.T) {
	var gcs []uint32
	mode := func(name string) Mode[int] {
		return Mode[int]{Name: name, Sample: func(context.Context, int) (int, error) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			gcs = append(gcs, ms.NumGC)
			return 0, nil
		}}
	}
	if _, err := Run(context.Background(), Plan[int]{Rounds: 3, Groups: []Group[int]{{Modes: []Mode[int]{mode("a"), mode("b")}}}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(gcs); i++ {
		if gcs[i] <= gcs[i-1] {
			t.Errorf("no garbage collection between sample %d and %d: NumGC %v", i-1, i, gcs)
		}
	}
}

func TestRunSetsUpAndTearsDownEverySample(t *testing.T) {
	var calls []string
	boom := errors.New("boom")
	m := Mode[int]{Name: "m",
		Setup: func(_ context.Context, round int) error {
			calls = append(calls, fmt.Sprint("setup ", round))
			return nil
		},
		Sample: func(_ context.Context, round int) (int, error) {
			calls = append(calls, fmt.Sprint("sample ", round))
			if round == 2 {
				return 0, boom
			}
			return 0, nil
		},
		Teardown: func() error { calls = append(calls, "teardown"); return nil },
	}
	_, err := Run(context.Background(), Plan[int]{Rounds: 3, Groups: []Group[int]{{Name: "g", Modes: []Mode[int]{m}}}})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "round 2, m, g: boom") {
		t.Errorf("error %v, want boom, with its round, mode and group", err)
	}
	want := []string{"setup 1", "sample 1", "teardown", "setup 2", "sample 2", "teardown"}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q: teardown after a failed sample too, and nothing after the error", calls, want)
	}
}

func TestRunTakesUnavailableModesOut(t *testing.T) {
	noGSO := Mode[int]{Name: "gso",
		Setup: func(context.Context, int) error { return Unavailable(errors.New("no UDP GSO here")) },
		Sample: func(context.Context, int) (int, error) {
			t.Error("sampled a mode whose setup said unavailable")
			return 0, nil
		},
	}
	stops := Mode[int]{Name: "stops", Sample: func(_ context.Context, round int) (int, error) {
		if round == 2 {
			return 0, Unavailable(errors.New("EIO"))
		}
		if round > 2 {
			t.Errorf("sampled in round %d a mode that stopped in round 2", round)
		}
		return 1, nil
	}}
	tearErr := Mode[int]{Name: "teardown-fails",
		Sample:   func(context.Context, int) (int, error) { return 1, nil },
		Teardown: func() error { return Unavailable(errors.New("close: EBADF")) },
	}
	var r recorder
	res, err := Run(context.Background(), Plan[int]{Rounds: 3, Warmup: true,
		Groups: []Group[int]{{Modes: append([]Mode[int]{noGSO, stops, tearErr}, r.modes("fine")...)}}})
	if err != nil {
		t.Fatal(err)
	}
	for mode, want := range map[string]string{
		"gso":            "no UDP GSO here",
		"stops":          "stopped in round 2: EIO",
		"teardown-fails": "stopped in the warm-up: close: EBADF",
		"fine":           "",
	} {
		s := res.Get("", mode)
		if s.Unavailable != want {
			t.Errorf("%s: unavailable %q, want %q", mode, s.Unavailable, want)
		}
		if want != "" && len(s.Samples) != 0 {
			t.Errorf("%s: %d samples kept from a mode that did not run to the end", mode, len(s.Samples))
		}
	}
	if n := len(res.Get("", "fine").Samples); n != 3 {
		t.Errorf("the mode that works has %d samples, want 3", n)
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	n := 0
	m := Mode[int]{Name: "m", Sample: func(context.Context, int) (int, error) {
		if n++; n == 2 {
			cancel(errors.New("terminated"))
			return 0, errors.New("killed by the signal") // what a child process's death looks like
		}
		return 0, nil
	}}
	res, err := Run(ctx, Plan[int]{Rounds: 5, Groups: []Group[int]{{Modes: []Mode[int]{m}}}})
	if err == nil || err.Error() != "interrupted: terminated" {
		t.Errorf("error %v, want interrupted: terminated (the cause, not the sample's error)", err)
	}
	if n != 2 || len(res.Get("", "m").Samples) != 1 {
		t.Errorf("%d samples taken, %d kept; want 2 and 1", n, len(res.Get("", "m").Samples))
	}
}
