package main

import (
	"errors"
	"flag"
	"fmt"
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
	var err error
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		err = serve(args[1:], stdin, stdout, stderr)
	case "bench":
		err = runBench(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		err = flag.ErrHelp
	case "":
		err = bench.Usagef("no command given: want serve or bench")
	default:
		err = bench.Usagef("unknown command %q: want serve or bench", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	help := "miekg-dns"
	if cmd == "serve" || cmd == "bench" {
		help += " " + cmd
	}
	return bench.Exit(err, stderr, "miekg-dns", help)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
