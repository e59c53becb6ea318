package benchtest

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/batchconn/batchconn/internal/bench"
)

// fakeT records what Flags reports; Fatalf ends the call (a panic the
// test recovers), as testing.T's ends the test.
type fakeT struct {
	testing.TB
	msgs []string
}

type fatal struct{}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(fatal{})
}

// parse takes -n N; "bad" is a plain error, not a usage error.
func parse(args []string, stderr io.Writer) (int, error) {
	switch {
	case len(args) == 2 && args[0] == "-n":
		if args[1] == "0" {
			return 0, bench.Usagef("-n 0: must be at least 1")
		}
		return len(args[1]), nil
	case len(args) == 1 && args[0] == "bad":
		return 0, errors.New("bad: no")
	}
	return 0, nil
}

func run(args []string, wantErr string) (n int, ok bool, msgs []string) {
	f := &fakeT{}
	defer func() {
		if r := recover(); r != nil && r != (fatal{}) {
			panic(r)
		}
		msgs = f.msgs
	}()
	n, ok = Flags(f, parse, args, wantErr)
	return n, ok, f.msgs
}

func TestFlags(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		wantErr string
		n       int
		ok      bool
		says    string // in the report; "" for none
	}{
		{[]string{"-n", "123"}, "", 3, true, ""},
		{[]string{"-n", "0"}, "-n 0", 0, false, ""},
		{[]string{"-n", "0"}, "-n 1", 0, false, `error "-n 0: must be at least 1" does not say "-n 1"`},
		{[]string{"-n", "0"}, "", 0, false, `flags ["-n" "0"]: -n 0: must be at least 1`},
		{[]string{"-n", "5"}, "-n 5", 0, false, `flags ["-n" "5"] accepted, want an error saying "-n 5"`},
		{[]string{"bad"}, "bad", 0, false, "error bad: no is a *errors.errorString, want a *bench.UsageError"},
	} {
		n, ok, msgs := run(tt.args, tt.wantErr)
		if n != tt.n || ok != tt.ok || (tt.says == "") != (len(msgs) == 0) || tt.says != "" && !strings.Contains(strings.Join(msgs, "\n"), tt.says) {
			t.Errorf("Flags(%q, %q) = %d, %v, reported %q; want %d, %v, reported %q", tt.args, tt.wantErr, n, ok, msgs, tt.n, tt.ok, tt.says)
		}
	}
}
