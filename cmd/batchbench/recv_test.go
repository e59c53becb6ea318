package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

func TestParseRecvFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c config)
	}{
		{name: "recv defaults to GSO-sent 1400-byte traffic, drained, every receive mode", args: []string{"-recv"}, check: func(t *testing.T, c config) {
			if !c.recv || c.traffic != trafficGSO || c.live || c.size != recvSize || c.batch != 64 {
				t.Errorf("recv %v traffic %q live %v size %d batch %d", c.recv, c.traffic, c.live, c.size, c.batch)
			}
			if !slices.Equal(c.modes, allRecvModes) {
				t.Errorf("modes = %v, want all receive modes", c.modes)
			}
		}},
		{name: "recv keeps an explicit size", args: []string{"-recv", "-size", "1200"}, check: func(t *testing.T, c config) {
			if c.size != 1200 {
				t.Errorf("size = %d", c.size)
			}
		}},
		{name: "plain traffic and a live sender are accepted", args: []string{"-recv", "-traffic", "plain", "-live"}, check: func(t *testing.T, c config) {
			if c.traffic != trafficPlain || !c.live {
				t.Errorf("traffic %q live %v", c.traffic, c.live)
			}
		}},
		{name: "receive modes are put in table order", args: []string{"-recv", "-modes", "raw-recvmmsg,readfrom"}, check: func(t *testing.T, c config) {
			if want := []string{modeReadFrom, modeRawRecvmmsg}; !slices.Equal(c.modes, want) {
				t.Errorf("modes = %v, want %v", c.modes, want)
			}
		}},
		{name: "an unknown traffic shape is refused", args: []string{"-recv", "-traffic", "bursty"}, wantErr: `-traffic "bursty": want gso or plain`},
		{name: "traffic without recv is refused", args: []string{"-traffic", "plain"}, wantErr: "-traffic is for receiving: add -recv"},
		{name: "live without recv is refused", args: []string{"-live"}, wantErr: "-live is for receiving: add -recv"},
		{name: "dests with recv is refused", args: []string{"-recv", "-dests", "2"}, wantErr: "-dests is for sends"},
		{name: "netns with recv is refused", args: []string{"-recv", "-netns"}, wantErr: "-netns is for sends"},
		{name: "a send mode with recv is refused", args: []string{"-recv", "-modes", "writeto"}, wantErr: `"writeto" is a send mode: leave out -recv`},
		{name: "a receive mode without recv is refused", args: []string{"-modes", "readfrom"}, wantErr: `"readfrom" is a receive mode: add -recv`},
		{name: "an unknown receive mode is refused", args: []string{"-recv", "-modes", "recvfrom"}, wantErr: `unknown mode "recvfrom"`},
		{name: "14 segments must fit one GSO send", args: []string{"-recv", "-size", "4680"}, wantErr: "at most -size 4679"},
		{name: "the largest GSO segment is allowed", args: []string{"-recv", "-size", "4679"}},
		{name: "plain traffic takes large datagrams", args: []string{"-recv", "-traffic", "plain", "-size", "9000"}},
		{name: "recv refuses a zero batch", args: []string{"-recv", "-batch", "0"}, wantErr: "-batch 0"},
		{name: "an svg file in a missing directory is refused", args: []string{"-svg", filepath.Join(dir, "no", "such", "x.svg")}, wantErr: "no directory"},
		{name: "an svg path that is a directory is refused", args: []string{"-svg", dir}, wantErr: "is a directory"},
		{name: "an svg file in an existing directory is accepted", args: []string{"-svg", filepath.Join(dir, "x.svg")}, check: func(t *testing.T, c config) {
			if _, err := os.Stat(c.out.SVG); err == nil {
				t.Errorf("checking -svg created %s", c.out.SVG)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("checking -svg left files behind: %v", ents)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("parseFlags(%q) = %v", tt.args, err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseFlags(%q) succeeded, want error containing %q", tt.args, tt.wantErr)
			}
			if _, ok := errors.AsType[*bench.UsageError](err); !ok {
				t.Errorf("error %v is a %T, want *bench.UsageError", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestBadRecvAndSVGFlagsExitWithStatus2(t *testing.T) {
	for _, args := range [][]string{
		{"-recv", "-traffic", "x"}, {"-live"}, {"-recv", "-modes", "xnet"}, {"-svg", "/nonexistent-dir/x.svg"},
		{"-recv", "-size", "5000"}, {"-recv", "-svg", os.TempDir()},
	} {
		var stdout, stderr bytes.Buffer
		if code := batchbench(args, &stdout, &stderr); code != 2 {
			t.Errorf("batchbench(%q) exit status = %d, want 2", args, code)
		}
		if stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), "batchbench: ") {
			t.Errorf("batchbench(%q): stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
}

// fakeRecvReport is a finished drain report with made-up, consistent samples:
// per datagram, each mode takes perDgram of time and of CPU.
func fakeRecvReport(traffic string) *recvReport {
	r := &recvReport{CPUClock: "test clock"}
	r.Config.Size, r.Config.Batch, r.Config.Traffic, r.Config.Count, r.Config.Fill = 1400, 64, traffic, 3, 14000
	r.Config.Modes, r.Config.Network, r.Config.Segs = allRecvModes, "udp4", gsoSegs
	perDgram := map[string]time.Duration{
		modeReadFrom: 3000, modeXNetReadBatch: 800, modeBatchconnRead: 600,
		modeBatchconnGRO: 150, modeBatchconnReadFromGRO: 500, modeRawRecvmmsg: 570,
	}
	for _, m := range allRecvModes {
		res := &recvModeResult{Mode: m}
		for round := 1; round <= 3; round++ {
			d := perDgram[m] + time.Duration(round)
			calls := uint64(14000)
			if m != modeReadFrom && m != modeBatchconnReadFromGRO {
				calls /= 64
			}
			res.Samples = append(res.Samples, recvSample{Round: round, Elapsed: 14000 * d, Read: 14000, Bytes: 14000 * 1400,
				Calls: calls, CPU: 14000 * d, Sent: 14000})
		}
		r.Modes = append(r.Modes, res)
	}
	r.finish()
	return r
}

func TestRecvReportRatiosAndTargets(t *testing.T) {
	r := fakeRecvReport(trafficGSO)
	g := r.mode(modeBatchconnGRO)
	if x := g.ratio(modeXNetReadBatch); x == nil || x.Rate.Median < 5.2 || x.Rate.Median > 5.4 || x.CPU.Median < 5.2 || x.CPU.Median > 5.4 {
		t.Errorf("batchconn-gro vs xnet = %+v, want about 800/150 = 5.3 by rate and by CPU", x)
	}
	met := map[string]bool{} // by name: a speed target is met when met by rate and by CPU
	for _, tg := range r.Targets {
		v, ok := met[tg.Name]
		met[tg.Name] = tg.Met && (v || !ok)
	}
	for what, want := range map[string]bool{
		"batchconn-read >= 0.90x raw-recvmmsg":      true, // 570/600 = 0.95
		"batchconn-read >= 1.00x xnet-readbatch":    true, // 800/600 = 1.33
		"batchconn-gro >= 4.00x xnet-readbatch":     true, // 5.3
		"batchconn-readfrom-gro >= 3.00x readfrom":  true, // 6
		"batchconn-gro allocates nothing per call":  true,
		"batchconn-gro >= 0.85x batchconn-read":     false, // plain traffic only: absent
		"batchconn-read allocates nothing per call": true,
	} {
		got, ok := met[what]
		if what == "batchconn-gro >= 0.85x batchconn-read" {
			if ok {
				t.Errorf("target %q checked on GSO traffic; it is for plain traffic", what)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("target %q: present %v met %v, want met %v (targets %+v)", what, ok, got, want, r.Targets)
		}
	}
	if p := fakeRecvReport(trafficPlain); len(p.Targets) == 0 || p.Targets[0].Name != "batchconn-gro >= 0.85x batchconn-read" {
		t.Errorf("plain traffic targets = %+v, want GRO's cost on plain traffic first", p.Targets)
	}
}

func TestRecvTableAndJSON(t *testing.T) {
	r := fakeRecvReport(trafficGSO)
	var buf bytes.Buffer
	if err := r.writeTable(&buf, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1+len(allRecvModes) {
		t.Fatalf("-q table has %d lines, want header + %d modes:\n%s", len(lines), len(allRecvModes), buf.String())
	}
	width := len([]rune(lines[0]))
	for _, l := range lines[1:] {
		if len([]rune(l)) != width {
			t.Errorf("row not as wide as the header (columns misaligned):\n%s\n%s", lines[0], l)
		}
	}
	buf.Reset()
	if err := r.writeTable(&buf, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "receive targets") || strings.Contains(buf.String(), "MISSED") {
		t.Errorf("table does not list the targets as met:\n%s", buf.String())
	}
	buf.Reset()
	if err := bench.WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var back recvReport
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Modes) != len(allRecvModes) || back.Modes[0].PerSec.Median == 0 || len(back.Targets) == 0 {
		t.Errorf("JSON round trip lost data: %s", buf.String())
	}
	buf.Reset()
	if err := r.writeGobench(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\nBenchmarkRecv/mode="); n != 3*len(allRecvModes) {
		t.Errorf("%d benchmark lines, want %d:\n%s", n, 3*len(allRecvModes), buf.String())
	}
}

// checkSVG parses an SVG document and returns its bars' titles.
func checkSVG(t *testing.T, doc []byte) []string {
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

func TestSVGHasOneBarPerMode(t *testing.T) {
	for name, c := range map[string]bench.Chart{"send": fakeReport().chart(), "recv": fakeRecvReport(trafficGSO).chart()} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := bench.WriteSVG(&buf, c); err != nil {
				t.Fatal(err)
			}
			bars := checkSVG(t, buf.Bytes())
			if len(bars) != len(c.Bars) {
				t.Fatalf("%d bars, want %d (one per mode)", len(bars), len(c.Bars))
			}
			for i, b := range c.Bars {
				if !strings.HasPrefix(bars[i], b.Label+": ") {
					t.Errorf("bar %d titled %q, want it to name %s", i, bars[i], b.Label)
				}
				if b.Note != "" && !strings.Contains(buf.String(), xmlEscape(b.Note)) {
					t.Errorf("%s: ratio label %q not drawn", b.Label, b.Note)
				}
			}
		})
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// One allocation in a few thousand calls is a miss, and must not print as
// "0.00 allocs/call MISSED"; a stray allocation in one round of three (the
// runtime's, counted process-wide) is not.
func TestRecvAllocationTargetUsesTheMedianRoundAndShowsSmallCounts(t *testing.T) {
	r := fakeRecvReport(trafficGSO)
	r.mode(modeBatchconnRead).Samples[0].Mallocs = 1 // one round of three
	for i := range r.mode(modeBatchconnGRO).Samples {
		r.mode(modeBatchconnGRO).Samples[i].Mallocs = 1 // every round
	}
	r.finish()
	var buf bytes.Buffer
	if err := r.writeTable(&buf, false); err != nil {
		t.Fatal(err)
	}
	for _, tg := range r.Targets {
		switch tg.Name {
		case "batchconn-read allocates nothing per call":
			if !tg.Met {
				t.Errorf("%s: missed because of one round's allocation", tg.Name)
			}
		case "batchconn-gro allocates nothing per call":
			if tg.Met {
				t.Errorf("%s: met although every round allocated", tg.Name)
			}
		}
	}
	if !strings.Contains(buf.String(), "0.0046 allocs/call MISSED") {
		t.Errorf("a small allocation count is not shown as such:\n%s", buf.String())
	}
}
