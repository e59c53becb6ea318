package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A Column is one figure of a benchmark's samples, or a ratio of one between
// modes: a column of the table, a key of a mode's JSON object.
type Column[S any] struct {
	Name   string // the table's head, and how goals and ratios name it
	JSON   string // the key of its summary in a mode's JSON object; "" for none
	Hidden bool   // not in the table or chart: for the JSON or a goal only

	// A figure: Value of each sample, summarized over the rounds (a
	// [Stat] in the JSON, its median in the table).
	Value  func(S) float64
	Format func(float64) string // for the table and chart; nil: three significant digits
	Range  bool                 // the table also shows the min–max of the rounds
	// At names another figure: the table shows this one's value in the
	// round where that one is at its median ([MedianSample]), so that the
	// figures of a row reconcile (delivered/s = sent/s × (1 − lost)).
	At string
	// Chart: the chart notes this figure's median after each bar.
	Chart bool

	// A ratio: Of names a figure, and the column is the median of
	// same-round ratios ([Ratio]) of that figure, the row's mode's over
	// that of the mode Vs names for it (none: "-"), or with Inverse the
	// other way round, so that a ratio of costs also reads "higher is
	// better". The chart notes the ratios of its figure after each bar.
	Of      string
	Vs      func(mode string) string
	Inverse bool
}

// Ref is a [Column.Vs] that names the same mode for every row.
func Ref(mode string) func(string) string { return func(string) string { return mode } }

// A Goal is a target as data: the median of Column (a figure, or a ratio
// column's median ratio) of Mode in Group, compared by Cmp with Want. Name
// and Figure say what it is in the output; by default the mode, column,
// comparison and threshold, and the column with ", median of rounds".
type Goal struct {
	Group, Mode, Column string
	Cmp                 Cmp
	Want                float64
	Name, Figure        string
}

// A Report is a run's results summarized by columns, a row per mode: the
// table, the JSON, the gobench lines and the chart.
type Report[S any] struct {
	Results *Results[S]
	Columns []Column[S]
	Goals   []Goal
	Env     Env

	Head string // the lines above the table, unless -q
	// Notes writes what follows the table and the unavailable modes'
	// reasons, unless -q; nil: the targets ([WriteTargets]).
	Notes func(w io.Writer)
	// Ceiling says whether a mode is a reference (a raw system call loop)
	// rather than a contender: the chart draws it grey, and it is the
	// fastest only when no contender ran.
	Ceiling func(mode string) bool
	// Mark adds a last column that marks the fastest mode, "<- fastest".
	Mark bool
	// Chart has the title, subtitle, unit (by default the first column's
	// name) and footer of the -svg chart; its bars are the first column's.
	Chart Chart

	// Pkg and GobenchHeader ("key", "value", ...) start -format gobench.
	Pkg           string
	GobenchHeader []string
	// Gobench returns the line of a sample of s: its name (ending in
	// -GOMAXPROCS), iterations and figures. nil: "Benchmark"+Name, then
	// "/group=GROUP" if any, "/mode=MODE-GOMAXPROCS", one iteration, and
	// each figure of the table.
	Gobench func(s *Series[S], v S) (name string, n uint64, units []Unit)
	Name    string

	// JSON returns the document -json prints, given the modes' objects
	// and the targets. nil: config (Config), env, modes and targets.
	JSON   func(modes []ModeJSON, targets []Target) any
	Config any
	// ModeJSON returns keys to add to a mode's JSON object.
	ModeJSON func(s *Series[S]) []KV
}

// A KV is one key of a JSON object whose keys keep their order.
type KV struct {
	Key   string
	Value any
}

// ModeJSON is one mode's JSON object: group, mode, why it is unavailable,
// its samples (the S values), each column's summary under its JSON key (a
// ratio without a reference left out), then the benchmark's own keys.
type ModeJSON []KV

// MarshalJSON writes the keys in order.
func (m ModeJSON) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, kv := range m {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(kv.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(kv.Value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

func (r *Report[S]) column(name string) *Column[S] {
	for i := range r.Columns {
		if r.Columns[i].Name == name {
			return &r.Columns[i]
		}
	}
	return nil
}

// stat is column c of series s: a figure's summary over the rounds, or a
// ratio's (nil when there is no reference or no pair).
func (r *Report[S]) stat(s *Series[S], c *Column[S]) *Stat {
	if c.Of == "" {
		st := Of(s.Samples, c.Value)
		return &st
	}
	fig := r.column(c.Of)
	if fig == nil || c.Vs == nil {
		return nil
	}
	ref := r.Results.Get(s.Group, c.Vs(s.Mode))
	if ref == nil {
		return nil
	}
	if c.Inverse {
		return Ratio(ref.Samples, s.Samples, Over(fig.Value)) // pairs by round either way
	}
	return Ratio(s.Samples, ref.Samples, Over(fig.Value))
}

// Figure returns column of mode in group (a figure's summary or a ratio's),
// or nil when the run has no such mode, column or ratio.
func (r *Report[S]) Figure(group, mode, column string) *Stat {
	s, c := r.Results.Get(group, mode), r.column(column)
	if s == nil || c == nil || len(s.Samples) == 0 {
		return nil
	}
	return r.stat(s, c)
}

// Fastest returns the mode with the highest median of the first column,
// among those that are not a Ceiling if any of them ran, or "".
func (r *Report[S]) Fastest() string {
	best, name := 0.0, ""
	for _, contenders := range []bool{true, false} {
		for _, s := range r.Results.Series {
			if len(s.Samples) == 0 || (contenders && r.Ceiling != nil && r.Ceiling(s.Mode)) {
				continue
			}
			if m := Of(s.Samples, r.Columns[0].Value).Median; name == "" || m > best {
				best, name = m, s.Mode
			}
		}
		if name != "" {
			break
		}
	}
	return name
}

// Targets checks the goals. A goal whose mode did not run (left out with
// -modes, say), or whose column or ratio is missing, is not checked.
func (r *Report[S]) Targets() []Target {
	var ts []Target
	for _, g := range r.Goals {
		st := r.Figure(g.Group, g.Mode, g.Column)
		if st == nil {
			continue
		}
		name, figure := g.Name, g.Figure
		if name == "" {
			name = fmt.Sprintf("%s %s %s %g", g.Mode, g.Column, g.Cmp, g.Want)
		}
		if figure == "" {
			figure = g.Column + ", median of rounds"
		}
		t := Check(name, figure, st.Median, g.Cmp, g.Want)
		t.Where = g.Group
		ts = append(ts, t)
	}
	return ts
}

// Write writes the report as o asks: the -svg chart, then the table, JSON
// or gobench lines.
func (r *Report[S]) Write(w io.Writer, o Output) error {
	if o.SVG != "" {
		if err := WriteSVGFile(o.SVG, r.chart()); err != nil {
			return err
		}
	}
	switch o.Format {
	case "json":
		return r.writeJSON(w)
	case "gobench":
		r.writeGobench(w)
		return nil
	}
	r.writeTable(w, o.Quiet)
	return nil
}

func (r *Report[S]) writeJSON(w io.Writer) error {
	var modes []ModeJSON
	for _, s := range r.Results.Series {
		m := ModeJSON{}
		if s.Group != "" {
			m = append(m, KV{"group", s.Group})
		}
		m = append(m, KV{"mode", s.Mode})
		if s.Unavailable != "" {
			m = append(m, KV{"unavailable", s.Unavailable})
		}
		var vs []S
		for _, smp := range s.Samples {
			vs = append(vs, smp.Value)
		}
		m = append(m, KV{"samples", vs})
		for i, c := range r.Columns {
			if st := r.stat(s, &r.Columns[i]); c.JSON != "" && st != nil {
				m = append(m, KV{c.JSON, st})
			}
		}
		if r.ModeJSON != nil {
			m = append(m, r.ModeJSON(s)...)
		}
		modes = append(modes, m)
	}
	if r.JSON != nil {
		return WriteJSON(w, r.JSON(modes, r.Targets()))
	}
	return WriteJSON(w, struct {
		Config  any        `json:"config"`
		Env     Env        `json:"env"`
		Modes   []ModeJSON `json:"modes"`
		Targets []Target   `json:"targets"`
	}{r.Config, r.Env, modes, r.Targets()})
}

// writeGobench prints a line per sample, round by round as they ran, then
// why the unavailable modes have none.
func (r *Report[S]) writeGobench(w io.Writer) {
	WriteGobenchHeader(w, r.Pkg, r.Env, r.GobenchHeader...)
	line := r.Gobench
	if line == nil {
		line = func(s *Series[S], v S) (string, uint64, []Unit) {
			name := "Benchmark" + r.Name
			if s.Group != "" {
				name += "/group=" + strings.ReplaceAll(s.Group, " ", "_")
			}
			var units []Unit
			for _, c := range r.Columns {
				if !c.Hidden && c.Of == "" {
					units = append(units, Unit{Value: c.Value(v), Name: strings.ReplaceAll(c.Name, " ", "-"), Decimals: 4})
				}
			}
			return name + "/mode=" + s.Mode + "-" + strconv.Itoa(r.Env.GOMAXPROCS), 1, units
		}
	}
	for round := 1; ; round++ {
		more := false
		for _, s := range r.Results.Series {
			for _, smp := range s.Samples {
				more = more || smp.Round > round
				if smp.Round == round {
					name, n, units := line(s, smp.Value)
					WriteGobenchLine(w, name, n, units...)
				}
			}
		}
		if !more {
			break
		}
	}
	for _, s := range r.Results.Series {
		if s.Unavailable != "" {
			fmt.Fprintf(w, "# %s: %s\n", s.Mode, s.Unavailable)
		}
	}
}

func (c *Column[S]) format(x float64) string {
	if c.Format == nil {
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	return c.Format(x)
}

func (r *Report[S]) writeTable(w io.Writer, quiet bool) {
	if !quiet && r.Head != "" {
		fmt.Fprint(w, r.Head)
	}
	grouped := len(r.Results.Series) > 0 && r.Results.Series[0].Group != ""
	head, left := []string{"mode"}, 1
	if grouped {
		head, left = []string{"", "mode"}, 2
	}
	for _, c := range r.Columns {
		if !c.Hidden {
			head = append(head, c.Name)
		}
		if !c.Hidden && c.Range {
			head = append(head, "(min–max)")
		}
	}
	if r.Mark {
		head = append(head, "")
	}
	fastest := r.Fastest()
	rows := [][]string{head}
	for _, s := range r.Results.Series {
		row := []string{s.Mode}
		if grouped {
			row = []string{s.Group, s.Mode}
		}
		if len(s.Samples) == 0 { // the reason is under the table
			row = append(row, "-")
			for len(row) < len(head)-1 {
				row = append(row, "")
			}
			rows = append(rows, append(row, "unavailable"))
			continue
		}
		for i, c := range r.Columns {
			if c.Hidden {
				continue
			}
			st := r.stat(s, &r.Columns[i])
			switch {
			case c.Of != "":
				row = append(row, Times(st))
				continue
			case c.At != "":
				if ms, ok := MedianSample(s.Samples, r.column(c.At).Value); ok {
					row = append(row, c.format(c.Value(ms.Value)))
				}
			default:
				row = append(row, c.format(st.Median))
			}
			if c.Range {
				row = append(row, "("+c.format(st.Min)+"–"+c.format(st.Max)+")")
			}
		}
		if r.Mark && s.Mode == fastest {
			row = append(row, "<- fastest")
		}
		rows = append(rows, row)
	}
	WriteTable(w, left, rows)
	if quiet {
		return
	}
	fmt.Fprintln(w)
	for _, s := range r.Results.Series {
		if s.Unavailable != "" {
			fmt.Fprintf(w, "%s: %s\n", strings.TrimSpace(s.Group+" "+s.Mode), s.Unavailable)
		}
	}
	if r.Notes != nil {
		r.Notes(w)
	} else if ts := r.Targets(); len(ts) > 0 {
		WriteTargets(w, ts)
	}
}

// chart draws the first column's medians, one bar per mode, with the
// min–max of the rounds as whiskers and, after each bar, the ratios of that
// figure ("1.50x udpconn", a ratio column's name without "vs ") and the
// medians of the columns marked Chart.
func (r *Report[S]) chart() Chart {
	c := r.Chart
	if len(r.Columns) == 0 {
		return c
	}
	col := &r.Columns[0]
	c.Format = col.format
	if c.Unit == "" {
		c.Unit = col.Name
	}
	fastest := r.Fastest()
	for _, s := range r.Results.Series {
		b := Bar{Label: strings.TrimSpace(s.Group + " " + s.Mode), Best: s.Mode == fastest,
			Ceiling: r.Ceiling != nil && r.Ceiling(s.Mode)}
		if len(s.Samples) == 0 {
			b.Unavailable = s.Unavailable
			if b.Unavailable == "" {
				b.Unavailable = "no samples"
			}
			c.Bars = append(c.Bars, b)
			continue
		}
		st := Of(s.Samples, col.Value)
		b.Value, b.Min, b.Max = st.Median, st.Min, st.Max
		var ratios []string
		for i, rc := range r.Columns {
			if rc.Of == col.Name && !rc.Hidden && !rc.Inverse && rc.Vs != nil && rc.Vs(s.Mode) != s.Mode {
				if st := r.stat(s, &r.Columns[i]); st != nil {
					ratios = append(ratios, Times(st)+" "+strings.TrimPrefix(rc.Name, "vs "))
				}
			}
		}
		b.Note = strings.Join(ratios, " · ")
		for i, fc := range r.Columns {
			if fc.Chart {
				b.Note += "  (" + fc.format(r.stat(s, &r.Columns[i]).Median) + " " + fc.Name + ")"
			}
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}
