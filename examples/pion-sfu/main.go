package main

import (
	"io"
	"os"

	"github.com/batchconn/batchconn/internal/bench"
)

const usage = `usage: pion-sfu serve [flags]   run the SFU on a chosen socket
       pion-sfu load [flags]    publishers and subscribers against a running SFU
       pion-sfu bench [flags]   measure the SFU on every socket

Run 'pion-sfu COMMAND -h' for a command's flags.
`

// run runs the command and returns its exit status: 0 on success, 2 for
// a bad command line, 1 when serving, loading or measuring fails.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return bench.RunCommand("pion-sfu", usage, []bench.Command{
		{Name: "serve", Run: func(args []string) error { return serve(args, stdin, stdout, stderr) }},
		{Name: "load", Run: func(args []string) error { return loadCmd(args, stdout, stderr) }},
		{Name: "bench", Run: func(args []string) error { return runBench(args, stdout, stderr) }},
	}, args, stderr)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
