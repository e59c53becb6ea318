package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestWritersFlags(t *testing.T) {
	cfg, err := parseWritersFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.writers, []int{1, 8, 64}) || cfg.size != 1200 || !cfg.gso {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = parseWritersFlags([]string{"-writers", " 4, 2 ,,16", "-gso=false"}, io.Discard)
	if err != nil || !slices.Equal(cfg.writers, []int{4, 2, 16}) || cfg.gso {
		t.Errorf("-writers ' 4, 2 ,,16' -gso=false: %+v, %v", cfg, err)
	}
}

func TestWritersBadFlagsExitWithStatus2AndAMessage(t *testing.T) {
	for _, args := range [][]string{
		{"-writers", "0"}, {"-writers", "-8"}, {"-writers", "x"}, {"-writers", "8,8"}, {"-writers", ""},
		{"-writers", " , "}, {"-writers", "5000"}, {"-size", "0"}, {"-size", "65508"}, {"-duration", "0s"},
		{"-count", "0"}, {"-count", "1001"}, {"-nope"}, {"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := batchbench(append([]string{"writers"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("batchbench writers %q: exit status %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("batchbench writers %q wrote to stdout: %q", args, stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "batchbench: ") || strings.Count(msg, "\n") > 3 {
			t.Errorf("batchbench writers %q: stderr %q, want a short batchbench: message", args, msg)
		}
	}
}

func TestWritersHelpExitsWith0(t *testing.T) {
	var stderr bytes.Buffer
	if code := batchbench([]string{"writers", "-h"}, io.Discard, &stderr); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-writers") {
		t.Errorf("help does not list -writers: %q", stderr.String())
	}
}
