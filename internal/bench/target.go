package bench

import (
	"fmt"
	"io"
)

// Cmp is how a target compares what was measured with what is wanted.
type Cmp string

const (
	AtLeast Cmp = ">="
	AtMost  Cmp = "<="
	Above   Cmp = ">"
	Below   Cmp = "<"
	Exactly Cmp = "=="
)

// A Target is a goal checked on a run: Got, compared by Cmp with Want.
type Target struct {
	Where  string  `json:"where,omitempty"` // the cell it is checked in, if the run has cells
	Name   string  `json:"what"`            // "batchconn-gro >= 4.00x xnet-readbatch", "CPU<=0.80x"
	Figure string  `json:"figure"`          // what Got is: "dgrams/s ratio, median of rounds"
	Got    float64 `json:"got"`
	Cmp    Cmp     `json:"cmp"`
	Want   float64 `json:"want"`
	Met    bool    `json:"met"`
}

// Check returns the target name with Met filled in: whether got cmp want.
func Check(name, figure string, got float64, cmp Cmp, want float64) Target {
	t := Target{Name: name, Figure: figure, Got: got, Cmp: cmp, Want: want}
	switch cmp {
	case AtLeast:
		t.Met = got >= want
	case AtMost:
		t.Met = got <= want
	case Above:
		t.Met = got > want
	case Below:
		t.Met = got < want
	case Exactly:
		t.Met = got == want
	}
	return t // an unknown Cmp is never met
}

// Verdict is "met" or "MISSED", the word every benchmark prints.
func (t Target) Verdict() string {
	if t.Met {
		return "met"
	}
	return "MISSED"
}

// Tag is the target in a table cell: "met:CPU<=0.80x" or "MISSED:CPU<=0.80x".
func (t Target) Tag() string { return t.Verdict() + ":" + t.Name }

// WriteTargets prints how many targets were met and missed, then each
// missed one with where, what and the figure it got.
func WriteTargets(w io.Writer, ts []Target) {
	met := 0
	for _, t := range ts {
		if t.Met {
			met++
		}
	}
	fmt.Fprintf(w, "targets met: %d, missed: %d\n", met, len(ts)-met)
	for _, t := range ts {
		if t.Met {
			continue
		}
		fmt.Fprintf(w, "  MISSED %s\n", t)
	}
}

// String says where and what the target is and the figure it got:
// "8 conns, GSO on: CPU<=0.80x: got 0.83 (CPU/GiB ratio)".
func (t Target) String() string {
	where := ""
	if t.Where != "" {
		where = t.Where + ": "
	}
	return fmt.Sprintf("%s%s: got %.3g (%s)", where, t.Name, t.Got, t.Figure)
}
