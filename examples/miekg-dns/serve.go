package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/batchconn/batchconn/internal/bench"
)

// serveConfig is what serve's flags ask for.
type serveConfig struct {
	socket, network, addr string
	queue                 int
	control               bool
}

func parseServeFlags(args []string, stderr io.Writer) (serveConfig, error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.socket, "socket", "conn", "the `socket` to serve on:"+sockets.Help())
	fs.StringVar(&cfg.network, "net", "udp4", "the network: udp4, udp6 or udp (both)")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:5353", "the address to listen on; 0.0.0.0:5353 (or [::]:5353) for every local address")
	queue := fs.String("queue", "1MiB", "the write queue's size for -socket conn-queue (suffixes KiB, MiB, GiB)")
	fs.BoolVar(&cfg.control, bench.ControlFlag, false, "")
	if err := bench.Parse(fs, args, stderr, "usage: miekg-dns serve [flags]\n\n"+
		"Serves the zone "+origin+" (an SOA, an NS and host-0 to host-999 A records) with\n"+
		"miekg/dns on the socket -socket names, until interrupted.\n\n"); err != nil {
		return cfg, err
	}
	if err := sockets.Check("-socket", cfg.socket); err != nil {
		return cfg, err
	}
	switch cfg.network {
	case "udp4", "udp6", "udp":
	default:
		return cfg, bench.Usagef("-net %q: want udp4, udp6 or udp", cfg.network)
	}
	var err error
	cfg.queue, err = bench.ParseQueue("-queue", *queue)
	return cfg, err
}

// serve runs the server until SIGINT, SIGTERM or SIGHUP (or, with
// -internal-control, until stdin closes), or until it fails.
func serve(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	pc, err := listen(cfg.socket, cfg.network, cfg.addr, cfg.queue)
	if err != nil {
		return fmt.Errorf("-addr %s: %w", cfg.addr, err)
	}
	stop, ended, err := start(pc)
	if err != nil {
		return err
	}
	if !cfg.control {
		fmt.Fprintf(stdout, "serving %s on %s (%s), until interrupted\n", origin, pc.LocalAddr(), cfg.socket)
		ctx, stopSignals := bench.SignalContext(context.Background())
		defer stopSignals()
		select {
		case <-ctx.Done():
		case <-ended:
		}
		return stop()
	}
	if err := bench.ServeControl(stdin, stdout, "addr", pc.LocalAddr().String()); err != nil {
		stop()
		return err
	}
	return stop()
}
