// Command wgbench measures what wgbatch's Bind changes for wireguard-go:
// bulk TCP through a WireGuard tunnel between two network namespaces, with
// wireguard-go's own [conn.NewStdNetBind] against [wgbatch.NewBind].
//
// It makes two network namespaces, A and B, joined by a veth pair, and for
// each run starts one wireguard-go process in each (this program,
// re-executed inside `ip netns exec`), each on a kernel TUN and configured
// through the UAPI (device.IpcSet) with keys made for the run. A TCP sender
// in one namespace then moves -bytes to a TCP receiver in the other, through
// the tunnel; the receiver's CRC-32C of the stream must equal the sender's,
// and a run with a wrong, missing or extra byte fails the command.
//
// Runs alternate between the modes: std (StdNetBind in both processes),
// batch (wgbatch in both) and mixed (StdNetBind in A, wgbatch in B, so A->B
// is a StdNetBind sender talking to a wgbatch receiver and B->A the other
// way round). Every round runs each mode once per direction, back to back,
// each round starting one mode further along (internal/bench runs the
// rounds); the table shows medians over the
// rounds, and each ratio is the median of the same-round ratios against
// std, so a busy moment of the machine affects both sides of a ratio.
//
//	wgbench                                    # 256MiB, 5 rounds, every mode, both directions
//	wgbench -count 9 -bytes 1GiB -modes std,batch -dir a2b
//	wgbench -mtu 9000 -gso off                 # jumbo veth; wgbatch without UDP GSO
//
// CPU is counted per wireguard-go process, user + system time from
// getrusage(RUSAGE_SELF) taken by the process itself just before the
// transfer starts and just after it ends, so setup and handshake are left
// out. The TCP sender and receiver are separate processes, so their CPU
// (the application's own reads and writes) is not in the wireguard-go
// figures; the table shows it apart. What the kernel does for the tunnel's
// TCP on the wireguard-go processes' behalf (a TUN write delivers the
// packet to the receiving TCP socket in the writer's context) is in their
// figures, in every mode alike. End-to-end is the sum of the two
// wireguard-go processes.
//
// Both binds get the same TUN: wireguard-go's tun.CreateTUN with
// IFF_VNET_HDR and TUN_F_CSUM|TSO4|TSO6 (and USO4|USO6 where the kernel has
// them), so the TCP stack hands wireguard-go segments of up to 64 KiB, which
// it splits into tunnel packets, and coalesces received ones (its own GRO)
// before writing them to the TUN. The veth pair keeps the kernel's defaults
// (the header line shows its offloads when ethtool is installed): a UDP GSO
// datagram crosses it whole and reaches a socket with UDP_GRO as one. The
// veth has MTU -mtu; the tunnel -mtu - 80, as wg-quick sets it.
//
// wgbench needs root (network namespaces, a veth pair, TUN devices) and
// /dev/net/tun. Every namespace it makes is named wgbench-<pid>-1-a or -b and
// is deleted when it ends, also on failure or SIGINT, SIGTERM or SIGHUP;
// a later run deletes those of a wgbench that was killed.
//
// With WGBENCH_CPUPROFILE=dir in the environment, every wireguard-go
// process writes its CPU profile into dir, for go tool pprof.
//
// Exit status: 0 on success (targets missed included: it measures), 2 for
// bad flags, 1 when the measurement fails or cannot start.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/batchconn/batchconn/internal/bench"
)

// Hidden flags, used when the program re-executes itself.
const (
	roleFlag    = "internal-role"    // wg, send or recv
	addrFlag    = "internal-addr"    // the TCP receiver's address
	corruptFlag = "internal-corrupt" // the sender flips the byte at this offset, to prove the check catches it
)

// Limits the flags are checked against.
const (
	maxCount = 1000
	// The veth MTU: the tunnel's is 80 less (IPv6 outer header 40, UDP 8,
	// WireGuard 32), and the tunnel carries IPv6 down to 1280; 9000 is the
	// usual jumbo frame.
	minMTU, maxMTU = 1280 + 80, 9000
)

// config is what the flags ask for.
type config struct {
	bytesArg string // -bytes as given, for the table's title
	total    int64  // bytes moved per run
	count    int    // rounds
	modes    []string
	dirs     []string
	mtu      int // of the veth
	gro, gso bool
	json     bool
	verbose  bool

	// The child processes' hidden flags.
	role    string // "", "wg", "send" or "recv"
	addr    string // the receiver's address, for send and recv
	corrupt int64  // the sender flips the byte at this offset; -1: none
}

// parseFlags parses and checks the command line. Problems are *usageError
// values; -h and -help return flag.ErrHelp after printing the usage to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("wgbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.bytesArg, "bytes", "256MiB", "bytes of TCP moved per run (suffixes KiB, MiB, GiB)")
	fs.IntVar(&cfg.count, "count", 5, "rounds; each runs every mode once per direction, and the table shows medians")
	modes := fs.String("modes", "std,batch,mixed", "comma-separated modes: std (StdNetBind on both ends), batch (wgbatch on both), mixed (StdNetBind in A, wgbatch in B); std must be among them")
	dirs := fs.String("dir", "a2b,b2a", "comma-separated directions of the TCP transfer: a2b, b2a")
	fs.IntVar(&cfg.mtu, "mtu", 1500, fmt.Sprintf("MTU of the veth link, %d to %d; the tunnel's is 80 less", minMTU, maxMTU))
	gro := fs.String("gro", "on", "wgbatch's UDP GRO (WithGRO): on or off")
	gso := fs.String("gso", "on", "wgbatch's UDP GSO (WithGSO): on or off")
	fs.BoolVar(&cfg.json, "json", false, "print every run and the summary as JSON instead of the table")
	fs.BoolVar(&cfg.verbose, "v", false, "print every run as it ends (to stderr with -json)")
	fs.StringVar(&cfg.role, roleFlag, "", "")
	fs.StringVar(&cfg.addr, addrFlag, "", "")
	fs.Int64Var(&cfg.corrupt, corruptFlag, -1, "")
	if err := bench.Parse(fs, args, stderr, "usage: wgbench [flags]\n\n"+
		"Measures wireguard-go with StdNetBind against wgbatch's Bind: TCP through a tunnel\n"+
		"on kernel TUNs between two network namespaces joined by a veth pair. Needs root.\n\n"); err != nil {
		return cfg, err
	}

	var err error
	if cfg.total, err = bench.ParseBytes("-bytes", cfg.bytesArg); err != nil {
		return cfg, err
	}
	switch {
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, bench.Usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case cfg.mtu < minMTU || cfg.mtu > maxMTU:
		return cfg, bench.Usagef("-mtu %d: must be between %d and %d", cfg.mtu, minMTU, maxMTU)
	}
	if cfg.modes, err = bench.ParseList("-modes", *modes, "std", "batch", "mixed"); err != nil {
		return cfg, err
	}
	if !slices.Contains(cfg.modes, "std") {
		return cfg, bench.Usagef("-modes %q: std must be among them, the ratios are against it", *modes)
	}
	if cfg.dirs, err = bench.ParseList("-dir", *dirs, "a2b", "b2a"); err != nil {
		return cfg, err
	}
	if cfg.gro, err = parseOnOff("-gro", *gro); err != nil {
		return cfg, err
	}
	if cfg.gso, err = parseOnOff("-gso", *gso); err != nil {
		return cfg, err
	}
	if cfg.corrupt < -1 || cfg.corrupt >= cfg.total {
		return cfg, bench.Usagef("-%s %d: must be an offset below -bytes, or -1", corruptFlag, cfg.corrupt)
	}
	switch cfg.role {
	case "", "wg":
	case "send", "recv":
		if cfg.addr == "" {
			return cfg, bench.Usagef("-%s %s needs -%s", roleFlag, cfg.role, addrFlag)
		}
	default:
		return cfg, bench.Usagef("-%s %q: want wg, send or recv", roleFlag, cfg.role)
	}
	return cfg, nil
}

func parseOnOff(name, s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, bench.Usagef("%s %q: want on or off", name, s)
}

// wgbench runs the command and returns its exit status: 0 on success, 2
// for bad flags, 1 when the measurement fails.
func wgbench(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err == nil {
		switch cfg.role {
		case "wg":
			err = runWireGuard(stdin, stdout, stderr)
		case "send":
			err = runSender(cfg, stdout)
		case "recv":
			err = runReceiver(cfg, stdout)
		default:
			err = runBench(cfg, stdout, stderr)
		}
	}
	return bench.Exit(err, stderr, "wgbench", "wgbench")
}

func main() {
	os.Exit(wgbench(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
