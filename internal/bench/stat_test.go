package bench

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tt := range []struct {
		name string
		xs   []float64
		want Stat
	}{
		{"no values give zeros", nil, Stat{}},
		{"one value is all three", []float64{3}, Stat{3, 3, 3}},
		{"an odd count's median is the middle value", []float64{3, 1, 2}, Stat{2, 1, 3}},
		{"an even count's median is the lower middle value, one a round produced", []float64{4, 1, 3, 2}, Stat{2, 1, 4}},
		{"two values' median is the lower", []float64{9, 5}, Stat{5, 5, 9}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xs := append([]float64(nil), tt.xs...)
			if got := Summarize(tt.xs); got != tt.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.xs, got, tt.want)
			}
			for i := range xs {
				if xs[i] != tt.xs[i] {
					t.Errorf("Summarize reordered its input: %v", tt.xs)
				}
			}
		})
	}
}

func samples(vals ...float64) []Sample[float64] {
	var ss []Sample[float64]
	for i, v := range vals {
		ss = append(ss, Sample[float64]{Round: i + 1, Value: v})
	}
	return ss
}

func id(x float64) float64 { return x }

func TestOfAndMedianSample(t *testing.T) {
	ss := samples(30, 10, 40, 20)
	if got := Of(ss, id); got != (Stat{20, 10, 40}) {
		t.Errorf("Of = %+v", got)
	}
	m, ok := MedianSample(ss, id)
	if !ok || m.Round != 4 || m.Value != 20 {
		t.Errorf("MedianSample = %+v, %v; want round 4 (value 20, the lower middle)", m, ok)
	}
	if _, ok := MedianSample[float64](nil, id); ok {
		t.Error("MedianSample of nothing reported a sample")
	}
}

func TestRatioIsTheMedianOfSameRoundRatios(t *testing.T) {
	over := Over(id)
	for _, tt := range []struct {
		name string
		a, b []Sample[float64]
		want *Stat
	}{
		// A round where the machine was busy for both modes gives the same
		// ratio as a quiet one: ratios 1.2, 1.2, 0.5; the quotient of the
		// medians would be 1.2/2 = 0.6.
		{"a busy round cancels", samples(1.2, 12, 1), samples(1, 10, 2), &Stat{1.2, 0.5, 1.2}},
		{"an even count takes the lower middle ratio", samples(2, 3, 4, 5), samples(1, 1, 1, 1), &Stat{3, 2, 5}},
		{"rounds pair by number, not position",
			[]Sample[float64]{{Round: 3, Value: 9}, {Round: 1, Value: 2}}, []Sample[float64]{{Round: 1, Value: 1}, {Round: 3, Value: 3}}, &Stat{2, 2, 3}},
		{"a round one mode is missing is left out",
			samples(2, 4, 100), []Sample[float64]{{Round: 1, Value: 1}, {Round: 2, Value: 1}}, &Stat{2, 2, 4}},
		{"a zero in a pair is left out, not a ratio of 0 or infinity", samples(2, 0, 6), samples(1, 1, 0), &Stat{2, 2, 2}},
		{"no pairs, no ratio", samples(1, 2), nil, nil},
		{"only zeros, no ratio", samples(0, 0), samples(0, 0), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Ratio(tt.a, tt.b, over)
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("Ratio = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiv(t *testing.T) {
	if Div(1, 0) != 0 || Div(6, 3) != 2 || math.IsNaN(Div(0, 0)) {
		t.Error("Div: want a/b, and 0 for b = 0")
	}
}
