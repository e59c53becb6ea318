package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// A Chart is a table drawn as horizontal bars, one per mode: what -svg
// writes.
type Chart struct {
	Title    string
	Subtitle string // may hold several lines
	Unit     string // what a bar's length measures, e.g. "datagrams/s"
	Bars     []Bar
	Footer   string
	// Format prints a value on the axis and after a bar; nil: [Rate].
	Format func(float64) string
}

// A Bar is one mode: its median and the min–max of its rounds (a whisker),
// and a note (its ratios) written after it.
type Bar struct {
	Label         string
	Value         float64
	Min, Max      float64
	Note          string
	Unavailable   string // instead of a bar, when the mode did not run
	Ceiling, Best bool   // a raw mode (drawn grey), the fastest usable mode
}

// Layout, in SVG user units (pixels).
const (
	svgWidth   = 1100
	svgLabelW  = 200 // mode names
	svgBarW    = 430 // the longest bar
	svgRowH    = 30
	svgBarH    = 18
	svgTop     = 70
	svgBottom  = 60
	svgPadding = 12
)

// WriteSVG draws c as a standalone SVG document.
func WriteSVG(w io.Writer, c Chart) error {
	format := c.Format
	if format == nil {
		format = Rate
	}
	scale := 0.0
	for _, b := range c.Bars {
		scale = max(scale, b.Max, b.Value)
	}
	scale = niceCeil(scale)
	subtitles := strings.Split(c.Subtitle, "\n")
	top := svgTop + 18*(len(subtitles)-1)
	height := top + len(c.Bars)*svgRowH + svgBottom
	x0 := float64(svgLabelW + svgPadding)
	px := func(v float64) float64 {
		if scale == 0 {
			return 0
		}
		return v / scale * svgBarW
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(c.Title))
	b.WriteString(`<style>.bar{fill:#3b6fb6}.best{fill:#1f8a4c}.ceiling{fill:#9a9a9a}.whisker{stroke:#222;stroke-width:1.5}` +
		`.grid{stroke:#ddd}.note{fill:#333}.muted{fill:#888}</style>` + "\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", svgPadding, esc(c.Title))
	for i, line := range subtitles {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="muted">%s</text>`+"\n", svgPadding, 44+18*i, esc(line))
	}

	// Grid lines and their values, at fifths of the scale.
	gridBottom := top + len(c.Bars)*svgRowH
	for i := 0; i <= 5; i++ {
		v := scale * float64(i) / 5
		x := x0 + px(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", x, top-6, x, gridBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" class="muted">%s</text>`+"\n", x, gridBottom+16, esc(format(v)))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" class="muted">%s</text>`+"\n", x0+svgBarW/2, gridBottom+34, esc(c.Unit+" (median of the rounds; whiskers: min–max)"))

	for i, bb := range c.Bars {
		y := float64(top + i*svgRowH)
		mid := y + svgBarH/2 + 4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLabelW, mid, esc(bb.Label))
		if bb.Unavailable != "" {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="muted">unavailable: %s</text>`+"\n", x0+4, mid, esc(Truncate(bb.Unavailable, 90)))
			continue
		}
		class := "bar"
		switch {
		case bb.Ceiling:
			class = "bar ceiling"
		case bb.Best:
			class = "bar best"
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%d"><title>%s: %s</title></rect>`+"\n",
			class, x0, y, px(bb.Value), svgBarH, esc(bb.Label), esc(format(bb.Value)+" "+c.Unit))
		if bb.Max > bb.Min {
			wy := y + svgBarH/2
			fmt.Fprintf(&b, `<line class="whisker" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0+px(bb.Min), wy, x0+px(bb.Max), wy)
		}
		note := ""
		if bb.Note != "" {
			note = " — " + bb.Note
		}
		fmt.Fprintf(&b, `<text class="note" x="%.1f" y="%.1f"><tspan font-weight="bold">%s</tspan>%s</text>`+"\n",
			x0+max(px(bb.Value), px(bb.Max))+6, mid, esc(format(bb.Value)), esc(note))
	}
	if c.Footer != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="muted" font-size="11">%s</text>`+"\n", svgPadding, height-8, esc(c.Footer))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// WriteSVGFile writes the chart to path; errors name the -svg flag.
func WriteSVGFile(path string, c Chart) error {
	var b bytes.Buffer
	if err := WriteSVG(&b, c); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-svg: %w", err)
	}
	return nil
}

// SVGBars reads back a chart [WriteSVG] drew: the titles of its bars
// ("label: value unit"), in order. It is an error if doc is not
// well-formed XML or its root is not an svg element in the SVG namespace.
// Tests check charts with it.
func SVGBars(doc []byte) ([]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var bars []string
	inBar, root := false, ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bars, fmt.Errorf("SVG is not well-formed XML: %w", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Space + " " + e.Name.Local
			}
			if e.Name.Local == "rect" {
				for _, a := range e.Attr {
					if a.Name.Local == "class" && slices.Contains(strings.Fields(a.Value), "bar") {
						inBar = true
						bars = append(bars, "")
					}
				}
			}
		case xml.CharData:
			if inBar {
				bars[len(bars)-1] += string(e)
			}
		case xml.EndElement:
			if e.Name.Local == "rect" {
				inBar = false
			}
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		return bars, fmt.Errorf("root element %q, want svg in the SVG namespace", root)
	}
	return bars, nil
}

// niceCeil rounds x up to 1, 2, 2.5 or 5 times a power of ten, so the grid
// lines fall on round numbers.
func niceCeil(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if x <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Truncate shortens s to n runes, ending it with an ellipsis if it was longer.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
