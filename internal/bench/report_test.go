package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
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
		Name: "DNS", Pkg: "example.com/dnsbench", Title: "dnsbench: a made-up benchmark", Config: map[string]int{"rounds": 3},
		Env: Env{GOOS: "linux", GOARCH: "amd64", GOMAXPROCS: 2, Kernel: "Linux 6.18", NumCPU: 2},
		Columns: []Column[fakeSample]{
			{Name: "queries/s", Value: qps, Format: Rate, Range: true, Vs: []string{"udpconn"}},
			{Name: "CPU/query", Value: func(s fakeSample) float64 { return Div(s.CPU, s.Queries) }, Format: Nanos, Vs: []string{"udpconn"}},
		},
		Results: res,
		Goals: []Goal{
			{Group: "wildcard", Mode: "conn", Column: "queries/s", Vs: "udpconn", Cmp: AtLeast, Want: 1.2},
			{Group: "wildcard", Mode: "conn", Column: "CPU/query", Vs: "udpconn", Cmp: AtMost, Want: 0.4},
			{Group: "wildcard", Mode: "gone", Column: "queries/s", Vs: "udpconn", Cmp: AtLeast, Want: 1}, // no samples: not checked
			{Group: "wildcard", Mode: "conn", Column: "no such column", Cmp: AtLeast, Want: 1},           // not checked
		},
		Notes: "queries/s: answered per second.",
	}
}

func TestReportTargets(t *testing.T) {
	ts := fakeReport(t).Targets()
	if len(ts) != 2 {
		t.Fatalf("%d targets, want 2 (goals on a mode without samples or an unknown column are not checked): %+v", len(ts), ts)
	}
	if ts[0].Name != "conn queries/s >= 1.20x udpconn" || ts[0].Got != 1.5 || !ts[0].Met || ts[0].Where != "wildcard" {
		t.Errorf("target 0 = %+v", ts[0])
	}
	if ts[1].Met || ts[1].Got < 0.44 || ts[1].Got > 0.45 { // (1e9/1.5/1.5q) / (1e9/q) = 0.444
		t.Errorf("target 1 = %+v, want missed at 0.44", ts[1])
	}
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport(t).Write(&b, Output{Format: "table"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"dnsbench: a made-up benchmark\nLinux 6.18, ",
		"          mode     queries/s    (min–max)  vs udpconn  CPU/query  vs udpconn\n",
		"wildcard  udpconn       120k  (110k–130k)       1.00x     8333ns       1.00x\n",
		"wildcard  conn          180k  (165k–195k)       1.50x     3704ns       0.44x\n",
		"wildcard  gone             -            -           -          -           -\n",
		"wildcard gone: no <GRO> & no GSO\n",
		"targets met: 1, missed: 1\n  MISSED wildcard: conn CPU/query <= 0.40x udpconn: got 0.444 (CPU/query ratio, median of rounds)\n",
		"\nqueries/s: answered per second.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	fakeReport(t).Write(&b, Output{Format: "table", Quiet: true})
	if lines := strings.Count(b.String(), "\n"); lines != 4 {
		t.Errorf("-q: %d lines, want the head and a row per mode:\n%s", lines, b.String())
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport(t).Write(&b, Output{Format: "json"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Title  string
		Config map[string]int
		Env    Env
		Modes  []struct {
			Group, Mode, Unavailable string
			Samples                  []struct {
				Round int
				Value fakeSample
			}
			Figures map[string]Stat
			Ratios  map[string]*Stat
		}
		Targets []Target
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	if got.Title == "" || got.Config["rounds"] != 3 || got.Env.GOMAXPROCS != 2 || len(got.Modes) != 3 || len(got.Targets) != 2 {
		t.Fatalf("JSON lost data:\n%s", b.String())
	}
	conn := got.Modes[1]
	if conn.Mode != "conn" || len(conn.Samples) != 3 || conn.Samples[2].Round != 3 || conn.Samples[2].Value.Queries != 195_000 {
		t.Errorf("conn's samples: %+v", conn.Samples)
	}
	if conn.Figures["queries/s"] != (Stat{180_000, 165_000, 195_000}) || conn.Ratios["queries/s vs udpconn"].Median != 1.5 {
		t.Errorf("conn's figures %+v, ratios %+v", conn.Figures, conn.Ratios)
	}
	if got.Modes[2].Unavailable == "" {
		t.Errorf("the unavailable mode does not say why")
	}
}

func TestReportGobench(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport(t).Write(&b, Output{Format: "gobench"}); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^BenchmarkDNS/group=wildcard/mode=(udpconn|conn)-2\t1\t[0-9.]+ queries/s\t[0-9.]+ CPU/query$`)
	config := regexp.MustCompile(`^[a-z]+: \S.*$`)
	benches := 0
	for l := range strings.Lines(b.String()) {
		l = strings.TrimSuffix(l, "\n")
		switch {
		case strings.HasPrefix(l, "Benchmark"):
			benches++
			if !line.MatchString(l) {
				t.Errorf("not a line benchstat reads: %q", l)
			}
		case config.MatchString(l), l == "# gone: no <GRO> & no GSO":
		default:
			t.Errorf("stray line: %q", l)
		}
	}
	if benches != 6 {
		t.Errorf("%d benchmark lines, want 6 (one per mode and round)", benches)
	}
}

// svgBars parses an SVG document and returns its bars' titles.
func svgBars(t *testing.T, doc []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var bars []string
	inBar, root := false, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
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
		t.Errorf("root element = %q, want svg in the SVG namespace", root)
	}
	return bars
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
	bars := svgBars(t, doc)
	if len(bars) != 2 || !strings.HasPrefix(bars[0], "wildcard udpconn: 120k queries/s") || !strings.HasPrefix(bars[1], "wildcard conn: 180k") {
		t.Errorf("bars %q, want one per mode that ran", bars)
	}
	for _, want := range []string{"1.50x udpconn", "unavailable: no &lt;GRO&gt; &amp; no GSO"} {
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
	if bars := svgBars(t, buf.Bytes()); len(bars) != 1 {
		t.Errorf("%d bars, want 1: an unavailable mode gets a note, not a bar", len(bars))
	}
	for _, want := range []string{"unavailable: no GSO: &lt;EINVAL&gt; &amp; more", "2x &lt;ref&gt;", "a &lt;b&gt; &amp; &#34;c&#34;"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q:\n%s", want, buf.String())
		}
	}
}
