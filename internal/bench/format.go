package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WriteTable prints rows as aligned columns two spaces apart, without
// trailing spaces: the first left columns (names) left-aligned, the others
// (figures) right-aligned.
func WriteTable(w io.Writer, left int, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// WriteJSON prints v as indented JSON: what -json prints.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteGobenchHeader starts -format gobench output: the lines benchstat
// reads as the configuration of the benchmark lines after them, then extra
// "key: value" lines.
func WriteGobenchHeader(w io.Writer, pkg string, e Env, extra ...string) {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: %s\n", e.GOOS, e.GOARCH, pkg)
	if e.CPU != "" {
		fmt.Fprintf(w, "cpu: %s\n", e.CPU)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(w, "%s: %s\n", extra[i], extra[i+1])
	}
}

// A Unit is one figure of a gobench line: a value, its unit, and how many
// decimals to print.
type Unit struct {
	Value    float64
	Name     string
	Decimals int
}

// WriteGobenchLine prints one benchmark line as benchstat reads it: name
// (which should end in -GOMAXPROCS), iterations, then each figure.
func WriteGobenchLine(w io.Writer, name string, n uint64, units ...Unit) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\t%d", name, n)
	for _, u := range units {
		fmt.Fprintf(&b, "\t%s %s", strconv.FormatFloat(u.Value, 'f', u.Decimals, 64), u.Name)
	}
	fmt.Fprintln(w, b.String())
}

// Rate formats a rate per second for a table: 1.28M, 518k, 950.
func Rate(x float64) string {
	switch {
	case x >= 1e6:
		return strconv.FormatFloat(x/1e6, 'f', 2, 64) + "M"
	case x >= 1e3:
		return strconv.FormatFloat(x/1e3, 'f', 0, 64) + "k"
	default:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
}

// Fixed returns a format with that many decimals: Fixed(2)(1.234) is "1.23".
func Fixed(decimals int) func(float64) string {
	return func(x float64) string { return strconv.FormatFloat(x, 'f', decimals, 64) }
}

// Pct formats a fraction as a percentage: 0.21 is 21.0%.
func Pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

// Nanos formats nanoseconds: 644ns, 10.3µs.
func Nanos(ns float64) string {
	if ns >= 10000 {
		return strconv.FormatFloat(ns/1000, 'f', 1, 64) + "µs"
	}
	return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
}

// Allocs formats an allocation count per call: whole numbers as such, a
// count under 0.01 with two significant digits (not "0.00": some calls
// allocate), others with two decimals.
func Allocs(a float64) string {
	switch {
	case a == math.Trunc(a):
		return strconv.FormatFloat(a, 'f', 0, 64)
	case a < 0.01:
		return strconv.FormatFloat(a, 'g', 2, 64)
	}
	return strconv.FormatFloat(a, 'f', 2, 64)
}

// Times formats a ratio's median, "-" for none: 6.92x.
func Times(s *Stat) string {
	if s == nil {
		return "-"
	}
	return strconv.FormatFloat(s.Median, 'f', 2, 64) + "x"
}
