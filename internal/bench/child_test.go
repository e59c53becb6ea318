//go:build unix

package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// envChild makes the test binary, re-executed by the tests below, the
// child they start: "control" serves the control lines, "deaf" ignores
// its stdin and never exits by itself.
const envChild = "BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "control":
		if ServeControl(os.Stdin, os.Stdout, "addr", "127.0.0.1:9") != nil {
			os.Exit(3)
		}
		os.Exit(0)
	case "deaf":
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild starts the test binary as a child of the kind envChild names.
func startChild(t *testing.T, kind string) *Child {
	t.Helper()
	t.Setenv(envChild, kind)
	c, err := StartChild("server (test)", os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChildAsksItsServer(t *testing.T) {
	c := startChild(t, "control")
	if addr, err := c.Reply("addr"); err != nil || addr != "127.0.0.1:9" {
		t.Fatalf("Reply(addr) = %q, %v; want the child's address", addr, err)
	}
	cpu0, err := c.CPU()
	if err != nil {
		t.Fatal(err)
	}
	cpu1, err := c.CPU()
	if err != nil || cpu0 <= 0 || cpu1 < cpu0 {
		t.Errorf("CPU() = %v then %v, %v; want a positive time that does not go back", cpu0, cpu1, err)
	}
	if err := c.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestChildSaysWhatWentWrong(t *testing.T) {
	c := startChild(t, "control")
	if _, err := c.Reply("http"); err == nil || !strings.Contains(err.Error(), `server (test): "addr 127.0.0.1:9", want a "http" line`) {
		t.Errorf("a reply of another word: %v", err)
	}
	// The child refuses a question it does not know, and exits 3.
	if _, err := c.Ask("stats"); err == nil || !strings.Contains(err.Error(), `server (test) ended without a "stats" line`) {
		t.Errorf("a question the child does not answer: %v", err)
	}
	if err := c.Stop(10 * time.Second); err == nil || err.Error() != "server (test): exit status 3" {
		t.Errorf("Stop of a child that failed: %v", err)
	}

	c = startChild(t, "deaf")
	start := time.Now()
	err := c.Stop(100 * time.Millisecond)
	if err == nil || err.Error() != "server (test) did not stop within 100ms of its stdin closing; killed" {
		t.Errorf("Stop of a child that does not stop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v to kill a child that does not stop", d)
	}
}

func TestStartServer(t *testing.T) {
	t.Setenv(envChild, "control")
	c, addr, err := StartServer("server (test)", "addr", os.Args[0])
	if err != nil || addr != "127.0.0.1:9" {
		t.Fatalf("StartServer = %q, %v; want the child's address", addr, err)
	}
	if err := c.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	c, _, err = StartServer("server (test)", "http", os.Args[0])
	if c != nil || err == nil || !strings.Contains(err.Error(), `want a "http" line`) {
		t.Errorf("StartServer of a child that says another word = %v, %v", c, err)
	}
}

func TestServeControl(t *testing.T) {
	var out bytes.Buffer
	if err := ServeControl(strings.NewReader("cpu\ncpu\n"), &out, "http", "127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "http 127.0.0.1:8080" || !strings.HasPrefix(lines[1], "cpu ") || !strings.HasPrefix(lines[2], "cpu ") {
		t.Errorf("wrote %q, want the address and two CPU times", out.String())
	}
	out.Reset()
	err := ServeControl(strings.NewReader("cpu\nstats\ncpu\n"), &out, "addr", "x")
	if err == nil || err.Error() != `control: unknown command "stats"` || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("a line it does not know: %v, wrote %q", err, out.String())
	}
}
