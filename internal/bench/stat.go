package bench

import (
	"math"
	"slices"
)

// A Stat summarizes one figure over the rounds.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the median, min and max of xs. The median of an even
// count is the lower of the two middle values, not their mean: always a
// value some round produced, so a table can show other figures of that same
// round beside it. The zero Stat for no values.
func Summarize(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Sorted(slices.Values(xs))
	return Stat{Median: s[(len(s)-1)/2], Min: s[0], Max: s[len(s)-1]}
}

// Of summarizes f over the samples.
func Of[S any](samples []Sample[S], f func(S) float64) Stat {
	xs := make([]float64, len(samples))
	for i, s := range samples {
		xs[i] = f(s.Value)
	}
	return Summarize(xs)
}

// MedianSample returns the sample whose f is the median (as [Summarize]
// picks it), so that its other figures can be shown beside it.
func MedianSample[S any](samples []Sample[S], f func(S) float64) (Sample[S], bool) {
	if len(samples) == 0 {
		return Sample[S]{}, false
	}
	s := slices.SortedStableFunc(slices.Values(samples), func(a, b Sample[S]) int {
		return cmpFloat(f(a.Value), f(b.Value))
	})
	return s[(len(s)-1)/2], true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Ratio pairs each sample of a with b's sample of the same round, computes
// f(a's, b's) for each pair, and summarizes those ratios: the median of
// same-round ratios, in which a busy moment of a shared machine, hitting
// both modes of a round alike, cancels. It is not the quotient of the two
// modes' medians. A ratio that is not a positive finite number (a zero in
// the pair) is left out; with no ratio left, Ratio returns nil.
func Ratio[S any](a, b []Sample[S], f func(a, b S) float64) *Stat {
	var xs []float64
	for _, s := range a {
		for _, t := range b {
			if s.Round != t.Round {
				continue
			}
			if x := f(s.Value, t.Value); x > 0 && !math.IsInf(x, 0) {
				xs = append(xs, x)
			}
		}
	}
	if len(xs) == 0 {
		return nil
	}
	st := Summarize(xs)
	return &st
}

// Over is the ratio function of f: f(a) / f(b), for [Ratio].
func Over[S any](f func(S) float64) func(a, b S) float64 {
	return func(a, b S) float64 { return Div(f(a), f(b)) }
}

// Div is a/b, or 0 when b is 0: a rate of nothing is no rate, not NaN.
func Div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
