package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestWriteTableAlignsColumns(t *testing.T) {
	var b bytes.Buffer
	WriteTable(&b, 1, [][]string{
		{"mode", "dgrams/s", "(min–max)", ""},
		{"readfrom", "331k", "(199k–398k)", ""},
		{"batchconn-gro", "4.93M", "(2.85M–6.47M)", "<- fastest"},
		{"short"},
	})
	want := "" +
		"mode           dgrams/s      (min–max)\n" +
		"readfrom           331k    (199k–398k)\n" +
		"batchconn-gro     4.93M  (2.85M–6.47M)  <- fastest\n" +
		"short\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestFormats(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Rate(1.284e6), "1.28M"}, {Rate(518_400), "518k"}, {Rate(950), "950"},
		{Pct(0.21), "21.0%"}, {Nanos(644), "644ns"}, {Nanos(10332), "10.3µs"},
		{Allocs(2), "2"}, {Allocs(127.7), "127.70"}, {Allocs(0.0046), "0.0046"},
		{Times(nil), "-"}, {Times(&Stat{Median: 6.924}), "6.92x"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// sample is a made-up benchmark's: queries answered in a round, and the
// CPU they took.
type fakeSample struct {
	Queries float64 `json:"queries"`
	CPU     float64 `json:"cpu_ns"`
}

// fakeReport runs a made-up benchmark on the engine: two servers, a UDPConn
// and a Conn, three rounds, the Conn answering 1.5 times the queries at 0.6
// times the CPU, and a third mode that is unavailable.
func fakeReport(t *testing.T) *Report[fakeSample] {
	t.Helper()
	mode := func(name string, speed float64) Mode[fakeSample] {
		return Mode[fakeSample]{Name: name, Sample: func(_ context.Context, round int) (fakeSample, error) {
			q := speed * float64(100_000+10_000*round)
			return fakeSample{Queries: q, CPU: 1e9 / speed}, nil
		}}
	}
	gone := Mode[fakeSample]{Name: "gone",
		Setup:  func(context.Context, int) error { return Unavailable(errors.New("no <GRO> & no GSO")) },
		Sample: func(context.Context, int) (fakeSample, error) { return fakeSample{}, nil }}
	res, err := Run(context.Background(), Plan[fakeSample]{Rounds: 3, Groups: []Group[fakeSample]{
		{Name: "wildcard", Modes: []Mode[fakeSample]{mode("udpconn", 1), mode("conn", 1.5), gone}}}})
	if err != nil {
		t.Fatal(err)
	}
	qps := func(s fakeSample) float64 { return s.Queries }
	return &Report[fakeSample]{
		Name: "DNS", Pkg: "example.com/dnsbench", Config: map[string]int{"rounds": 3},
		Head: "dnsbench: a made-up benchmark\n", Chart: Chart{Title: "dnsbench"},
		Env: Env{GOOS: "linux", GOARCH: "amd64", GOMAXPROCS: 2, Kernel: "Linux 6.18", NumCPU: 2},
		Columns: []Column[fakeSample]{
			{Name: "queries/s", JSON: "queries_per_sec", Value: qps, Format: Rate, Range: true},
			{Name: "CPU/query", JSON: "cpu_per_query", Value: func(s fakeSample) float64 { return Div(s.CPU, s.Queries) }, Format: Nanos, Chart: true},
			{Name: "vs udpconn", JSON: "vs_udpconn", Of: "queries/s", Vs: Ref("udpconn")},
			{Name: "CPU vs udpconn", Of: "CPU/query", Vs: Ref("udpconn"), Inverse: true},
			{Name: "CPU/query vs udpconn", Of: "CPU/query", Vs: Ref("udpconn"), Hidden: true},
		},
		Results: res,
		Goals: []Goal{
			{Group: "wildcard", Mode: "conn", Column: "vs udpconn", Cmp: AtLeast, Want: 1.2},
			{Group: "wildcard", Mode: "conn", Column: "CPU/query vs udpconn", Cmp: AtMost, Want: 0.4, Name: "conn CPU<=0.40x"},
			{Group: "wildcard", Mode: "gone", Column: "vs udpconn", Cmp: AtLeast, Want: 1},         // no samples: not checked
			{Group: "wildcard", Mode: "conn", Column: "no such column", Cmp: AtLeast, Want: 1},     // not checked
			{Group: "wildcard", Mode: "udpconn", Column: "queries/s", Cmp: AtLeast, Want: 100_000}, // a figure, not a ratio
		},
	}
}

func TestReportTargets(t *testing.T) {
	ts := fakeReport(t).Targets()
	if len(ts) != 3 {
		t.Fatalf("%d targets, want 3 (goals on a mode without samples or an unknown column are not checked): %+v", len(ts), ts)
	}
	if ts[0].Name != "conn vs udpconn >= 1.2" || ts[0].Got != 1.5 || !ts[0].Met || ts[0].Where != "wildcard" ||
		ts[0].Figure != "vs udpconn, median of rounds" {
		t.Errorf("target 0 = %+v", ts[0])
	}
	if ts[1].Name != "conn CPU<=0.40x" || ts[1].Met || ts[1].Got < 0.44 || ts[1].Got > 0.45 { // (1e9/1.5/1.5q) / (1e9/q) = 0.444
		t.Errorf("target 1 = %+v, want missed at 0.44", ts[1])
	}
	if ts[2].Got != 120_000 || !ts[2].Met {
		t.Errorf("target 2 = %+v, want udpconn's median queries/s, met", ts[2])
	}
}

func TestReportFigureAndFastest(t *testing.T) {
	r := fakeReport(t)
	if st := r.Figure("wildcard", "conn", "CPU vs udpconn"); st == nil || st.Median < 2.24 || st.Median > 2.26 {
		t.Errorf("an inverse ratio: %+v, want the reference's CPU over conn's, 2.25", st)
	}
	if st := r.Figure("wildcard", "gone", "queries/s"); st != nil {
		t.Errorf("a mode without samples has figure %+v", st)
	}
	if f := r.Fastest(); f != "conn" {
		t.Errorf("fastest = %q, want conn", f)
	}
	r.Ceiling = func(mode string) bool { return mode == "conn" }
	if f := r.Fastest(); f != "udpconn" {
		t.Errorf("fastest = %q with conn a ceiling, want udpconn", f)
	}
	r.Ceiling = func(string) bool { return true }
	if f := r.Fastest(); f != "conn" {
		t.Errorf("fastest = %q when every mode is a ceiling, want conn, the fastest of them", f)
	}
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	r := fakeReport(t)
	r.Mark = true
	if err := r.Write(&b, Output{Format: "table"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"dnsbench: a made-up benchmark\n          mode     queries/s    (min–max)  CPU/query  vs udpconn  CPU vs udpconn\n",
		"wildcard  udpconn       120k  (110k–130k)     8333ns       1.00x           1.00x\n",
		"wildcard  conn          180k  (165k–195k)     3704ns       1.50x           2.25x   <- fastest\n",
		"wildcard  gone             -                                                      unavailable\n",
		"wildcard gone: no <GRO> & no GSO\n",
		"targets met: 2, missed: 1\n  MISSED wildcard: conn CPU<=0.40x: got 0.444 (CPU/query vs udpconn, median of rounds)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	r.Notes = func(w io.Writer) { io.WriteString(w, "queries/s: answered per second.\n") }
	b.Reset()
	r.Write(&b, Output{Format: "table"})
	if !strings.HasSuffix(b.String(), "wildcard gone: no <GRO> & no GSO\nqueries/s: answered per second.\n") {
		t.Errorf("Notes, not the targets, follow the unavailable modes:\n%s", b.String())
	}
	b.Reset()
	r.Write(&b, Output{Format: "table", Quiet: true})
	if lines := strings.Count(b.String(), "\n"); lines != 4 {
		t.Errorf("-q: %d lines, want the column heads and a row per mode:\n%s", lines, b.String())
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport(t).Write(&b, Output{Format: "json"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Config map[string]int
		Env    Env
		Modes  []struct {
			Group, Mode, Unavailable string
			Samples                  []fakeSample
			Queries                  Stat  `json:"queries_per_sec"`
			VsUDPConn                *Stat `json:"vs_udpconn"`
		}
		Targets []Target
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	if got.Config["rounds"] != 3 || got.Env.GOMAXPROCS != 2 || len(got.Modes) != 3 || len(got.Targets) != 3 {
		t.Fatalf("JSON lost data:\n%s", b.String())
	}
	conn := got.Modes[1]
	if conn.Group != "wildcard" || conn.Mode != "conn" || len(conn.Samples) != 3 || conn.Samples[2].Queries != 195_000 {
		t.Errorf("conn's samples: %+v", conn.Samples)
	}
	if conn.Queries != (Stat{180_000, 165_000, 195_000}) || conn.VsUDPConn == nil || conn.VsUDPConn.Median != 1.5 {
		t.Errorf("conn's figures %+v, ratio %+v", conn.Queries, conn.VsUDPConn)
	}
	if gone := got.Modes[2]; gone.Unavailable == "" || gone.VsUDPConn != nil || gone.Samples != nil {
		t.Errorf("the unavailable mode: %+v; want why, no samples and no ratio", gone)
	}
	// Keys keep the order of the columns, ModeJSON's after them.
	r := fakeReport(t)
	r.ModeJSON = func(s *Series[fakeSample]) []KV { return []KV{{Key: "extra", Value: s.Mode}} }
	r.JSON = func(modes []ModeJSON, _ []Target) any { return modes[0] }
	b.Reset()
	r.Write(&b, Output{Format: "json"})
	keys := regexp.MustCompile(`(?m)^  "([a-z_]+)"`).FindAllStringSubmatch(b.String(), -1)
	var order []string
	for _, k := range keys {
		order = append(order, k[1])
	}
	if want := []string{"group", "mode", "samples", "queries_per_sec", "cpu_per_query", "vs_udpconn", "extra"}; !slices.Equal(order, want) {
		t.Errorf("keys %v, want %v:\n%s", order, want, b.String())
	}
}

func TestReportGobench(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport(t).Write(&b, Output{Format: "gobench"}); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^BenchmarkDNS/group=wildcard/mode=(udpconn|conn)-2\t1\t[0-9.]+ queries/s\t[0-9.]+ CPU/query$`)
	config := regexp.MustCompile(`^[a-z]+: \S.*$`)
	var modes []string
	for l := range strings.Lines(b.String()) {
		l = strings.TrimSuffix(l, "\n")
		switch {
		case strings.HasPrefix(l, "Benchmark"):
			if !line.MatchString(l) {
				t.Errorf("not a line benchstat reads: %q", l)
			}
			modes = append(modes, line.FindStringSubmatch(l)[1])
		case config.MatchString(l), l == "# gone: no <GRO> & no GSO":
		default:
			t.Errorf("stray line: %q", l)
		}
	}
	// One line per mode and round, round by round as they ran.
	if want := []string{"udpconn", "conn", "udpconn", "conn", "udpconn", "conn"}; !slices.Equal(modes, want) {
		t.Errorf("lines for %v, want %v", modes, want)
	}
}

func TestReportSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.svg")
	var b bytes.Buffer
	if err := fakeReport(t).Write(&b, Output{Format: "table", Quiet: true, SVG: path}); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bars, err := SVGBars(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if len(bars) != 2 || !strings.HasPrefix(bars[0], "wildcard udpconn: 120k queries/s") || !strings.HasPrefix(bars[1], "wildcard conn: 180k") {
		t.Errorf("bars %q, want one per mode that ran", bars)
	}
	// The ratios of the first column (not the inverse or hidden ones) and
	// the figures marked Chart follow each bar.
	for _, want := range []string{"— 1.50x udpconn  (3704ns CPU/query)</text>", "(8333ns CPU/query)</text>", "unavailable: no &lt;GRO&gt; &amp; no GSO"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if err := WriteSVGFile(filepath.Join(t.TempDir(), "no", "x.svg"), Chart{}); err == nil || !strings.HasPrefix(err.Error(), "-svg: ") {
		t.Errorf("writing into a missing directory: %v, want an -svg error", err)
	}
}

func TestSVGEscapesAndMarksUnavailableModes(t *testing.T) {
	c := Chart{Title: `a <b> & "c"`, Unit: "x/s", Bars: []Bar{
		{Label: "one", Value: 10, Min: 8, Max: 12, Note: "2x <ref>"},
		{Label: "two", Unavailable: "no GSO: <EINVAL> & more"},
	}}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, c); err != nil {
		t.Fatal(err)
	}
	bars, err := SVGBars(buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if len(bars) != 1 {
		t.Errorf("%d bars, want 1: an unavailable mode gets a note, not a bar", len(bars))
	}
	for _, want := range []string{"unavailable: no GSO: &lt;EINVAL&gt; &amp; more", "2x &lt;ref&gt;", "a &lt;b&gt; &amp; &#34;c&#34;"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestSVGBarsRefusesWhatIsNotAChart(t *testing.T) {
	for name, doc := range map[string]string{
		"not XML":            `<svg xmlns="http://www.w3.org/2000/svg"><rect class="bar">`,
		"no SVG namespace":   `<svg><rect class="bar"><title>a: 1</title></rect></svg>`,
		"another root":       `<html xmlns="http://www.w3.org/2000/svg"></html>`,
		"no document at all": ``,
	} {
		if bars, err := SVGBars([]byte(doc)); err == nil {
			t.Errorf("%s: bars %q, no error", name, bars)
		}
	}
	doc := `<svg xmlns="http://www.w3.org/2000/svg"><rect class="grid"/><rect class="bar best"><title>a: 1 x/s</title></rect>` +
		`<text>b</text><rect class="bar"><title>b: 2 x/s</title></rect></svg>`
	if bars, err := SVGBars([]byte(doc)); err != nil || !slices.Equal(bars, []string{"a: 1 x/s", "b: 2 x/s"}) {
		t.Errorf("bars %q, %v; want the two bars' titles", bars, err)
	}
}
