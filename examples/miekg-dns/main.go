package main

import (
	"io"
	"os"

	"github.com/batchconn/batchconn/internal/bench"
)

const usage = `usage: miekg-dns serve [flags]   serve the zone example.test. on a chosen socket
       miekg-dns bench [flags]   measure the server on every socket under dnsperf

Run 'miekg-dns serve -h' or 'miekg-dns bench -h' for the flags.
`

// run runs the command and returns its exit status: 0 on success, 2 for
// a bad command line, 1 when serving or measuring fails.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return bench.RunCommand("miekg-dns", usage, []bench.Command{
		{Name: "serve", Run: func(args []string) error { return serve(args, stdin, stdout, stderr) }},
		{Name: "bench", Run: func(args []string) error { return runBench(args, stdout, stderr) }},
	}, args, stderr)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
