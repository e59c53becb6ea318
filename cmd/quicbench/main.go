// Command quicbench measures what quicbatch changes for quic-go over loopback.
//
// Each run starts a server process and a client process (this program,
// re-executed with a hidden flag). The client opens -conns QUIC connections
// to the server over one UDP socket per side; the server sends -bytes in
// total, split evenly across the connections, and the client checks every
// byte against the deterministic payload the server generates (a run with a
// wrong byte fails the command). Runs alternate between plain quic-go on a
// *net.UDPConn and quicbatch (on both sides, or with -wrap on one side
// only): each of -count rounds runs every cell of the matrix, the two modes
// back to back in an order that swaps round by round (internal/bench runs
// the rounds). The table shows medians of the rounds per cell: throughput, CPU
// seconds per GiB moved (user + system, each process's own rusage, and
// their sum), and quicbatch's packets per system call: sent per sendmmsg,
// received per recvmmsg, and per UDP GRO buffer.
//
//	go run ./cmd/quicbench                       # the default matrix
//	go run ./cmd/quicbench -conns 8 -gso off -gro on -count 9 -bytes 1GiB
//	go run ./cmd/quicbench -conns 8 -gso on -wrap client  # a plain server sends to quicbatch
//
// GSO off means QUIC_GO_DISABLE_GSO=true for both processes, which also turns
// off batchconn's own GSO in quicbatch (as a kernel without GSO would). GRO
// off means quicbatch.WithGRO(false) on the wrapped sides; plain quic-go
// never uses GRO.
//
// With QUICBENCH_CPUPROFILE=dir in the environment, every server and client
// process writes its CPU profile into dir, for go tool pprof.
//
// SIGINT, SIGTERM or SIGHUP ends the run: the processes of the run under way
// are killed.
//
// Exit status: 0 on success, 2 for bad flags, 1 when the measurement fails
// or is interrupted.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	quicbatch "github.com/batchconn/batchconn/integration/quic"
	"github.com/batchconn/batchconn/internal/bench"
)

// Hidden flags, used when the program re-executes itself.
const (
	roleFlag    = "internal-role"
	addrFlag    = "internal-addr"
	wrapFlag    = "internal-wrap"
	connsFlag   = "internal-conns"
	corruptFlag = "internal-corrupt" // flips one byte, to prove the check catches it
)

// Limits the flags are checked against.
const (
	maxCount = 1000
	maxConns = 1024
	// maxDepth was quicbatch's limit on its queue's packets, and
	// defaultDepth its default: the queue is bounded by bytes alone since it
	// became batchconn's write queue, so -depth 0 turns it off (as
	// quicbatch's deprecated WithQueueDepth(0) did) and other values do
	// nothing, kept so that scripts that pass -depth keep working.
	maxDepth, defaultDepth = 512, 128
)

// config is what the flags ask for.
type config struct {
	bytesArg string // -bytes as given, for the table's title
	total    int64  // bytes moved per run, over all connections
	count    int    // runs per cell and mode
	conns    []int  // connection counts
	gsos     []string
	gros     []string
	wraps    []string // which sides quicbatch wraps: both, client, server
	depth    int      // -depth: 0 turns the queue off, as -async=false
	qbytes   int      // quicbatch queue bytes
	async    bool
	verbose  bool

	// The child processes' hidden flags.
	role      string // "", "server" or "client"
	addr      string // the server's address, for the client
	wrap      bool
	roleConns int   // connections the client opens
	corrupt   int64 // the server flips the byte at this offset of connection 0's stream; -1: none
}

// parseFlags parses and checks the command line. Problems are *usageError
// values; -h and -help return flag.ErrHelp after printing the usage to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("quicbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.bytesArg, "bytes", "256MiB", "bytes moved per run, over all connections (suffixes KiB, MiB, GiB)")
	fs.IntVar(&cfg.count, "count", 5, "runs per cell and mode; the table shows medians")
	conns := fs.String("conns", "1,8,32", "comma-separated connection counts")
	gsos := fs.String("gso", "on,off", "comma-separated GSO settings (on, off): quic-go's (QUIC_GO_DISABLE_GSO) and quicbatch's")
	gros := fs.String("gro", "on,off", "comma-separated GRO settings (on, off) of the quicbatch sides (WithGRO)")
	wraps := fs.String("wrap", "both", "comma-separated sides quicbatch wraps (both, client, server); the other side is plain quic-go")
	fs.IntVar(&cfg.depth, "depth", defaultDepth, "0 turns quicbatch's queue off (as -async=false); other values (to 512) do nothing, -qbytes bounds the queue")
	fs.IntVar(&cfg.qbytes, "qbytes", quicbatch.DefaultQueueBytes, "quicbatch queue bytes")
	fs.BoolVar(&cfg.async, "async", true, "quicbatch queues short-header packets (WithAsync); false: combining")
	fs.BoolVar(&cfg.verbose, "v", false, "print every run")
	fs.StringVar(&cfg.role, roleFlag, "", "")
	fs.StringVar(&cfg.addr, addrFlag, "", "")
	fs.BoolVar(&cfg.wrap, wrapFlag, false, "")
	fs.IntVar(&cfg.roleConns, connsFlag, 1, "")
	fs.Int64Var(&cfg.corrupt, corruptFlag, -1, "")
	if err := bench.Parse(fs, args, stderr, "usage: quicbench [flags]\n\nMeasures quic-go over a plain *net.UDPConn against quicbatch, over loopback.\n\n"); err != nil {
		return cfg, err
	}

	var err error
	if cfg.total, err = bench.ParseBytes("-bytes", cfg.bytesArg); err != nil {
		return cfg, err
	}
	switch {
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, bench.Usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case cfg.depth < 0 || cfg.depth > maxDepth:
		return cfg, bench.Usagef("-depth %d: must be between 0 (no queue) and %d", cfg.depth, maxDepth)
	case cfg.qbytes < 0:
		return cfg, bench.Usagef("-qbytes %d: must be 0 or more", cfg.qbytes)
	}
	if cfg.conns, err = bench.ParseCounts("-conns", *conns, "connection count", maxConns, false); err != nil {
		return cfg, err
	}
	if cfg.gsos, err = bench.ParseList("-gso", *gsos, "on", "off"); err != nil {
		return cfg, err
	}
	if cfg.gros, err = bench.ParseList("-gro", *gros, "on", "off"); err != nil {
		return cfg, err
	}
	if cfg.wraps, err = bench.ParseList("-wrap", *wraps, "both", "client", "server"); err != nil {
		return cfg, err
	}
	if cfg.corrupt < -1 || cfg.corrupt >= cfg.total {
		return cfg, bench.Usagef("-%s %d: must be an offset below -bytes, or -1", corruptFlag, cfg.corrupt)
	}
	if n := int64(slices.Max(cfg.conns)); cfg.role == "" && cfg.total < n {
		return cfg, bench.Usagef("-bytes %s: less than one byte for each of %d connections", cfg.bytesArg, n)
	}
	switch cfg.role {
	case "", "server":
	case "client":
		if cfg.addr == "" {
			return cfg, bench.Usagef("-%s client needs -%s", roleFlag, addrFlag)
		}
		if cfg.roleConns < 1 || int64(cfg.roleConns) > cfg.total {
			return cfg, bench.Usagef("-%s %d: must be between 1 and -bytes", connsFlag, cfg.roleConns)
		}
	default:
		return cfg, bench.Usagef("-%s %q: want server or client", roleFlag, cfg.role)
	}
	return cfg, nil
}

// quicbench runs the command and returns its exit status: 0 on success, 2
// for bad flags, 1 when the measurement fails.
func quicbench(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err == nil {
		switch cfg.role {
		case "server":
			err = profiled("server", cfg, func() error { return runServer(cfg, stdout) })
		case "client":
			err = profiled("client", cfg, func() error { return runClient(cfg, stdout) })
		default:
			err = runMatrix(cfg, stdout, stderr)
		}
	}
	return bench.Exit(err, stderr, "quicbench", "quicbench")
}

// envProfile names a directory: each child process writes its CPU profile
// there (role-wrap-pid.pprof), for finding where a cell's time goes.
const envProfile = "QUICBENCH_CPUPROFILE"

func profiled(role string, cfg config, run func() error) error {
	stop, err := bench.ChildProfile(envProfile, role+"-"+modeName(cfg.wrap))
	if err != nil {
		return err
	}
	return errors.Join(run(), stop())
}

func main() {
	os.Exit(quicbench(os.Args[1:], os.Stdout, os.Stderr))
}

// ---- matrix (parent process) ----

type runResult struct {
	Gbps               float64
	CPUPerGiB          float64 // both processes
	SrvCPU, CliCPU     float64 // each process, per GiB
	SrvPerSys, CliPerS float64 // quicbatch packets per send system call
	CliRecvPerSys      float64 // quicbatch packets per receive system call, client
	CliPerGRO          float64 // packets per GRO buffer, client
	Lost               uint64
	GSO                bool
}

// A cell is one combination of the matrix, a group of the engine's: plain
// and quicbatch take turns in it, so each ratio compares runs made at about
// the same time.
type cell struct {
	conns         int
	gso, gro, who string
}

func (c cell) String() string {
	return fmt.Sprintf("%d conns, GSO %s, GRO %s, wrap %s", c.conns, c.gso, c.gro, c.who)
}

func runMatrix(cfg config, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	fmt.Fprintf(stdout, "quicbench: %s per run, median of %d, loopback, server and client in separate processes, every byte checked\n\n",
		cfg.bytesArg, cfg.count)

	var cells []cell
	var groups []bench.Group[runResult]
	for _, who := range cfg.wraps {
		for _, g := range cfg.gsos {
			for _, gro := range cfg.gros {
				for _, n := range cfg.conns {
					c := cell{conns: n, gso: g, gro: gro, who: who}
					group := bench.Group[runResult]{Name: c.String()}
					for _, wrap := range []bool{false, true} {
						group.Modes = append(group.Modes, bench.Mode[runResult]{Name: modeName(wrap),
							Sample: func(ctx context.Context, _ int) (runResult, error) {
								r, err := oneRun(ctx, cfg, exe, c, wrap)
								if err == nil && cfg.verbose {
									fmt.Fprintf(stdout, "  conns=%-2d gso=%-3s gro=%-3s wrap=%-6s %-9s %6.2f Gbit/s %6.2f CPU s/GiB (srv %.2f cli %.2f) send %.2f/%.2f recv %.2f gro %.2f pkts/syscall lost=%d connGSO=%v\n",
										c.conns, c.gso, c.gro, c.who, modeName(wrap), r.Gbps, r.CPUPerGiB, r.SrvCPU, r.CliCPU,
										r.SrvPerSys, r.CliPerS, r.CliRecvPerSys, r.CliPerGRO, r.Lost, r.GSO)
								}
								return r, err
							}})
					}
					cells, groups = append(cells, c), append(groups, group)
				}
			}
		}
	}
	progress := stderr
	if cfg.verbose {
		progress = nil // the runs' lines are the progress
	}
	res, err := bench.Run(ctx, bench.Plan[runResult]{Name: "quicbench", Rounds: cfg.count, Groups: groups, Progress: progress})
	if err != nil {
		return err
	}
	printTable(stdout, cells, res)
	return nil
}

// targets are issue 10's, for a cell: every cell keeps at least 0.97x the
// throughput; with quicbatch on both sides and GRO on it gains more, and a
// plain server that sends to a quicbatch client gains too. tr and cr are
// the throughput and CPU ratios, quicbatch's over plain's.
func targets(c cell, tr, cr float64) []bench.Target {
	const thr, cpu = "throughput ratio", "CPU/GiB ratio"
	ts := []bench.Target{bench.Check(">=0.97x", thr, tr, bench.AtLeast, 0.97)}
	switch {
	case c.who == "client" && c.gro == "on":
		ts = append(ts, bench.Check(">1x", thr, tr, bench.Above, 1), bench.Check("CPU<1x", cpu, cr, bench.Below, 1))
	case c.who != "both" || c.gro != "on":
	case c.gso == "off":
		ts = append(ts, bench.Check(">=1.5x", thr, tr, bench.AtLeast, 1.5))
	case c.conns >= 8:
		ts = append(ts, bench.Check(">=1.15x", thr, tr, bench.AtLeast, 1.15), bench.Check("CPU<=0.80x", cpu, cr, bench.AtMost, 0.80))
	default:
		ts = append(ts, bench.Check("CPU<=0.90x", cpu, cr, bench.AtMost, 0.90))
	}
	for i := range ts {
		ts[i].Where = c.String()
	}
	return ts
}

func printTable(stdout io.Writer, cells []cell, res *bench.Results[runResult]) {
	fmt.Fprintf(stdout, "%-5s %-3s %-3s %-6s | %-23s | %-23s | %-11s | %-23s | %s\n",
		"", "", "", "", "throughput Gbit/s", "CPU s per GiB (both)", "CPU ratio", "quicbatch pkts/syscall", "")
	fmt.Fprintf(stdout, "%-5s %-3s %-3s %-6s | %7s %7s %7s | %7s %7s %7s | %5s %5s | %5s %5s %5s %5s | %s\n",
		"conns", "GSO", "GRO", "wrap", "plain", "qbatch", "ratio", "plain", "qbatch", "ratio", "srv", "cli",
		"send", "send", "recv", "GRO", "targets")
	fmt.Fprintf(stdout, "%-5s %-3s %-3s %-6s | %23s | %23s | %11s | %5s %5s %5s %5s |\n",
		"", "", "", "", "", "", "", "srv", "cli", "cli", "cli")
	var all []bench.Target
	for _, c := range cells {
		plain, qb := res.Get(c.String(), modeName(false)).Samples, res.Get(c.String(), modeName(true)).Samples
		m := func(ss []bench.Sample[runResult], f func(runResult) float64) float64 { return bench.Of(ss, f).Median }
		// Ratios are medians of the per-round ratios: runs of one round ran
		// side by side, so a busy moment of the machine affects both.
		ratio := func(f func(runResult) float64) float64 {
			if st := bench.Ratio(qb, plain, bench.Over(f)); st != nil {
				return st.Median
			}
			return 0
		}
		gbps, cpu := func(r runResult) float64 { return r.Gbps }, func(r runResult) float64 { return r.CPUPerGiB }
		tr, cr := ratio(gbps), ratio(cpu)
		ts := targets(c, tr, cr)
		all = append(all, ts...)
		var tags []string
		for _, t := range ts {
			tags = append(tags, t.Tag())
		}
		fmt.Fprintf(stdout, "%-5d %-3s %-3s %-6s | %7.2f %7.2f %6.2fx | %7.2f %7.2f %6.2fx | %4.2fx %4.2fx | %5.1f %5.1f %5.1f %5.1f | %s\n",
			c.conns, c.gso, c.gro, c.who, m(plain, gbps), m(qb, gbps), tr, m(plain, cpu), m(qb, cpu), cr,
			ratio(func(r runResult) float64 { return r.SrvCPU }), ratio(func(r runResult) float64 { return r.CliCPU }),
			m(qb, func(r runResult) float64 { return r.SrvPerSys }), m(qb, func(r runResult) float64 { return r.CliPerS }),
			m(qb, func(r runResult) float64 { return r.CliRecvPerSys }), m(qb, func(r runResult) float64 { return r.CliPerGRO }),
			strings.Join(tags, " "))
	}
	fmt.Fprintf(stdout, "\nratios are medians of per-round ratios (plain and quicbatch run back to back in each round),\nnot quotients of the medians beside them; CPU is each process's user+system time\n\n")
	bench.WriteTargets(stdout, all)
}

func modeName(wrap bool) string {
	if wrap {
		return "quicbatch"
	}
	return "plain"
}

type clientReport struct {
	Seconds float64
	Bytes   int64
	Lost    uint64
	GSO     bool
	Stats   quicbatch.Stats
}

type serverReport struct {
	Stats quicbatch.Stats
}

// oneRun runs one server and one client process and returns their numbers.
// wrap false runs plain quic-go on both sides; true wraps the sides c.who
// names.
func oneRun(ctx context.Context, cfg config, exe string, c cell, wrap bool) (runResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	env := os.Environ()
	if c.gso == "off" {
		env = append(env, "QUIC_GO_DISABLE_GSO=true")
	}
	common := []string{"-depth", strconv.Itoa(cfg.depth), "-qbytes", strconv.Itoa(cfg.qbytes),
		"-async=" + strconv.FormatBool(cfg.async), "-gro", c.gro}
	wrapArg := func(side string) string {
		return "-" + wrapFlag + "=" + strconv.FormatBool(wrap && (c.who == "both" || c.who == side))
	}

	srv := exec.CommandContext(ctx, exe, append([]string{"-" + roleFlag + "=server", wrapArg("server"),
		"-bytes", strconv.FormatInt(cfg.total, 10), "-" + corruptFlag, strconv.FormatInt(cfg.corrupt, 10)}, common...)...)
	var srvErr bytes.Buffer
	srv.Env, srv.Stderr = env, &srvErr
	srvIn, err := srv.StdinPipe()
	if err != nil {
		return runResult{}, err
	}
	srvOut, err := srv.StdoutPipe()
	if err != nil {
		return runResult{}, err
	}
	if err := srv.Start(); err != nil {
		return runResult{}, err
	}
	defer srv.Process.Kill()
	sc := bufio.NewScanner(srvOut)
	if !sc.Scan() {
		return runResult{}, fmt.Errorf("server did not report its address: %s", strings.TrimSpace(srvErr.String()))
	}
	addr, _ := strings.CutPrefix(sc.Text(), "ADDR ")

	cli := exec.CommandContext(ctx, exe, append([]string{"-" + roleFlag + "=client", wrapArg("client"), "-" + addrFlag, addr,
		"-" + connsFlag, strconv.Itoa(c.conns), "-bytes", strconv.FormatInt(cfg.total, 10)}, common...)...)
	var cliErr bytes.Buffer
	cli.Env, cli.Stderr = env, &cliErr
	out, err := cli.Output()
	if err != nil {
		return runResult{}, fmt.Errorf("client: %w: %s", err, strings.TrimSpace(cliErr.String()))
	}
	var cr clientReport
	if err := json.Unmarshal(out, &cr); err != nil {
		return runResult{}, fmt.Errorf("client report %q: %w", out, err)
	}
	srvIn.Close()
	var sr serverReport
	if sc.Scan() {
		json.Unmarshal(sc.Bytes(), &sr)
	}
	if err := srv.Wait(); err != nil {
		return runResult{}, fmt.Errorf("server: %w: %s", err, strings.TrimSpace(srvErr.String()))
	}
	if cr.Bytes != cfg.total/int64(c.conns)*int64(c.conns) {
		return runResult{}, fmt.Errorf("client checked %d bytes, want %d", cr.Bytes, cfg.total/int64(c.conns)*int64(c.conns))
	}
	gib := float64(cr.Bytes) / (1 << 30)
	srvCPU := bench.ChildCPU(srv.ProcessState).Seconds() / gib
	cliCPU := bench.ChildCPU(cli.ProcessState).Seconds() / gib
	return runResult{
		Gbps:          float64(cr.Bytes) * 8 / cr.Seconds / 1e9,
		CPUPerGiB:     srvCPU + cliCPU,
		SrvCPU:        srvCPU,
		CliCPU:        cliCPU,
		SrvPerSys:     sr.Stats.MessagesPerSyscall(),
		CliPerS:       cr.Stats.MessagesPerSyscall(),
		CliRecvPerSys: cr.Stats.PacketsPerRecvSyscall(),
		CliPerGRO:     cr.Stats.PacketsPerGROBuffer(),
		Lost:          cr.Lost,
		GSO:           cr.GSO,
	}, nil
}

// ---- server and client (child processes) ----

const alpn = "quicbench"

func quicConfig() *quic.Config {
	// As github.com/quic-go/perf: flow control never limits the transfer.
	return &quic.Config{
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         1 << 30,
		InitialConnectionReceiveWindow: 1 << 20,
		MaxConnectionReceiveWindow:     1 << 30,
		MaxIdleTimeout:                 30 * time.Second,
	}
}

// endpoint opens a loopback UDP socket, wraps it if asked, and returns the
// Transport and the wrapper (nil when plain).
func endpoint(cfg config) (*quic.Transport, *quicbatch.Conn, io.Closer, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, nil, err
	}
	if !cfg.wrap {
		return &quic.Transport{Conn: udp}, nil, udp, nil
	}
	qb, err := quicbatch.Wrap(udp, quicbatch.WithQueueBytes(cfg.qbytes),
		quicbatch.WithAsync(cfg.async && cfg.depth != 0), quicbatch.WithGRO(slices.Contains(cfg.gros, "on")))
	if err != nil {
		udp.Close()
		return nil, nil, nil, err
	}
	return &quic.Transport{Conn: qb}, qb, qb, nil
}

func stats(qb *quicbatch.Conn) quicbatch.Stats {
	if qb == nil {
		return quicbatch.Stats{}
	}
	return qb.Stats()
}

func runServer(cfg config, stdout io.Writer) error {
	tlsConf, err := serverTLS()
	if err != nil {
		return err
	}
	tr, qb, closer, err := endpoint(cfg)
	if err != nil {
		return err
	}
	ln, err := tr.Listen(tlsConf, quicConfig())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ADDR %s\n", ln.Addr())
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go serveConn(c, cfg.corrupt)
		}
	}()
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin when the run is over
	json.NewEncoder(stdout).Encode(serverReport{Stats: stats(qb)})
	ln.Close()
	tr.Close()
	return closer.Close()
}

// The payload: every stream is a run of 1 MiB blocks, all one fixed
// pseudo-random block except for their first 8 bytes, which hold the
// block's number xor'ed with the stream's seed (its connection's number),
// so no two blocks of a run are alike and a misplaced block is caught too.
// The sender writes the block itself (no generation cost per byte) and the
// receiver compares with it (memcmp), so the check costs the same little in
// both modes.
const blockSize = 1 << 20

var block = func() []byte {
	b := make([]byte, blockSize)
	mrand.NewChaCha8([32]byte{'q', 'u', 'i', 'c', 'b', 'e', 'n', 'c', 'h'}).Read(b)
	return b
}()

// blockHeader returns the first 8 bytes of block k of stream seed.
func blockHeader(seed uint64, k int64) (h [8]byte) {
	binary.BigEndian.PutUint64(h[:], uint64(k)^seed^binary.BigEndian.Uint64(block))
	return h
}

// sendPayload writes size bytes of stream seed to w. With 0 <= corrupt <
// size, the byte at that offset is flipped.
func sendPayload(w io.Writer, seed uint64, size, corrupt int64) error {
	for k, off := int64(0), int64(0); off < size; k, off = k+1, off+blockSize {
		n := min(blockSize, size-off)
		h := blockHeader(seed, k)
		if corrupt >= off && corrupt < off+n {
			b := append(h[:], block[8:n]...)
			b[corrupt-off] ^= 0x01
			if _, err := w.Write(b); err != nil {
				return err
			}
			continue
		}
		if _, err := w.Write(h[:min(8, n)]); err != nil {
			return err
		}
		if n > 8 {
			if _, err := w.Write(block[8:n]); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPayload compares p with bytes off, off+1, ... of stream seed and
// returns the index in p of the first wrong byte, or -1.
func checkPayload(p []byte, seed uint64, off int64) int {
	for i := 0; i < len(p); {
		o := off + int64(i)
		pos, rest := int(o%blockSize), len(p)-i
		var want []byte
		if pos < 8 {
			h := blockHeader(seed, o/blockSize)
			want = h[pos:min(8, pos+rest)]
		} else {
			want = block[pos:min(blockSize, pos+rest)]
		}
		if got := p[i : i+len(want)]; !bytes.Equal(got, want) {
			for j := range got {
				if got[j] != want[j] {
					return i + j
				}
			}
		}
		i += len(want)
	}
	return -1
}

// wantByte returns byte off of stream seed.
func wantByte(seed uint64, off int64) byte {
	if pos := off % blockSize; pos >= 8 {
		return block[pos]
	}
	h := blockHeader(seed, off/blockSize)
	return h[off%blockSize]
}

// serveConn sends the stream the client asks for: its size and seed come
// first. corrupt applies to connection 0 (seed 0) only.
func serveConn(c *quic.Conn, corrupt int64) {
	str, err := c.AcceptStream(context.Background())
	if err != nil {
		return
	}
	var hdr [16]byte
	if _, err := io.ReadFull(str, hdr[:]); err != nil {
		return
	}
	size, seed := int64(binary.BigEndian.Uint64(hdr[:])), binary.BigEndian.Uint64(hdr[8:])
	if seed != 0 {
		corrupt = -1
	}
	if err := sendPayload(str, seed, size, corrupt); err != nil {
		return
	}
	str.Close()
	<-c.Context().Done() // the client closes once it has everything
}

func runClient(cfg config, stdout io.Writer) error {
	tr, qb, closer, err := endpoint(cfg)
	if err != nil {
		return err
	}
	defer closer.Close()
	defer tr.Close()
	conns, total := cfg.roleConns, cfg.total
	raddr, err := net.ResolveUDPAddr("udp", cfg.addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	per := total / int64(conns)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		got   int64
		lost  uint64
		gso   = true
	)
	start := time.Now()
	for i := range conns {
		wg.Go(func() {
			n, st, err := fetch(ctx, tr, raddr, uint64(i), per)
			mu.Lock()
			defer mu.Unlock()
			got += n
			lost += st.PacketsLost
			gso = gso && st.GSO
			if err != nil && first == nil {
				first = fmt.Errorf("connection %d: %w", i, err)
				cancel()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return first
	}
	return json.NewEncoder(stdout).Encode(clientReport{
		Seconds: elapsed.Seconds(), Bytes: got, Lost: lost, GSO: gso, Stats: stats(qb),
	})
}

type connStats struct {
	PacketsLost uint64
	GSO         bool
}

// fetch asks for size bytes of stream seed and checks each byte as it
// arrives; it returns how many it checked.
func fetch(ctx context.Context, tr *quic.Transport, addr net.Addr, seed uint64, size int64) (int64, connStats, error) {
	c, err := tr.Dial(ctx, addr, clientTLS(), quicConfig())
	if err != nil {
		return 0, connStats{}, err
	}
	defer c.CloseWithError(0, "")
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return 0, connStats{}, err
	}
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(size))
	binary.BigEndian.PutUint64(hdr[8:], seed)
	if _, err := str.Write(hdr[:]); err != nil {
		return 0, connStats{}, err
	}
	str.Close()
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := str.Read(buf)
		if bad := checkPayload(buf[:n], seed, off); bad >= 0 {
			o := off + int64(bad)
			return off, connStats{}, fmt.Errorf("byte %d of the %d-byte stream is %#02x, want %#02x: the data was corrupted",
				o, size, buf[bad], wantByte(seed, o))
		}
		off += int64(n)
		if off > size {
			return off, connStats{}, fmt.Errorf("got %d bytes, more than the %d asked for", off, size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return off, connStats{}, err
		}
	}
	if off != size {
		return off, connStats{}, fmt.Errorf("got %d of %d bytes", off, size)
	}
	st := connStats{PacketsLost: c.ConnectionStats().PacketsLost, GSO: c.ConnectionState().GSO}
	return off, st, nil
}

// serverTLS returns a fresh self-signed ed25519 certificate; the client
// does not verify it (both ends are this program on loopback).
func serverTLS() (*tls.Config, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		NextProtos:   []string{alpn},
	}, nil
}

func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}
}
