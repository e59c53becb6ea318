// Command quicbench measures what quicbatch changes for quic-go over loopback.
//
// Each run starts a server process and a client process (this program,
// re-executed with a hidden flag). The client opens -conns QUIC connections
// to the server over one UDP socket per side; the server sends -bytes in
// total, split evenly across the connections, and the client checks every
// byte against the deterministic payload the server generates (a run with a
// wrong byte fails the command). Runs alternate between plain quic-go on a
// *net.UDPConn and quicbatch (on both sides, or with -wrap on one side
// only); the table shows medians of -count runs per cell: throughput, CPU
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
// Exit status: 0 on success, 2 for bad flags, 1 when the measurement fails.
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
	"math"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	quicbatch "github.com/batchconn/batchconn/integration/quic"
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
	// maxDepth is quicbatch's limit: WithQueueDepth clamps larger values
	// (512, to keep one send within batchconn.MaxMessages).
	maxDepth = 512
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
	depth    int      // quicbatch queue depth
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

// usageError is a problem with the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
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
	fs.IntVar(&cfg.depth, "depth", quicbatch.DefaultQueueDepth, "quicbatch queue depth (0 to 512)")
	fs.IntVar(&cfg.qbytes, "qbytes", quicbatch.DefaultQueueBytes, "quicbatch queue bytes")
	fs.BoolVar(&cfg.async, "async", true, "quicbatch queues short-header packets (WithAsync); false: combining")
	fs.BoolVar(&cfg.verbose, "v", false, "print every run")
	fs.StringVar(&cfg.role, roleFlag, "", "")
	fs.StringVar(&cfg.addr, addrFlag, "", "")
	fs.BoolVar(&cfg.wrap, wrapFlag, false, "")
	fs.IntVar(&cfg.roleConns, connsFlag, 1, "")
	fs.Int64Var(&cfg.corrupt, corruptFlag, -1, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stderr)
			return cfg, err
		}
		return cfg, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q (quicbench takes only flags)", fs.Arg(0))
	}

	var err error
	if cfg.total, err = parseBytes(cfg.bytesArg); err != nil {
		return cfg, err
	}
	switch {
	case cfg.count < 1 || cfg.count > maxCount:
		return cfg, usagef("-count %d: must be between 1 and %d", cfg.count, maxCount)
	case cfg.depth < 0 || cfg.depth > maxDepth:
		return cfg, usagef("-depth %d: must be between 0 (no queue) and %d", cfg.depth, maxDepth)
	case cfg.qbytes < 0:
		return cfg, usagef("-qbytes %d: must be 0 or more", cfg.qbytes)
	}
	if cfg.conns, err = parseConns(*conns); err != nil {
		return cfg, err
	}
	if cfg.gsos, err = parseList("-gso", *gsos, "on", "off"); err != nil {
		return cfg, err
	}
	if cfg.gros, err = parseList("-gro", *gros, "on", "off"); err != nil {
		return cfg, err
	}
	if cfg.wraps, err = parseList("-wrap", *wraps, "both", "client", "server"); err != nil {
		return cfg, err
	}
	if cfg.corrupt < -1 || cfg.corrupt >= cfg.total {
		return cfg, usagef("-%s %d: must be an offset below -bytes, or -1", corruptFlag, cfg.corrupt)
	}
	if n := int64(slices.Max(cfg.conns)); cfg.role == "" && cfg.total < n {
		return cfg, usagef("-bytes %s: less than one byte for each of %d connections", cfg.bytesArg, n)
	}
	switch cfg.role {
	case "", "server":
	case "client":
		if cfg.addr == "" {
			return cfg, usagef("-%s client needs -%s", roleFlag, addrFlag)
		}
		if cfg.roleConns < 1 || int64(cfg.roleConns) > cfg.total {
			return cfg, usagef("-%s %d: must be between 1 and -bytes", connsFlag, cfg.roleConns)
		}
	default:
		return cfg, usagef("-%s %q: want server or client", roleFlag, cfg.role)
	}
	return cfg, nil
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "usage: quicbench [flags]\n\nMeasures quic-go over a plain *net.UDPConn against quicbatch, over loopback.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "internal-") {
			return
		}
		fmt.Fprintf(w, "  -%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
	})
}

// parseBytes reads a positive byte count with an optional binary suffix.
func parseBytes(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, usagef("-bytes %q: want a positive number of bytes, optionally with KiB, MiB or GiB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, usagef("-bytes %q: too large", s)
	}
	return n * mult, nil
}

// parseConns reads -conns: distinct connection counts, 1 to maxConns.
func parseConns(s string) ([]int, error) {
	var conns []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxConns {
			return nil, usagef("-conns %q: %q is not a connection count from 1 to %d", s, f, maxConns)
		}
		if slices.Contains(conns, n) {
			return nil, usagef("-conns %q: %d listed twice", s, n)
		}
		conns = append(conns, n)
	}
	return conns, nil
}

// parseList reads a comma-separated list of the allowed values, each at
// most once, for flag name.
func parseList(name, s string, allowed ...string) ([]string, error) {
	var vals []string
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(allowed, v) {
			return nil, usagef("%s %q: %q is not one of %s", name, s, v, strings.Join(allowed, ", "))
		}
		if slices.Contains(vals, v) {
			return nil, usagef("%s %q: %s listed twice", name, s, v)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// quicbench runs the command and returns its exit status: 0 on success, 2
// for bad flags, 1 when the measurement fails.
func quicbench(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		switch cfg.role {
		case "server":
			err = profiled("server", cfg, func() error { return runServer(cfg, stdout) })
		case "client":
			err = profiled("client", cfg, func() error { return runClient(cfg, stdout) })
		default:
			err = runMatrix(cfg, stdout)
		}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "quicbench: %v\n", err)
	if _, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(stderr, "run 'quicbench -h' for the flags\n")
		return 2
	}
	return 1
}

// envProfile names a directory: each child process writes its CPU profile
// there (role-wrap-pid.pprof), for finding where a cell's time goes.
const envProfile = "QUICBENCH_CPUPROFILE"

func profiled(role string, cfg config, run func() error) error {
	dir := os.Getenv(envProfile)
	if dir == "" {
		return run()
	}
	f, err := os.Create(fmt.Sprintf("%s/%s-%s-%d.pprof", dir, role, modeName(cfg.wrap), os.Getpid()))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return run()
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

// A cell is one combination of the matrix: plain and quicbatch runs
// alternate in it, so each ratio compares runs made at about the same time.
type cell struct {
	conns         int
	gso, gro, who string
	plain, qb     []runResult
}

func runMatrix(cfg config, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "quicbench: %s per run, median of %d, loopback, server and client in separate processes, every byte checked\n\n",
		cfg.bytesArg, cfg.count)

	var cells []*cell
	for _, who := range cfg.wraps {
		for _, g := range cfg.gsos {
			for _, gro := range cfg.gros {
				for _, n := range cfg.conns {
					c := &cell{conns: n, gso: g, gro: gro, who: who}
					if err := c.run(cfg, exe, stdout); err != nil {
						return err
					}
					cells = append(cells, c)
				}
			}
		}
	}
	printTable(stdout, cells)
	return nil
}

func (c *cell) run(cfg config, exe string, stdout io.Writer) error {
	for i := range cfg.count {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, wrap := range order {
			r, err := oneRun(cfg, exe, c, wrap)
			if err != nil {
				return fmt.Errorf("conns=%d gso=%s gro=%s wrap=%s %s: %w", c.conns, c.gso, c.gro, c.who, modeName(wrap), err)
			}
			if cfg.verbose {
				fmt.Fprintf(stdout, "  conns=%-2d gso=%-3s gro=%-3s wrap=%-6s %-9s %6.2f Gbit/s %6.2f CPU s/GiB (srv %.2f cli %.2f) send %.2f/%.2f recv %.2f gro %.2f pkts/syscall lost=%d connGSO=%v\n",
					c.conns, c.gso, c.gro, c.who, modeName(wrap), r.Gbps, r.CPUPerGiB, r.SrvCPU, r.CliCPU,
					r.SrvPerSys, r.CliPerS, r.CliRecvPerSys, r.CliPerGRO, r.Lost, r.GSO)
			}
			if wrap {
				c.qb = append(c.qb, r)
			} else {
				c.plain = append(c.plain, r)
			}
		}
	}
	return nil
}

// The targets of issue 10, for cells with quicbatch on both sides and GRO
// on; every cell must keep at least 0.97x the throughput, and a plain peer
// that sends to a quicbatch client must gain.
func targets(c *cell, tr, cr float64, check func(ok bool, what string)) {
	check(tr >= 0.97, ">=0.97x")
	switch {
	case c.who == "client" && c.gro == "on":
		check(tr > 1 && cr < 1, "gains")
	case c.who != "both" || c.gro != "on":
	case c.gso == "off":
		check(tr >= 1.5, ">=1.5x")
	case c.conns >= 8:
		check(tr >= 1.15, ">=1.15x")
		check(cr <= 0.80, "CPU<=0.80x")
	default:
		check(cr <= 0.90, "CPU<=0.90x")
	}
}

func printTable(stdout io.Writer, cells []*cell) {
	fmt.Fprintf(stdout, "%-5s %-3s %-3s %-6s | %-23s | %-23s | %-11s | %-23s | %s\n",
		"", "", "", "", "throughput Gbit/s", "CPU s per GiB (both)", "CPU ratio", "quicbatch pkts/syscall", "")
	fmt.Fprintf(stdout, "%-5s %-3s %-3s %-6s | %7s %7s %7s | %7s %7s %7s | %5s %5s | %5s %5s %5s %5s | %s\n",
		"conns", "GSO", "GRO", "wrap", "plain", "qbatch", "ratio", "plain", "qbatch", "ratio", "srv", "cli",
		"send", "send", "recv", "GRO", "targets")
	fmt.Fprintf(stdout, "%-5s %-3s %-3s %-6s | %23s | %23s | %11s | %5s %5s %5s %5s |\n",
		"", "", "", "", "", "", "", "srv", "cli", "cli", "cli")
	var missed []string
	met := 0
	for _, c := range cells {
		m := func(rs []runResult, f func(runResult) float64) float64 { return median(rs, f) }
		pt, qt := m(c.plain, func(r runResult) float64 { return r.Gbps }), m(c.qb, func(r runResult) float64 { return r.Gbps })
		pc, qc := m(c.plain, func(r runResult) float64 { return r.CPUPerGiB }), m(c.qb, func(r runResult) float64 { return r.CPUPerGiB })
		// Ratios are medians of the per-round ratios: runs of one round ran
		// side by side, so a busy moment of the machine affects both.
		tr, cr := roundRatio(c, func(r runResult) float64 { return r.Gbps }), roundRatio(c, func(r runResult) float64 { return r.CPUPerGiB })
		sr, clr := roundRatio(c, func(r runResult) float64 { return r.SrvCPU }), roundRatio(c, func(r runResult) float64 { return r.CliCPU })
		name := fmt.Sprintf("%d conns, GSO %s, GRO %s, wrap %s", c.conns, c.gso, c.gro, c.who)
		var notes []string
		targets(c, tr, cr, func(ok bool, what string) {
			if ok {
				met++
				notes = append(notes, "ok:"+what)
				return
			}
			missed = append(missed, fmt.Sprintf("%s: %s (throughput %.2fx, CPU/GiB %.2fx)", name, what, tr, cr))
			notes = append(notes, "MISS:"+what)
		})
		fmt.Fprintf(stdout, "%-5d %-3s %-3s %-6s | %7.2f %7.2f %6.2fx | %7.2f %7.2f %6.2fx | %4.2fx %4.2fx | %5.1f %5.1f %5.1f %5.1f | %s\n",
			c.conns, c.gso, c.gro, c.who, pt, qt, tr, pc, qc, cr, sr, clr,
			m(c.qb, func(r runResult) float64 { return r.SrvPerSys }), m(c.qb, func(r runResult) float64 { return r.CliPerS }),
			m(c.qb, func(r runResult) float64 { return r.CliRecvPerSys }), m(c.qb, func(r runResult) float64 { return r.CliPerGRO }),
			strings.Join(notes, " "))
	}
	fmt.Fprintf(stdout, "\nratios are medians of per-round ratios (plain and quicbatch run back to back in each round),\nnot quotients of the medians beside them; CPU is each process's user+system time\n")
	fmt.Fprintf(stdout, "\ntargets met: %d, missed: %d\n", met, len(missed))
	for _, s := range missed {
		fmt.Fprintln(stdout, "  missed:", s)
	}
}

// roundRatio returns the median over rounds of quicbatch's value over
// plain's.
func roundRatio(c *cell, f func(runResult) float64) float64 {
	rs := make([]runResult, 0, len(c.qb))
	for i := range min(len(c.qb), len(c.plain)) {
		if p := f(c.plain[i]); p > 0 {
			rs = append(rs, runResult{Gbps: f(c.qb[i]) / p})
		}
	}
	return median(rs, func(r runResult) float64 { return r.Gbps })
}

func modeName(wrap bool) string {
	if wrap {
		return "quicbatch"
	}
	return "plain"
}

func median(rs []runResult, f func(runResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
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
func oneRun(cfg config, exe string, c *cell, wrap bool) (runResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	srvCPU := (srv.ProcessState.UserTime() + srv.ProcessState.SystemTime()).Seconds() / gib
	cliCPU := (cli.ProcessState.UserTime() + cli.ProcessState.SystemTime()).Seconds() / gib
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
	qb, err := quicbatch.Wrap(udp, quicbatch.WithQueueDepth(cfg.depth), quicbatch.WithQueueBytes(cfg.qbytes),
		quicbatch.WithAsync(cfg.async), quicbatch.WithGRO(slices.Contains(cfg.gros, "on")))
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
