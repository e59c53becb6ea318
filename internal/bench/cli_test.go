package bench

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExitStatus(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		stderr string
	}{
		{"success", nil, 0, ""},
		{"help", flag.ErrHelp, 0, ""},
		{"a bad command line", Usagef("-count %d: must be between 1 and %d", 0, 1000), 2,
			"prog: -count 0: must be between 1 and 1000\nrun 'prog sub -h' for the flags\n"},
		{"a failed measurement", errors.New("round 1, std, A->B: TCP sender: exit status 1"), 1,
			"prog: round 1, std, A->B: TCP sender: exit status 1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if got := Exit(tt.err, &b, "prog", "prog sub"); got != tt.status || b.String() != tt.stderr {
				t.Errorf("Exit = %d, stderr %q; want %d, %q", got, b.String(), tt.status, tt.stderr)
			}
		})
	}
}

func newFlags() (*flag.FlagSet, *int) {
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("count", 5, "rounds")
	fs.String("internal-role", "", "")
	return fs, n
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"flags only", []string{"-count", "3"}, ""},
		{"an unknown flag", []string{"-nope"}, "flag provided but not defined: -nope"},
		{"a value that is no number", []string{"-count", "x"}, `invalid value "x" for flag -count`},
		{"a positional argument", []string{"-count", "3", "extra"}, `unexpected argument "extra" (prog takes only flags)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs, _ := newFlags()
			err := Parse(fs, tt.args, io.Discard, "")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, ok := errors.AsType[*UsageError](err); !ok || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v (%T), want a *UsageError saying %q", err, err, tt.wantErr)
			}
		})
	}
	fs, _ := newFlags()
	var help bytes.Buffer
	if err := Parse(fs, []string{"-h"}, &help, "usage: prog\n"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if got := help.String(); got != "usage: prog\n  -count int\n    \trounds (default 5)\n" {
		t.Errorf("-h printed %q: want the head and the public flags, not internal-*", got)
	}
}

func TestIsSet(t *testing.T) {
	fs, _ := newFlags()
	if err := Parse(fs, []string{"-count", "5"}, io.Discard, ""); err != nil {
		t.Fatal(err)
	}
	if !IsSet(fs, "count") || IsSet(fs, "internal-role") {
		t.Error("IsSet: want count set (even to its default), internal-role not")
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"1000": 1000, "3KiB": 3 << 10, "256MiB": 256 << 20, "1GiB": 1 << 30} {
		if got, err := ParseBytes("-bytes", s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for s, msg := range map[string]string{
		"0": "want a positive number", "-1MiB": "want a positive number", "MiB": "want a positive number",
		"1GB": "want a positive number", "": "want a positive number", "9000000000000GiB": "too large",
	} {
		_, err := ParseBytes("-bytes", s)
		if _, ok := errors.AsType[*UsageError](err); !ok || !strings.Contains(err.Error(), msg) || !strings.HasPrefix(err.Error(), "-bytes ") {
			t.Errorf("ParseBytes(%q): %v, want a -bytes usage error saying %q", s, err, msg)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList("-gro", " off, on", "on", "off")
	if err != nil || !slices.Equal(got, []string{"off", "on"}) {
		t.Errorf("ParseList = %v, %v; want [off on], in the order given", got, err)
	}
	for s, msg := range map[string]string{
		"maybe": `"maybe" is not one of on, off`, "": `"" is not one of on, off`, "on,": `"" is not one of on, off`,
		"ON": `"ON" is not one of`, "on,on": "on listed twice",
	} {
		if _, err := ParseList("-gro", s, "on", "off"); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseList(%q): %v, want an error saying %q", s, err, msg)
		}
	}
}

func TestParseCounts(t *testing.T) {
	got, err := ParseCounts("-writers", " 4, 2 ,,16", "number of goroutines", 4096, true)
	if err != nil || !slices.Equal(got, []int{4, 2, 16}) {
		t.Errorf("ParseCounts = %v, %v", got, err)
	}
	for _, tt := range []struct {
		s         string
		skipEmpty bool
		msg       string
	}{
		{"0", true, `"0" is not a count from 1 to 64`}, {"-8", true, `"-8" is not a count`}, {"x", true, `"x" is not a count`},
		{"65", true, `"65" is not a count from 1 to 64`}, {"8,8", true, "8 listed twice"}, {" , ", true, "no numbers given"},
		{"", true, "no numbers given"}, {"1,,8", false, `"" is not a count`},
	} {
		if _, err := ParseCounts("-n", tt.s, "count", 64, tt.skipEmpty); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseCounts(%q): %v, want an error saying %q", tt.s, err, tt.msg)
		}
	}
}

func TestOutputFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		args    []string
		format  string
		wantErr string
	}{
		{"the table by default", nil, "table", ""},
		{"-json is -format json", []string{"-json"}, "json", ""},
		{"-json with -format json agree", []string{"-format", "json", "-json"}, "json", ""},
		{"gobench", []string{"-format", "gobench"}, "gobench", ""},
		{"an unknown format", []string{"-format", "csv"}, "", `-format "csv": want table, json, or gobench`},
		{"-json with gobench contradict", []string{"-json", "-format", "gobench"}, "", "contradict"},
		{"-json with an explicit table contradict", []string{"-json", "-format", "table"}, "", "-json and -format table contradict"},
		{"an svg file in a missing directory", []string{"-svg", filepath.Join(dir, "no", "x.svg")}, "", "no directory"},
		{"an svg path that is a directory", []string{"-svg", dir}, "", "is a directory"},
		{"an svg file under a file", []string{"-svg", filepath.Join(os.Args[0], "x.svg")}, "", "is not a directory"},
		{"an svg file in a directory", []string{"-svg", filepath.Join(dir, "x.svg")}, "table", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o Output
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.Flags(fs)
			err := Parse(fs, tt.args, io.Discard, "")
			if err == nil {
				err = o.Check(fs)
			}
			if tt.wantErr != "" {
				if _, ok := errors.AsType[*UsageError](err); !ok || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want a usage error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || o.Format != tt.format {
				t.Errorf("format %q, error %v; want %q", o.Format, err, tt.format)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("checking -svg left files behind: %v", ents)
			}
		})
	}
}

func TestRunCommand(t *testing.T) {
	var ran []string
	cmds := []Command{
		{"serve", func(args []string) error { ran = append(ran, "serve "+strings.Join(args, " ")); return nil }},
		{"load", func(args []string) error { return Usagef("-rate %s: no", args[1]) }},
		{"bench", func(args []string) error { return errors.New("round 1: failed") }},
	}
	for _, tt := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"serve", "-addr", "x"}, 0, ""},
		{[]string{"load", "-rate", "x"}, 2, "prog: -rate x: no\nrun 'prog load -h' for the flags\n"},
		{[]string{"bench"}, 1, "prog: round 1: failed\n"},
		{[]string{"-h"}, 0, "usage: prog COMMAND\n"},
		{[]string{"help", "serve"}, 0, "usage: prog COMMAND\n"},
		{nil, 2, "prog: no command given: want serve, load or bench\nrun 'prog -h' for the flags\n"},
		{[]string{"forward"}, 2, "prog: unknown command \"forward\": want serve, load or bench\nrun 'prog -h' for the flags\n"},
	} {
		var b bytes.Buffer
		if got := RunCommand("prog", "usage: prog COMMAND\n", cmds, tt.args, &b); got != tt.status || b.String() != tt.stderr {
			t.Errorf("RunCommand(%q) = %d, stderr %q; want %d, %q", tt.args, got, b.String(), tt.status, tt.stderr)
		}
	}
	if !slices.Equal(ran, []string{"serve -addr x"}) {
		t.Errorf("ran %q, want serve once with its arguments", ran)
	}
	var b bytes.Buffer
	if RunCommand("prog", "", cmds[:2], []string{"x"}, &b); !strings.Contains(b.String(), "want serve or load\n") {
		t.Errorf("two commands: %q", b.String())
	}
}

func TestParseQueue(t *testing.T) {
	for s, want := range map[string]int{"1MiB": 1 << 20, "1GiB": 1 << 30, "1500": 1500} {
		if got, err := ParseQueue("-queue", s); got != want || err != nil {
			t.Errorf("ParseQueue(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for s, msg := range map[string]string{"0": `-queue "0": want a positive number`, "1025MiB": "-queue 1025MiB: at most 1GiB", "1MB": `-queue "1MB"`} {
		if _, err := ParseQueue("-queue", s); err == nil || !strings.HasPrefix(err.Error(), msg) {
			t.Errorf("ParseQueue(%q): %v, want an error saying %q", s, err, msg)
		} else if _, ok := errors.AsType[*UsageError](err); !ok {
			t.Errorf("ParseQueue(%q): %T, want a *UsageError", s, err)
		}
	}
}

func TestChoices(t *testing.T) {
	cs := Choices{{"udpconn", "a *net.UDPConn"}, {"conn", "a *batchconn.Conn"}}
	if got := cs.Names(); !slices.Equal(got, []string{"udpconn", "conn"}) {
		t.Errorf("Names() = %q", got)
	}
	if got := cs.Help(); got != "\n  udpconn: a *net.UDPConn\n  conn: a *batchconn.Conn" {
		t.Errorf("Help() = %q", got)
	}
	if err := cs.Check("-socket", "conn"); err != nil {
		t.Errorf("Check(conn): %v", err)
	}
	err := cs.Check("-socket", "xdp")
	if _, ok := errors.AsType[*UsageError](err); !ok || err.Error() != `-socket "xdp": want one of [udpconn conn]` {
		t.Errorf("Check(xdp): %v (%T)", err, err)
	}
}
