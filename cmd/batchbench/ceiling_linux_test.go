package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestCeilingProgram builds ceiling/recvmmsg.c, the C drain the docs check
// raw-recvmmsg and batchconn-read against, runs a short drain, and checks
// that it reports one, and that it refuses bad arguments with status 2.
func TestCeilingProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the C drain fills a socket past net.core.rmem_max with SO_RCVBUFFORCE")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc to build ceiling/recvmmsg.c")
	}
	bin := filepath.Join(t.TempDir(), "recvmmsg")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-o", bin, "ceiling/recvmmsg.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "3", "2000").CombinedOutput()
	if err != nil {
		t.Fatalf("recvmmsg 3 2000: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^recvmmsg drain, C: 3 rounds of 2000 datagrams of 1400 bytes, 64 per call: median [1-9][0-9]* ns CPU/datagram`).Match(out) {
		t.Errorf("unexpected report: %s", out)
	}
	for _, args := range [][]string{{"0"}, {"3", "10"}, {"3", "2000", "0"}, {"3", "2000", "5000"}, {"x"}} {
		err := exec.Command(bin, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("recvmmsg %v: %v, want exit status 2", args, err)
		}
	}
}

// TestSendCeilingProgram builds ceiling/sendmmsg.c, the C send loops the docs
// check raw-sendmmsg and raw-gso against, runs two short rounds, and checks
// that it reports both ways, GSO in 2 messages per call for 1200-byte
// datagrams (54 per message, as raw-gso sends them), and that it refuses bad
// arguments with status 2.
func TestSendCeilingProgram(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc to build ceiling/sendmmsg.c")
	}
	bin := filepath.Join(t.TempDir(), "sendmmsg")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-pthread", "-o", bin, "ceiling/sendmmsg.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "2", "20").CombinedOutput()
	if err != nil {
		t.Fatalf("sendmmsg 2 20: %v\n%s", err, out)
	}
	want := regexp.MustCompile(`^sendmmsg ceiling, C: 2 rounds of 20 ms per way, batches of 64 datagrams of 1200 bytes over loopback:
  sendmmsg median [1-9][0-9]* ns CPU/datagram \([0-9]+-[0-9]+\), [1-9][0-9]*k datagrams/s, 64 message\(s\) per sendmmsg
  gso      median [1-9][0-9]* ns CPU/datagram \([0-9]+-[0-9]+\), [1-9][0-9]*k datagrams/s, 2 message\(s\) per sendmmsg
$`)
	if !want.Match(out) {
		t.Errorf("unexpected report:\n%s", out)
	}
	for _, args := range [][]string{{"0"}, {"x"}, {"3", "0"}, {"3", "10", "0"}, {"3", "10", "70000"}, {"3", "10", "1200", "extra"}} {
		err := exec.Command(bin, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("sendmmsg %v: %v, want exit status 2", args, err)
		}
	}
}
