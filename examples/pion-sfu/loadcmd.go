package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
)

// Limits the load's flags are checked against.
const (
	maxPeers   = 1000
	maxRate    = 100_000
	maxSeconds = 3600
	maxSize    = 1400 // an RTP packet of 1400 B + 12 B header + SRTP tag fits a 1500-byte MTU
)

type loadFlags struct {
	loadConfig
	json bool
}

// parseLoadFlags parses and checks load's command line.
func parseLoadFlags(args []string, stderr io.Writer) (loadFlags, error) {
	var cfg loadFlags
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.server, "server", "http://127.0.0.1:8080", "the SFU's signalling URL")
	fs.IntVar(&cfg.publishers, "publishers", 1, "publishers, each sending one video track")
	fs.IntVar(&cfg.subscribers, "subscribers", 10, "subscribers, each receiving every publisher's track")
	fs.IntVar(&cfg.rate, "rate", 300, "RTP packets per second per publisher, sent in 30 frames per second")
	seconds := fs.Float64("seconds", 5, "seconds of sending measured")
	fs.IntVar(&cfg.size, "size", 1200, "RTP payload bytes per packet")
	fs.BoolVar(&cfg.json, "json", false, "print the result as JSON")
	if err := bench.Parse(fs, args, stderr, "usage: pion-sfu load [flags]\n\n"+
		"Connects publishers and subscribers (pion PeerConnections on loopback) to an SFU\n"+
		"(pion-sfu serve), sends for -seconds, checks every packet every subscriber gets\n"+
		"(its RTP sequence number and payload) and reports loss, reordering and the SFU's\n"+
		"CPU time per forwarded packet.\n\n"); err != nil {
		return cfg, err
	}
	u, err := url.Parse(cfg.server)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return cfg, bench.Usagef("-server %q: want an http:// URL", cfg.server)
	case cfg.publishers < 1 || cfg.publishers > maxPeers:
		return cfg, bench.Usagef("-publishers %d: must be between 1 and %d", cfg.publishers, maxPeers)
	case cfg.subscribers < 1 || cfg.subscribers > maxPeers:
		return cfg, bench.Usagef("-subscribers %d: must be between 1 and %d", cfg.subscribers, maxPeers)
	case cfg.rate < fps || cfg.rate > maxRate:
		return cfg, bench.Usagef("-rate %d: must be between %d (a packet per frame) and %d", cfg.rate, fps, maxRate)
	case !(*seconds >= 0.1 && *seconds <= maxSeconds):
		return cfg, bench.Usagef("-seconds %v: must be between 0.1 and %d", *seconds, maxSeconds)
	case cfg.size < minSize || cfg.size > maxSize:
		return cfg, bench.Usagef("-size %d: must be between %d and %d", cfg.size, minSize, maxSize)
	}
	cfg.duration = time.Duration(*seconds * float64(time.Second))
	return cfg, nil
}

func loadCmd(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseLoadFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	r, err := runLoad(ctx, cfg.loadConfig)
	if err != nil {
		return err
	}
	if cfg.json {
		return json.NewEncoder(stdout).Encode(r)
	}
	_, err = fmt.Fprintln(stdout, r)
	return err
}
