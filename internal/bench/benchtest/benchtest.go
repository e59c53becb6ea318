// Package benchtest holds what the tests of the benchmark commands (on
// [bench]) check alike.
package benchtest

import (
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
