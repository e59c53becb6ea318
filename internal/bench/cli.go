package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A UsageError is a problem with the command line: [Exit] makes it status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Sprintf(format, args...)}
}

// Exit turns what a command returned into its exit status, every benchmark
// alike: 0 on success or for -h (flag.ErrHelp), 2 for a bad command line
// (a *UsageError: "prog: message", then where the flags are), 1 when the
// measurement fails.
func Exit(err error, stderr io.Writer, prog, helpCmd string) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	if _, ok := errors.AsType[*UsageError](err); ok {
		fmt.Fprintf(stderr, "run '%s -h' for the flags\n", helpCmd)
		return 2
	}
	return 1
}

// Parse parses args into fs, which must not print (flag.ContinueOnError,
// output discarded). Problems are *UsageError values; -h and -help print
// the usage (head, then the flags but those named internal-*, which a
// command keeps for the processes it starts) to stderr and return
// flag.ErrHelp. A positional argument is a problem.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer, head string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			public := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.HasPrefix(f.Name, "internal-") {
					public.Var(f.Value, f.Name, f.Usage)
					public.Lookup(f.Name).DefValue = f.DefValue
				}
			})
			fmt.Fprint(stderr, head)
			public.SetOutput(stderr)
			public.PrintDefaults()
			return err
		}
		return Usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q (%s takes only flags)", fs.Arg(0), fs.Name())
	}
	return nil
}

// A Command is one of a program's commands: its name, and what runs it on
// the arguments after the name.
type Command struct {
	Name string
	Run  func(args []string) error
}

// RunCommand runs the command args[0] names and returns the program's exit
// status, as [Exit] makes it: -h (or -help, --help, help) prints usage,
// the program's commands, to stderr; no command or an unknown one is a
// usage error; the help named after a command's error is that command's
// ("run 'prog serve -h'").
func RunCommand(prog, usage string, cmds []Command, args []string, stderr io.Writer) int {
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name)
	}
	want := names[len(names)-1]
	if len(names) > 1 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + want
	}
	var err error
	help := prog
	switch i := slices.IndexFunc(cmds, func(c Command) bool { return c.Name == name }); {
	case i >= 0:
		err = cmds[i].Run(args[1:])
		help += " " + name
	case name == "-h" || name == "-help" || name == "--help" || name == "help":
		fmt.Fprint(stderr, usage)
		return 0
	case name == "":
		err = Usagef("no command given: want %s", want)
	default:
		err = Usagef("unknown command %q: want %s", name, want)
	}
	return Exit(err, stderr, prog, help)
}

// IsSet reports whether the flag name was given on the command line.
func IsSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// ParseBytes reads a positive byte count with an optional binary suffix
// (KiB, MiB, GiB), for the flag name.
func ParseBytes(name, s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, Usagef("%s %q: want a positive number of bytes, optionally with KiB, MiB or GiB", name, s)
	}
	if n > math.MaxInt64/mult {
		return 0, Usagef("%s %q: too large", name, s)
	}
	return n * mult, nil
}

// maxWriteQueue is batchconn's limit for WithWriteQueue's size.
const maxWriteQueue = 1 << 30

// ParseQueue reads a write queue's size for batchconn's WithWriteQueue,
// for the flag name: [ParseBytes], at most 1GiB (the option's limit).
func ParseQueue(name, s string) (int, error) {
	n, err := ParseBytes(name, s)
	if err != nil {
		return 0, err
	}
	if n > maxWriteQueue {
		return 0, Usagef("%s %s: at most 1GiB", name, s)
	}
	return int(n), nil
}

// A Choice is one value of a flag that names one of a few things (a
// socket), and a line of help saying what it is.
type Choice struct{ Name, Doc string }

// Choices are a flag's values, in the order its help lists them.
type Choices []Choice

// Names are the choices' names, in order.
func (cs Choices) Names() []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// Help lists the choices for a flag's usage, a line each.
func (cs Choices) Help() string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("\n  " + c.Name + ": " + c.Doc)
	}
	return b.String()
}

// Check refuses, as a usage error for the flag name, a value v that is
// none of the choices.
func (cs Choices) Check(name, v string) error {
	if !slices.Contains(cs.Names(), v) {
		return Usagef("%s %q: want one of %s", name, v, cs.Names())
	}
	return nil
}

// ParseList reads a comma-separated list of allowed values, each at most
// once, in the order given, for the flag name.
func ParseList(name, s string, allowed ...string) ([]string, error) {
	var vals []string
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(allowed, v) {
			return nil, Usagef("%s %q: %q is not one of %s", name, s, v, strings.Join(allowed, ", "))
		}
		if slices.Contains(vals, v) {
			return nil, Usagef("%s %q: %s listed twice", name, s, v)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// ParseCounts reads a comma-separated list of distinct whole numbers from 1
// to most, in the order given, for the flag name; what is one of them (for
// messages: "connection count"). Empty entries are skipped when
// skipEmpty.
func ParseCounts(name, s, what string, most int, skipEmpty bool) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" && skipEmpty {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > most {
			return nil, Usagef("%s %q: %q is not a %s from 1 to %d", name, s, f, what, most)
		}
		if slices.Contains(ns, n) {
			return nil, Usagef("%s %q: %d listed twice", name, s, n)
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return nil, Usagef("%s %q: no numbers given", name, s)
	}
	return ns, nil
}

// CheckOutputFile refuses, before anything is measured, an output file for
// the flag name that cannot be written: its directory must exist and take
// a new file, and the path must not be a directory. "" is no file: fine.
func CheckOutputFile(name, path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return Usagef("%s %s: is a directory, want a file name", name, path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return Usagef("%s %s: no directory %s to write it in", name, path, dir)
	case !fi.IsDir():
		return Usagef("%s %s: %s is not a directory", name, path, dir)
	}
	// The one portable test of "can I create a file here": create one.
	f, err := os.CreateTemp(dir, ".bench-*")
	if err != nil {
		return Usagef("%s %s: cannot create files in %s: %v", name, path, dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// Output is what a benchmark's output flags ask for: -format (table, json
// or gobench), -json (the same as -format json), -q and -svg.
type Output struct {
	Format string // "table", "json" or "gobench"
	Quiet  bool   // only the results: no progress line, no notes
	SVG    string // also draw the results as an SVG bar chart in this file
	json   bool
}

// Flags adds the output flags to fs.
func (o *Output) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print the results as JSON (same as -format json)")
	fs.StringVar(&o.Format, "format", "table", "output `format`: table, json, or gobench (for benchstat)")
	fs.BoolVar(&o.Quiet, "q", false, "print only the results: no progress line, no notes")
	fs.StringVar(&o.SVG, "svg", "", "also write the results as an SVG bar chart to `file`")
}

// Check checks the output flags once fs is parsed.
func (o *Output) Check(fs *flag.FlagSet) error {
	if err := CheckOutputFile("-svg", o.SVG); err != nil {
		return err
	}
	if o.json {
		// -json is shorthand for -format json; an explicit -format that
		// says otherwise (even "table") is a contradiction, not something
		// to guess.
		if IsSet(fs, "format") && o.Format != "json" {
			return Usagef("-json and -format %s contradict each other (-json means -format json)", o.Format)
		}
		o.Format = "json"
	}
	switch o.Format {
	case "table", "json", "gobench":
		return nil
	}
	return Usagef("-format %q: want table, json, or gobench", o.Format)
}

// Progress is where the progress line goes: stderr for a table, none
// with -q or for output meant for machines.
func (o *Output) Progress(stderr io.Writer) io.Writer {
	if o.Quiet || o.Format != "table" {
		return nil
	}
	return stderr
}
