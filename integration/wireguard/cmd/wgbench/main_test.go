package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/batchconn/batchconn/internal/bench/benchtest"
)

// TestMain lets the test binary stand in for wgbench's child processes:
// runBench re-executes os.Executable, which under go test is this binary
// (ip netns exec keeps the environment).
func TestMain(m *testing.M) {
	if os.Getenv(envTestChild) == "1" {
		os.Exit(wgbench(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const envTestChild = "WGBENCH_TEST_CHILD"

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c config)
	}{
		{name: "no flags give the documented defaults", args: nil, check: func(t *testing.T, c config) {
			if c.total != 256<<20 || c.count != 5 || !slices.Equal(c.modes, []string{"std", "batch", "mixed"}) || !slices.Equal(c.dirs, []string{"a2b", "b2a"}) {
				t.Errorf("defaults = bytes %d count %d modes %v dirs %v", c.total, c.count, c.modes, c.dirs)
			}
			if c.mtu != 1500 || !c.gro || !c.gso || c.json || c.verbose || c.role != "" || c.corrupt != -1 {
				t.Errorf("defaults = mtu %d gro %v gso %v json %v v %v role %q corrupt %d", c.mtu, c.gro, c.gso, c.json, c.verbose, c.role, c.corrupt)
			}
		}},
		{name: "bytes take binary suffixes", args: []string{"-bytes", "3KiB"}, check: func(t *testing.T, c config) {
			if c.total != 3<<10 || c.bytesArg != "3KiB" {
				t.Errorf("bytes = %d (%q), want 3072", c.total, c.bytesArg)
			}
		}},
		{name: "bytes without a suffix are bytes", args: []string{"-bytes", "1000"}, check: func(t *testing.T, c config) {
			if c.total != 1000 {
				t.Errorf("bytes = %d, want 1000", c.total)
			}
		}},
		{name: "bytes 0 is refused", args: []string{"-bytes", "0"}, wantErr: `-bytes "0"`},
		{name: "negative bytes are refused", args: []string{"-bytes", "-1MiB"}, wantErr: `-bytes "-1MiB"`},
		{name: "bytes without a number are refused", args: []string{"-bytes", "MiB"}, wantErr: `-bytes "MiB"`},
		{name: "an unknown bytes suffix is refused", args: []string{"-bytes", "1GB"}, wantErr: `-bytes "1GB"`},
		{name: "bytes that overflow are refused", args: []string{"-bytes", "9000000000000GiB"}, wantErr: "too large"},
		{name: "count 0 is refused", args: []string{"-count", "0"}, wantErr: "-count 0"},
		{name: "negative count is refused", args: []string{"-count", "-3"}, wantErr: "-count -3"},
		{name: "count over 1000 is refused", args: []string{"-count", "1001"}, wantErr: "-count 1001"},
		{name: "a count that is no number is refused", args: []string{"-count", "many"}, wantErr: "count"},
		{name: "an unknown mode is refused", args: []string{"-modes", "std,fast"}, wantErr: `"fast" is not one of std, batch, mixed`},
		{name: "an empty modes list is refused", args: []string{"-modes", ""}, wantErr: `"" is not one of std, batch, mixed`},
		{name: "a mode listed twice is refused", args: []string{"-modes", "std,batch,std"}, wantErr: "std listed twice"},
		{name: "modes without std are refused", args: []string{"-modes", "batch,mixed"}, wantErr: "std must be among them"},
		{name: "modes keep their order", args: []string{"-modes", "batch, std"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.modes, []string{"batch", "std"}) {
				t.Errorf("modes = %v", c.modes)
			}
		}},
		{name: "an unknown direction is refused", args: []string{"-dir", "a2c"}, wantErr: `-dir "a2c": "a2c" is not one of a2b, b2a`},
		{name: "a direction in capitals is refused", args: []string{"-dir", "A2B"}, wantErr: `"A2B" is not one of a2b, b2a`},
		{name: "an empty direction entry is refused", args: []string{"-dir", "a2b,"}, wantErr: `"" is not one of a2b, b2a`},
		{name: "a direction listed twice is refused", args: []string{"-dir", "b2a,b2a"}, wantErr: "b2a listed twice"},
		{name: "one direction is accepted", args: []string{"-dir", "b2a"}, check: func(t *testing.T, c config) {
			if !slices.Equal(c.dirs, []string{"b2a"}) {
				t.Errorf("dirs = %v", c.dirs)
			}
		}},
		{name: "an MTU below 1360 is refused", args: []string{"-mtu", "1359"}, wantErr: "-mtu 1359: must be between 1360 and 9000"},
		{name: "an MTU over 9000 is refused", args: []string{"-mtu", "9001"}, wantErr: "-mtu 9001"},
		{name: "a negative MTU is refused", args: []string{"-mtu", "-1500"}, wantErr: "-mtu -1500"},
		{name: "an MTU that is no number is refused", args: []string{"-mtu", "jumbo"}, wantErr: "mtu"},
		{name: "a jumbo MTU is accepted", args: []string{"-mtu", "9000"}, check: func(t *testing.T, c config) {
			if c.mtu != 9000 {
				t.Errorf("mtu = %d", c.mtu)
			}
		}},
		{name: "gro maybe is refused", args: []string{"-gro", "maybe"}, wantErr: `-gro "maybe": want on or off`},
		{name: "an empty gro is refused", args: []string{"-gro", ""}, wantErr: `-gro "": want on or off`},
		{name: "gso ON is refused", args: []string{"-gso", "ON"}, wantErr: `-gso "ON": want on or off`},
		{name: "gro and gso off are accepted", args: []string{"-gro", "off", "-gso", "off"}, check: func(t *testing.T, c config) {
			if c.gro || c.gso {
				t.Errorf("gro %v gso %v, want both off", c.gro, c.gso)
			}
		}},
		{name: "json that is no boolean is refused", args: []string{"-json=yes"}, wantErr: "json"},
		{name: "json and v are accepted", args: []string{"-json", "-v"}, check: func(t *testing.T, c config) {
			if !c.json || !c.verbose {
				t.Errorf("json %v v %v", c.json, c.verbose)
			}
		}},
		{name: "an unknown flag is refused", args: []string{"-rounds", "3"}, wantErr: "rounds"},
		{name: "a positional argument is refused", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
		{name: "a positional argument between flags is refused", args: []string{"-count", "3", "extra", "-mtu", "1500"}, wantErr: `unexpected argument "extra"`},
		{name: "an unknown role is refused", args: []string{"-internal-role", "proxy"}, wantErr: `"proxy": want wg, send or recv`},
		{name: "a sender without an address is refused", args: []string{"-internal-role", "send"}, wantErr: "send needs -internal-addr"},
		{name: "a receiver without an address is refused", args: []string{"-internal-role", "recv"}, wantErr: "recv needs -internal-addr"},
		{name: "a corrupt offset below -1 is refused", args: []string{"-internal-corrupt", "-2"}, wantErr: "-internal-corrupt -2"},
		{name: "a corrupt offset past the bytes is refused", args: []string{"-bytes", "1KiB", "-internal-corrupt", "1024"}, wantErr: "-internal-corrupt 1024"},
		{name: "a corrupt offset that is no number is refused", args: []string{"-internal-corrupt", "x"}, wantErr: "internal-corrupt"},
		{name: "a sender gets its settings", args: []string{"-internal-role", "send", "-internal-addr", "198.19.250.2:5201", "-bytes", "4096", "-internal-corrupt", "17"}, check: func(t *testing.T, c config) {
			if c.role != "send" || c.addr != "198.19.250.2:5201" || c.total != 4096 || c.corrupt != 17 {
				t.Errorf("sender config = %+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, ok := benchtest.Flags(t, parseFlags, tt.args, tt.wantErr); ok && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// Every bad flag gives a short message and exit status 2 before anything
// runs (as a non-root user too: the flags are checked before root is).
func TestBadFlagsExitWithStatus2AndAMessage(t *testing.T) {
	for _, args := range [][]string{
		{"-count", "0"}, {"-modes", "fast"}, {"-modes", "batch"}, {"-dir", "up"}, {"-mtu", "100"},
		{"-gro", "maybe"}, {"-gso", "1"}, {"-bytes", "lots"}, {"-json=perhaps"}, {"stray"}, {"-nope"},
		{"-internal-role", "x"}, {"-internal-corrupt", "-5"},
	} {
		var stdout, stderr bytes.Buffer
		if code := wgbench(args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("wgbench(%q) exit status = %d, want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("wgbench(%q) wrote to stdout: %q", args, stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "wgbench: ") || strings.Count(msg, "\n") > 3 {
			t.Errorf("wgbench(%q) stderr = %q, want a short wgbench: message", args, msg)
		}
	}
}

func TestHelpExitsWith0AndListsThePublicFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := wgbench([]string{"-h"}, nil, io.Discard, &stderr); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	help := stderr.String()
	for _, f := range []string{"-bytes", "-count", "-modes", "-dir", "-mtu", "-gro", "-gso", "-json", "-v", "Needs root"} {
		if !strings.Contains(help, f) {
			t.Errorf("help does not mention %s:\n%s", f, help)
		}
	}
	if strings.Contains(help, "internal-") {
		t.Errorf("help lists a hidden flag:\n%s", help)
	}
	if _, err := parseFlags([]string{"-help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: err = %v, want flag.ErrHelp", err)
	}
}

// A user without root is told that wgbench needs it, and nothing starts.
// As root the test pretends to be uid 65534; as a non-root user it is one.
func TestWithoutRootItSaysSoAndExitsNonZero(t *testing.T) {
	if os.Geteuid() == 0 {
		old := geteuid
		geteuid = func() int { return 65534 }
		t.Cleanup(func() { geteuid = old })
	}
	var stdout, stderr bytes.Buffer
	code := wgbench([]string{"-count", "1", "-bytes", "1MiB"}, nil, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit status = %d, want 1", code)
	}
	if msg := stderr.String(); !strings.Contains(msg, "wgbench: wgbench needs root") {
		t.Errorf("stderr = %q, want it to say wgbench needs root", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("wrote to stdout: %q", stdout.String())
	}
}

// A wireguard-go child process refuses a configuration that is no JSON,
// or none at all, before it opens anything.
func TestAWireGuardProcessRefusesABadConfiguration(t *testing.T) {
	for _, in := range []string{"", "private_key=abc\n", `{"Bind": 3}` + "\n"} {
		var stdout, stderr bytes.Buffer
		code := wgbench([]string{"-internal-role=wg"}, strings.NewReader(in), &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "configuration") {
			t.Errorf("stdin %q: exit status %d, stderr %q; want 1 and a message about the configuration", in, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("stdin %q: said %q, want nothing (no READY)", in, stdout.String())
		}
	}
}

func TestNewBindRefusesAnUnknownName(t *testing.T) {
	if _, err := newBind("kernel", true, true); err == nil || !strings.Contains(err.Error(), `unknown bind "kernel"`) {
		t.Errorf("newBind(kernel) error = %v", err)
	}
}
