package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

type serveConfig struct {
	socket, addr, http string
	queue              int
	control            bool
}

func parseServeFlags(args []string, stderr io.Writer) (serveConfig, error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.socket, "socket", "conn-queue", "the `socket` of the SFU's one UDP port:"+sockets.Help())
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:50000", "the UDP address every PeerConnection uses (IPv4)")
	fs.StringVar(&cfg.http, "http", "127.0.0.1:8080", "the HTTP address of the signalling")
	queue := fs.String("queue", "1MiB", "the write queue's size for the conn-queue sockets (suffixes KiB, MiB, GiB)")
	fs.BoolVar(&cfg.control, bench.ControlFlag, false, "")
	if err := bench.Parse(fs, args, stderr, "usage: pion-sfu serve [flags]\n\n"+
		"Runs a pion/webrtc SFU on one UDP port (webrtc.NewICEUDPMux) over the socket -socket\n"+
		"names, with HTTP signalling, until interrupted.\n\n"); err != nil {
		return cfg, err
	}
	if err := sockets.Check("-socket", cfg.socket); err != nil {
		return cfg, err
	}
	var err error
	cfg.queue, err = bench.ParseQueue("-queue", *queue)
	return cfg, err
}

// serve runs the SFU until SIGINT, SIGTERM or SIGHUP (with
// -internal-control: until stdin closes).
func serve(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	conn, err := listen(cfg.socket, cfg.addr, cfg.queue)
	if err != nil {
		return fmt.Errorf("-addr %s: %w", cfg.addr, err)
	}
	ln, err := net.Listen("tcp", cfg.http)
	if err != nil {
		conn.Close()
		return fmt.Errorf("-http %s: %w", cfg.http, err)
	}
	s := newSFU(conn)
	defer s.Close()
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var ctlErr error
	if cfg.control {
		ctlErr = bench.ServeControl(stdin, stdout, "http", ln.Addr().String())
	} else {
		fmt.Fprintf(stdout, "SFU on udp %s (%s), signalling on http://%s, until interrupted\n", conn.LocalAddr(), cfg.socket, ln.Addr())
		ctx, stopSignals := bench.SignalContext(context.Background())
		defer stopSignals()
		select {
		case <-ctx.Done():
		case err := <-served:
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctlErr
}
