package main

import (
	"flag"
	"fmt"
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
	var err error
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		err = serve(args[1:], stdin, stdout, stderr)
	case "load":
		err = loadCmd(args[1:], stdout, stderr)
	case "bench":
		err = runBench(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		err = flag.ErrHelp
	case "":
		err = bench.Usagef("no command given: want serve, load or bench")
	default:
		err = bench.Usagef("unknown command %q: want serve, load or bench", cmd)
	}
	help := "pion-sfu"
	switch cmd {
	case "serve", "load", "bench":
		help += " " + cmd
	}
	return bench.Exit(err, stderr, "pion-sfu", help)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
