package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
)

// A Mode is one way of doing what a benchmark measures: a sender, a reader,
// a Bind. S is the benchmark's own sample type: whatever one measurement
// produced (counts, durations, CPU times), which [Of] and [Ratio] later turn
// into figures.
type Mode[S any] struct {
	Name string
	// Setup prepares one sample and is not measured: a fresh socket, a
	// child process. Optional. An error made with [Unavailable] takes the
	// mode out of the run (the table says why); any other error ends it.
	Setup func(ctx context.Context, round int) error
	// Sample measures the mode once. Round 0 is the warm-up (see
	// [Plan.Warmup]), whose sample is not kept. An [Unavailable] error
	// stops the mode: its samples are dropped and the table says why; any
	// other error ends the run.
	Sample func(ctx context.Context, round int) (S, error)
	// Teardown undoes Setup after the sample, also a failed one. Optional.
	Teardown func() error
}

// A Group is a set of modes compared with each other in every round: one
// cell of a matrix (8 connections, GSO on) or one direction. A benchmark
// without cells has a single Group with an empty Name.
type Group[S any] struct {
	Name  string
	Modes []Mode[S]
}

// A Plan is what to run: Rounds rounds of every group's modes.
type Plan[S any] struct {
	Name   string // the command's, for the progress line
	Rounds int
	// Warmup runs a round 0 before round 1, whose samples are not kept:
	// first-time costs (page faults, lazily grown pools) are not measured.
	Warmup bool
	Groups []Group[S]
	// Progress, if a terminal, gets a live line: round, mode, time spent.
	Progress io.Writer
}

// A Sample is one mode's measurement in one round (1 to Plan.Rounds).
type Sample[S any] struct {
	Round int
	Value S
}

// A Series is one mode of one group: its samples in round order, or why it
// has none.
type Series[S any] struct {
	Group, Mode string
	Samples     []Sample[S]
	Unavailable string // why the mode did not run, or stopped
}

// Results are a run's series, group by group, in the order the plan gives
// the modes.
type Results[S any] struct {
	Series []*Series[S]
}

// Get returns the series of mode in group, or nil.
func (r *Results[S]) Get(group, mode string) *Series[S] {
	for _, s := range r.Series {
		if s.Group == group && s.Mode == mode {
			return s
		}
	}
	return nil
}

// Run runs the plan. In each round it runs every group's modes in turn, each
// round starting one mode further along (A B C, B C A, C A B, ...), so that
// no mode always follows the same one, and it collects the garbage before
// every mode, so no mode pays for what the one before it left. A signal that
// cancels ctx (see [SignalContext]) ends the run after the sample under way;
// Run then returns the results so far and an error that says so.
func Run[S any](ctx context.Context, p Plan[S]) (*Results[S], error) {
	res := &Results[S]{}
	labels := make([][]string, len(p.Groups)) // made now: the progress line allocates nothing
	for gi, g := range p.Groups {
		for _, m := range g.Modes {
			res.Series = append(res.Series, &Series[S]{Group: g.Name, Mode: m.Name})
			label := m.Name
			if g.Name != "" {
				label += ", " + g.Name
			}
			labels[gi] = append(labels[gi], label)
		}
	}
	prog := startProgress(p.Progress, p.Name, p.Rounds)
	defer prog.stop()

	first := 1
	if p.Warmup {
		first = 0
	}
	for round := first; round <= p.Rounds; round++ {
		i := 0 // the group's first series in res.Series
		for gi, g := range p.Groups {
			n := len(g.Modes)
			for k := range n {
				mi := (k + round - first) % n
				m, s := g.Modes[mi], res.Series[i+mi]
				if s.Unavailable != "" {
					continue
				}
				if ctx.Err() != nil {
					return res, fmt.Errorf("interrupted: %w", context.Cause(ctx))
				}
				prog.set(&labels[gi][mi], round)
				v, err := sample(ctx, m, round)
				if ctx.Err() != nil {
					return res, fmt.Errorf("interrupted: %w", context.Cause(ctx))
				}
				var ue *unavailableError
				switch {
				case errors.As(err, &ue) && ue.setup:
					s.Unavailable = ue.Error()
				case errors.As(err, &ue):
					s.Unavailable = fmt.Sprintf("stopped in %s: %v", roundName(round), ue.err)
					s.Samples = nil
				case err != nil:
					return res, fmt.Errorf("%s, %s: %w", roundName(round), labels[gi][mi], err)
				case round > 0:
					s.Samples = append(s.Samples, Sample[S]{Round: round, Value: v})
				}
			}
			i += n
		}
	}
	return res, nil
}

// sample runs one mode once: garbage collection, Setup, Sample, Teardown.
func sample[S any](ctx context.Context, m Mode[S], round int) (v S, err error) {
	runtime.GC()
	if m.Setup != nil {
		if err := m.Setup(ctx, round); err != nil {
			if ue, ok := errors.AsType[*unavailableError](err); ok {
				ue.setup = true
			}
			return v, err
		}
	}
	v, err = m.Sample(ctx, round)
	if m.Teardown != nil {
		if terr := m.Teardown(); err == nil {
			err = terr
		}
	}
	return v, err
}

func roundName(round int) string {
	if round == 0 {
		return "the warm-up"
	}
	return fmt.Sprintf("round %d", round)
}

// unavailableError takes a mode out of the run instead of ending it.
type unavailableError struct {
	err   error
	setup bool // from Setup: the mode never ran
}

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Unavailable marks err as one that takes its mode out of the run, not the
// run down: returned by [Mode.Setup], the mode cannot run here (no UDP GSO,
// say); by [Mode.Sample], the mode stopped working mid-run. Either way the
// table shows the mode with err as the reason.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err: err}
}
