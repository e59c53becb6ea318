// Package benchtest holds what the tests of the benchmark commands (on
// [bench]) check alike.
package benchtest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/batchconn/batchconn/internal/bench"
)

// Flags runs a command's flag parser on args as one case of a table
// test. With wantErr "", the flags must parse, and Flags returns the
// config and true, for the case to check further. Otherwise the parser
// must refuse them with a *bench.UsageError whose message holds wantErr.
func Flags[C any](t testing.TB, parse func(args []string, stderr io.Writer) (C, error), args []string, wantErr string) (C, bool) {
	t.Helper()
	c, err := parse(args, io.Discard)
	if wantErr == "" {
		if err != nil {
			t.Fatalf("flags %q: %v", args, err)
		}
		return c, true
	}
	if err == nil {
		t.Fatalf("flags %q accepted, want an error saying %q", args, wantErr)
	}
	if _, ok := errors.AsType[*bench.UsageError](err); !ok {
		t.Errorf("error %v is a %T, want a *bench.UsageError", err, err)
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Errorf("error %q does not say %q", err, wantErr)
	}
	return c, false
}

// A Usage is one case of [CommandLine]: a command line, the exit status
// it must end with, and what its stderr must say.
type Usage struct {
	Name     string
	Args     []string
	Status   int
	InStderr string
}

// CommandLine runs a command's run function on each case, with an empty
// stdin, and checks its status and stderr; no stderr may show the hidden
// [bench.ControlFlag].
func CommandLine(t *testing.T, run func(args []string, stdin io.Reader, stdout, stderr io.Writer) int, cases []Usage) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(tc.Args, strings.NewReader(""), &stdout, &stderr)
			if status != tc.Status {
				t.Errorf("status %d, want %d; stderr:\n%s", status, tc.Status, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.InStderr) {
				t.Errorf("stderr does not say %q:\n%s", tc.InStderr, stderr.String())
			}
			if strings.Contains(stderr.String(), bench.ControlFlag) {
				t.Errorf("stderr shows the hidden flag %s:\n%s", bench.ControlFlag, stderr.String())
			}
		})
	}
}
