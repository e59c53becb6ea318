package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// A Child is a server a benchmark runs as a child process in control mode
// (the program's own serve command with a hidden flag, re-executed from
// os.Executable), one per sample, so that its CPU time is its own. The
// child says on stdout where it serves ("addr 127.0.0.1:41234"), answers
// a question a line ("cpu", answered "cpu NANOSECONDS"), and exits when its
// stdin closes. [ServeControl] is the child's side.
type Child struct {
	name  string // in errors: "server (udpconn)"
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// StartChild starts path with args, its stderr this process's; name
// names it in errors.
func StartChild(name, path string, args ...string) (*Child, error) {
	cmd := exec.Command(path, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &Child{name: name, cmd: cmd, stdin: stdin, lines: bufio.NewScanner(out)}, nil
}

// StartServer starts a server as a child (StartChild) and returns it with
// the VALUE of its first line, "word VALUE" (where it serves). If that
// line does not come, the child is stopped.
func StartServer(name, word, path string, args ...string) (*Child, string, error) {
	c, err := StartChild(name, path, args...)
	if err != nil {
		return nil, "", err
	}
	v, err := c.Reply(word)
	if err != nil {
		c.Stop(5 * time.Second)
		return nil, "", err
	}
	return c, v, nil
}

// Reply reads the child's next line, which must be "word VALUE", and
// returns VALUE.
func (c *Child) Reply(word string) (string, error) {
	if !c.lines.Scan() {
		if err := c.lines.Err(); err != nil {
			return "", fmt.Errorf("%s ended without a %q line: %w", c.name, word, err)
		}
		return "", fmt.Errorf("%s ended without a %q line", c.name, word)
	}
	v, ok := strings.CutPrefix(c.lines.Text(), word+" ")
	if !ok {
		return "", fmt.Errorf("%s: %q, want a %q line", c.name, c.lines.Text(), word)
	}
	return v, nil
}

// Ask writes the line word to the child and returns the VALUE of its
// reply, "word VALUE".
func (c *Child) Ask(word string) (string, error) {
	if _, err := io.WriteString(c.stdin, word+"\n"); err != nil {
		return "", err
	}
	return c.Reply(word)
}

// CPU is the child's CPU time so far, as it reads it ([ProcessCPU]).
func (c *Child) CPU() (time.Duration, error) {
	v, err := c.Ask("cpu")
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	return time.Duration(ns), err
}

// Stop closes the child's stdin and waits for it to exit, within wait;
// after that it kills it. A child that exits unsuccessfully, or must be
// killed, is an error.
func (c *Child) Stop(wait time.Duration) error {
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		return nil
	case <-time.After(wait):
		c.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within %v of its stdin closing; killed", c.name, wait)
	}
}

// ControlFlag is the hidden flag (-internal-control) of a server command
// that a benchmark starts as a [Child]: with it, the server talks
// [ServeControl]'s lines on its stdin and stdout.
const ControlFlag = "internal-control"

// ServeControl is a [Child]'s side of the control lines. It writes
// "word value" to stdout (where the child serves), then answers each line
// "cpu" on stdin with "cpu NANOSECONDS" ([ProcessCPU]), until stdin
// closes (nil). Another line is an error, and so is a CPU time it cannot
// read. The caller then shuts its server down.
func ServeControl(stdin io.Reader, stdout io.Writer, word, value string) error {
	fmt.Fprintf(stdout, "%s %s\n", word, value)
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		if in.Text() != "cpu" {
			return fmt.Errorf("control: unknown command %q", in.Text())
		}
		cpu, err := ProcessCPU()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cpu %d\n", cpu.Nanoseconds())
	}
	return nil
}
