package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	quicbatch "github.com/batchconn/batchconn/integration/quic"
	"github.com/batchconn/batchconn/internal/bench/benchtest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c config)
	}{
		{name: "no flags give the documented defaults", args: nil, check: func(t *testing.T, c config) {
			if c.total != 256<<20 || c.count != 5 || !slices.Equal(c.conns, []int{1, 8, 32}) || !slices.Equal(c.gsos, []string{"on", "off"}) {
				t.Errorf("defaults = bytes %d count %d conns %v gso %v", c.total, c.count, c.conns, c.gsos)
			}
			if !slices.Equal(c.gros, []string{"on", "off"}) || !slices.Equal(c.wraps, []string{"both"}) || c.corrupt != -1 {
				t.Errorf("defaults = gro %v wrap %v corrupt %d", c.gros, c.wraps, c.corrupt)
			}
			if c.depth != defaultDepth || c.qbytes != quicbatch.DefaultQueueBytes || !c.async || c.verbose || c.role != "" {
				t.Errorf("defaults = depth %d qbytes %d async %v v %v role %q", c.depth, c.qbytes, c.async, c.verbose, c.role)
			}
		}},
		{name: "bytes take binary suffixes", args: []string{"-bytes", "3KiB", "-conns", "1"}, check: func(t *testing.T, c config) {
			if c.total != 3<<10 || c.bytesArg != "3KiB" {
				t.Errorf("bytes = %d (%q), want 3072", c.total, c.bytesArg)
			}
		}},
		{name: "bytes 0 is refused", args: []string{"-bytes", "0"}, wantErr: `-bytes "0"`},
		{name: "negative bytes are refused", args: []string{"-bytes", "-1MiB"}, wantErr: `-bytes "-1MiB"`},
		{name: "bytes without a number are refused", args: []string{"-bytes", "MiB"}, wantErr: `-bytes "MiB"`},
		{name: "an unknown bytes suffix is refused", args: []string{"-bytes", "1GB"}, wantErr: `-bytes "1GB"`},
		{name: "bytes that overflow are refused", args: []string{"-bytes", "9000000000000GiB"}, wantErr: "too large"},
		{name: "fewer bytes than connections are refused", args: []string{"-bytes", "8", "-conns", "1,32"}, wantErr: "less than one byte for each of 32"},
		{name: "count 0 is refused", args: []string{"-count", "0"}, wantErr: "-count 0"},
		{name: "negative count is refused", args: []string{"-count", "-3"}, wantErr: "-count -3"},
		{name: "count over 1000 is refused", args: []string{"-count", "1001"}, wantErr: "-count 1001"},
		{name: "conns 0 is refused", args: []string{"-conns", "0"}, wantErr: `"0" is not a connection count`},
		{name: "an empty conns entry is refused", args: []string{"-conns", "1,,8"}, wantErr: `"" is not a connection count`},
		{name: "conns over 1024 are refused", args: []string{"-conns", "1025"}, wantErr: "1025"},
		{name: "a conns count listed twice is refused", args: []string{"-conns", "8,1,8"}, wantErr: "8 listed twice"},
		{name: "conns keep their order", args: []string{"-conns", "32, 1"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.conns, []int{32, 1}) {
				t.Errorf("conns = %v", c.conns)
			}
		}},
		{name: "gso maybe is refused", args: []string{"-gso", "maybe"}, wantErr: `"maybe" is not one of on, off`},
		{name: "an empty gso list is refused", args: []string{"-gso", ""}, wantErr: `"" is not one of on, off`},
		{name: "gso listed twice is refused", args: []string{"-gso", "off,off"}, wantErr: "off listed twice"},
		{name: "gso off alone is accepted", args: []string{"-gso", " off"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.gsos, []string{"off"}) {
				t.Errorf("gso = %v", c.gsos)
			}
		}},
		{name: "gro maybe is refused", args: []string{"-gro", "maybe"}, wantErr: `-gro "maybe": "maybe" is not one of on, off`},
		{name: "an empty gro list is refused", args: []string{"-gro", ""}, wantErr: `-gro "": "" is not one of on, off`},
		{name: "an empty gro entry is refused", args: []string{"-gro", "on,"}, wantErr: `"" is not one of on, off`},
		{name: "gro listed twice is refused", args: []string{"-gro", "on,on"}, wantErr: "on listed twice"},
		{name: "gro in capitals is refused", args: []string{"-gro", "ON"}, wantErr: `"ON" is not one of on, off`},
		{name: "gro off alone is accepted", args: []string{"-gro", "off"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.gros, []string{"off"}) {
				t.Errorf("gro = %v", c.gros)
			}
		}},
		{name: "gro keeps its order", args: []string{"-gro", "off, on"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.gros, []string{"off", "on"}) {
				t.Errorf("gro = %v", c.gros)
			}
		}},
		{name: "wrap left is refused", args: []string{"-wrap", "left"}, wantErr: `"left" is not one of both, client, server`},
		{name: "wrap listed twice is refused", args: []string{"-wrap", "client,client"}, wantErr: "client listed twice"},
		{name: "wrap client and both are accepted", args: []string{"-wrap", "client,both"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.wraps, []string{"client", "both"}) {
				t.Errorf("wrap = %v", c.wraps)
			}
		}},
		{name: "a corrupt offset below -1 is refused", args: []string{"-internal-corrupt", "-2"}, wantErr: "-internal-corrupt -2"},
		{name: "a corrupt offset past the bytes is refused", args: []string{"-bytes", "1KiB", "-conns", "1", "-internal-corrupt", "1024"}, wantErr: "-internal-corrupt 1024"},
		{name: "a corrupt offset that is no number is refused", args: []string{"-internal-corrupt", "x"}, wantErr: "internal-corrupt"},
		{name: "negative depth is refused", args: []string{"-depth", "-1"}, wantErr: "-depth -1"},
		{name: "depth over 512 is refused", args: []string{"-depth", "513"}, wantErr: "-depth 513"},
		{name: "depth 0 (no queue) is accepted", args: []string{"-depth", "0"}},
		{name: "negative qbytes are refused", args: []string{"-qbytes", "-5"}, wantErr: "-qbytes -5"},
		{name: "async that is no boolean is refused", args: []string{"-async=maybe"}, wantErr: "async"},
		{name: "async=false selects combining", args: []string{"-async=false"}, check: func(t *testing.T, c config) {
			if c.async {
				t.Error("async = true")
			}
		}},
		{name: "an unknown flag is refused", args: []string{"-connz", "3"}, wantErr: "connz"},
		{name: "a non-number is refused", args: []string{"-count", "many"}, wantErr: "count"},
		{name: "a positional argument is refused", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
		{name: "a positional argument before flags is refused", args: []string{"-count", "3", "extra", "-conns", "1"}, wantErr: `unexpected argument "extra"`},
		{name: "an unknown role is refused", args: []string{"-internal-role", "proxy"}, wantErr: `"proxy"`},
		{name: "a client without an address is refused", args: []string{"-internal-role", "client"}, wantErr: "needs -internal-addr"},
		{name: "a client with 0 connections is refused", args: []string{"-internal-role", "client", "-internal-addr", "127.0.0.1:1", "-internal-conns", "0"}, wantErr: "-internal-conns 0"},
		{name: "a client gets its settings", args: []string{"-internal-role", "client", "-internal-addr", "127.0.0.1:1", "-internal-conns", "4", "-bytes", "4096", "-internal-wrap"}, check: func(t *testing.T, c config) {
			if c.role != "client" || c.addr != "127.0.0.1:1" || c.roleConns != 4 || c.total != 4096 || !c.wrap {
				t.Errorf("client config = %+v", c)
			}
		}},
		{name: "a child's byte count ignores the parent's -conns default", args: []string{"-internal-role", "client", "-internal-addr", "127.0.0.1:1", "-internal-conns", "1", "-bytes", "10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, ok := benchtest.Flags(t, parseFlags, tt.args, tt.wantErr); ok && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// Issue 8, section 4: every bad flag gives a short message and exit status
// 2, before anything runs (each of these used to start the matrix or print
// NaN).
func TestBadFlagsExitWithStatus2AndAMessage(t *testing.T) {
	for _, args := range [][]string{
		{"-count", "0"}, {"-gso", "maybe"}, {"stray"}, {"-depth", "-1"}, {"-qbytes", "-1"},
		{"-bytes", "lots"}, {"-conns", "0"}, {"-nope"}, {"-async=perhaps"}, {"-internal-role", "x"},
		{"-gro", "maybe"}, {"-gro", ""}, {"-wrap", "nobody"}, {"-internal-corrupt", "-5"},
	} {
		var stdout, stderr bytes.Buffer
		if code := quicbench(args, &stdout, &stderr); code != 2 {
			t.Errorf("quicbench(%q) exit status = %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("quicbench(%q) wrote to stdout: %q", args, stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "quicbench: ") || strings.Count(msg, "\n") > 3 {
			t.Errorf("quicbench(%q) stderr = %q, want a short quicbench: message", args, msg)
		}
	}
}

func TestHelpExitsWith0(t *testing.T) {
	var stderr bytes.Buffer
	if code := quicbench([]string{"-h"}, io.Discard, &stderr); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	if help := stderr.String(); !strings.Contains(help, "-conns") || strings.Contains(help, "internal-") {
		t.Errorf("help does not list the public flags alone: %q", help)
	}
	if _, err := parseFlags([]string{"-help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: err = %v, want flag.ErrHelp", err)
	}
}
