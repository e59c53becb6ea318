package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A Column is one figure of a benchmark's samples: a column of the table,
// a summary in the JSON, a unit of the gobench lines.
type Column[S any] struct {
	Name   string // "queries/s", "CPU/query": the table's head and the gobench unit
	Value  func(S) float64
	Format func(float64) string // for the table; nil: three significant digits
	Range  bool                 // also show the min–max of the rounds
	// Vs names modes of the same group to compare with: a column "vs REF"
	// for each, the median of same-round ratios of this figure.
	Vs []string
}

// A Goal is a target as data: Column of Mode in Group (the median of the
// rounds), or, with Vs, its median of same-round ratios against mode Vs,
// compared by Cmp with Want.
type Goal struct {
	Group, Mode, Column, Vs string
	Cmp                     Cmp
	Want                    float64
}

// A Report is a run's results summarized by columns: the table, JSON,
// gobench lines and chart of a benchmark that needs no layout of its own.
type Report[S any] struct {
	Name    string // the command, for gobench's Benchmark<Name>
	Pkg     string // the command's import path, for gobench's pkg: line
	Title   string // the table's first line
	Config  any    // printed in the JSON as "config"
	Env     Env
	Columns []Column[S]
	Results *Results[S]
	Goals   []Goal
	Notes   string // printed under the table, unless -q
}

// reportJSON is what -json prints.
type reportJSON struct {
	Title   string       `json:"title"`
	Config  any          `json:"config"`
	Env     Env          `json:"env"`
	Modes   []seriesJSON `json:"modes"`
	Targets []Target     `json:"targets"`
}

type seriesJSON struct {
	Group       string           `json:"group,omitempty"`
	Mode        string           `json:"mode"`
	Unavailable string           `json:"unavailable,omitempty"`
	Samples     any              `json:"samples"`
	Figures     map[string]Stat  `json:"figures"` // by column
	Ratios      map[string]*Stat `json:"ratios"`  // "column vs mode"
}

func (r *Report[S]) column(name string) *Column[S] {
	for i := range r.Columns {
		if r.Columns[i].Name == name {
			return &r.Columns[i]
		}
	}
	return nil
}

// ratio is col of s against mode vs of the same group, or nil.
func (r *Report[S]) ratio(s *Series[S], col *Column[S], vs string) *Stat {
	ref := r.Results.Get(s.Group, vs)
	if ref == nil || col == nil {
		return nil
	}
	return Ratio(s.Samples, ref.Samples, Over(col.Value))
}

// Targets checks the goals. A goal whose mode or column is not in the run
// (left out with -modes, say) is not checked.
func (r *Report[S]) Targets() []Target {
	var ts []Target
	for _, g := range r.Goals {
		s, col := r.Results.Get(g.Group, g.Mode), r.column(g.Column)
		if s == nil || col == nil || len(s.Samples) == 0 {
			continue
		}
		var t Target
		if g.Vs == "" {
			t = Check(fmt.Sprintf("%s %s %s %g", g.Mode, g.Column, g.Cmp, g.Want), g.Column+", median of rounds",
				Of(s.Samples, col.Value).Median, g.Cmp, g.Want)
		} else if st := r.ratio(s, col, g.Vs); st != nil {
			t = Check(fmt.Sprintf("%s %s %s %.2fx %s", g.Mode, g.Column, g.Cmp, g.Want, g.Vs), g.Column+" ratio, median of rounds",
				st.Median, g.Cmp, g.Want)
		} else {
			continue
		}
		t.Where = g.Group
		ts = append(ts, t)
	}
	return ts
}

// Write writes the report as o asks: the -svg chart of the first column,
// then the table, JSON or gobench lines.
func (r *Report[S]) Write(w io.Writer, o Output) error {
	if o.SVG != "" {
		if err := WriteSVGFile(o.SVG, r.Chart()); err != nil {
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
	out := reportJSON{Title: r.Title, Config: r.Config, Env: r.Env, Targets: r.Targets()}
	for _, s := range r.Results.Series {
		sj := seriesJSON{Group: s.Group, Mode: s.Mode, Unavailable: s.Unavailable, Samples: s.Samples,
			Figures: map[string]Stat{}, Ratios: map[string]*Stat{}}
		for i, c := range r.Columns {
			sj.Figures[c.Name] = Of(s.Samples, c.Value)
			for _, vs := range c.Vs {
				sj.Ratios[c.Name+" vs "+vs] = r.ratio(s, &r.Columns[i], vs)
			}
		}
		out.Modes = append(out.Modes, sj)
	}
	return WriteJSON(w, out)
}

// writeGobench prints one line per mode and round; an op is one sample.
func (r *Report[S]) writeGobench(w io.Writer) {
	WriteGobenchHeader(w, r.Pkg, r.Env)
	for _, s := range r.Results.Series {
		name := "Benchmark" + r.Name
		if s.Group != "" {
			name += "/group=" + strings.ReplaceAll(s.Group, " ", "_")
		}
		name += "/mode=" + s.Mode + "-" + strconv.Itoa(r.Env.GOMAXPROCS)
		for _, smp := range s.Samples {
			var units []Unit
			for _, c := range r.Columns {
				units = append(units, Unit{Value: c.Value(smp.Value), Name: strings.ReplaceAll(c.Name, " ", "-"), Decimals: 4})
			}
			WriteGobenchLine(w, name, 1, units...)
		}
		if s.Unavailable != "" {
			fmt.Fprintf(w, "# %s: %s\n", s.Mode, s.Unavailable)
		}
	}
}

func (r *Report[S]) writeTable(w io.Writer, quiet bool) {
	if !quiet && r.Title != "" {
		fmt.Fprintf(w, "%s\n%s, %s %s/%s, %d CPUs\n\n", r.Title, r.Env.Kernel, r.Env.GoVersion, r.Env.GOOS, r.Env.GOARCH, r.Env.NumCPU)
	}
	grouped := len(r.Results.Series) > 0 && r.Results.Series[0].Group != ""
	head, left := []string{"mode"}, 1
	if grouped {
		head, left = []string{"", "mode"}, 2
	}
	for _, c := range r.Columns {
		head = append(head, c.Name)
		if c.Range {
			head = append(head, "(min–max)")
		}
		for _, vs := range c.Vs {
			head = append(head, "vs "+vs)
		}
	}
	rows := [][]string{head}
	for _, s := range r.Results.Series {
		row := []string{s.Mode}
		if grouped {
			row = []string{s.Group, s.Mode}
		}
		if len(s.Samples) == 0 { // the reason is under the table
			for len(row) < len(head) {
				row = append(row, "-")
			}
			rows = append(rows, row)
			continue
		}
		for i, c := range r.Columns {
			f := c.Format
			if f == nil {
				f = func(x float64) string { return strconv.FormatFloat(x, 'g', 3, 64) }
			}
			st := Of(s.Samples, c.Value)
			row = append(row, f(st.Median))
			if c.Range {
				row = append(row, "("+f(st.Min)+"–"+f(st.Max)+")")
			}
			for _, vs := range c.Vs {
				row = append(row, Times(r.ratio(s, &r.Columns[i], vs)))
			}
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
	if ts := r.Targets(); len(ts) > 0 {
		WriteTargets(w, ts)
	}
	if r.Notes != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(r.Notes))
	}
}

// Chart draws the first column's medians, one bar per mode, with the
// min–max of the rounds as whiskers and the first column's ratios as notes.
func (r *Report[S]) Chart() Chart {
	c := Chart{Title: r.Title, Subtitle: fmt.Sprintf("%s, %s, %d CPUs; medians of the rounds, ratios: medians of same-round ratios",
		r.Env.Kernel, r.Env.GoVersion, r.Env.NumCPU)}
	if len(r.Columns) == 0 {
		return c
	}
	col := &r.Columns[0]
	c.Unit, c.Format = col.Name, col.Format
	if c.Format == nil {
		c.Format = func(x float64) string { return strconv.FormatFloat(x, 'g', 3, 64) }
	}
	for _, s := range r.Results.Series {
		b := Bar{Label: strings.TrimSpace(s.Group + " " + s.Mode)}
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
		var notes []string
		for _, vs := range col.Vs {
			if vs != s.Mode {
				notes = append(notes, Times(r.ratio(s, col, vs))+" "+vs)
			}
		}
		b.Note = strings.Join(notes, " · ")
		c.Bars = append(c.Bars, b)
	}
	return c
}
