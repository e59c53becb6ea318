// Command quicbench measures what quicbatch changes for quic-go over loopback.
//
// Each run starts a server process and a client process (this program,
// re-executed with a hidden flag). The client opens -conns QUIC connections
// to the server over one UDP socket per side; the server sends -bytes in
// total, split evenly across the connections, and the client discards it.
// Runs alternate between a plain *net.UDPConn and quicbatch on both sides;
// the table shows medians of -count runs per cell: throughput, CPU seconds
// (user + system, both processes) per GiB moved, and the wrapper's packets
// per send system call on each side.
//
//	go run ./cmd/quicbench                       # the default matrix
//	go run ./cmd/quicbench -conns 8 -gso off -count 9 -bytes 1GiB
//
// GSO off means QUIC_GO_DISABLE_GSO=true for both processes, which also turns
// off batchconn's own GSO in quicbatch (as a kernel without GSO would).
//
// Exit status: 0 on success, 2 for bad flags, 1 when the measurement fails.
package main

import (
	"bufio"
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
)

// Hidden flags, used when the program re-executes itself.
const (
	roleFlag  = "internal-role"
	addrFlag  = "internal-addr"
	wrapFlag  = "internal-wrap"
	connsFlag = "internal-conns"
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
	depth    int // quicbatch queue depth
	qbytes   int // quicbatch queue bytes
	async    bool
	verbose  bool

	// The child processes' hidden flags.
	role      string // "", "server" or "client"
	addr      string // the server's address, for the client
	wrap      bool
	roleConns int // connections the client opens
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
	gsos := fs.String("gso", "on,off", "comma-separated GSO settings (on, off)")
	fs.IntVar(&cfg.depth, "depth", quicbatch.DefaultQueueDepth, "quicbatch queue depth (0 to 512)")
	fs.IntVar(&cfg.qbytes, "qbytes", quicbatch.DefaultQueueBytes, "quicbatch queue bytes")
	fs.BoolVar(&cfg.async, "async", true, "quicbatch queues short-header packets (WithAsync); false: combining")
	fs.BoolVar(&cfg.verbose, "v", false, "print every run")
	fs.StringVar(&cfg.role, roleFlag, "", "")
	fs.StringVar(&cfg.addr, addrFlag, "", "")
	fs.BoolVar(&cfg.wrap, wrapFlag, false, "")
	fs.IntVar(&cfg.roleConns, connsFlag, 1, "")
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
	if cfg.gsos, err = parseGSO(*gsos); err != nil {
		return cfg, err
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

// parseGSO reads -gso: "on", "off" or both, each once.
func parseGSO(s string) ([]string, error) {
	var gsos []string
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if g != "on" && g != "off" {
			return nil, usagef("-gso %q: %q is neither on nor off", s, g)
		}
		if slices.Contains(gsos, g) {
			return nil, usagef("-gso %q: %s listed twice", s, g)
		}
		gsos = append(gsos, g)
	}
	return gsos, nil
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
			err = runServer(cfg, stdout)
		case "client":
			err = runClient(cfg, stdout)
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

func main() {
	os.Exit(quicbench(os.Args[1:], os.Stdout, os.Stderr))
}

// ---- matrix (parent process) ----

type runResult struct {
	Gbps, CPUPerGiB          float64
	SrvPerSyscall, CliPerSys float64
	Lost                     uint64
	GSO                      bool
}

func runMatrix(cfg config, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "quicbench: %s per run, median of %d, loopback, server and client in separate processes\n\n",
		cfg.bytesArg, cfg.count)

	type cell struct {
		conns int
		gso   string
		plain []runResult
		qb    []runResult
	}
	var cells []*cell
	for _, g := range cfg.gsos {
		for _, n := range cfg.conns {
			c := &cell{conns: n, gso: g}
			for i := range cfg.count {
				order := []bool{false, true}
				if i%2 == 1 {
					order = []bool{true, false}
				}
				for _, wrap := range order {
					r, err := oneRun(cfg, exe, wrap, n, c.gso == "off")
					if err != nil {
						return fmt.Errorf("conns=%d gso=%s wrap=%v: %w", n, c.gso, wrap, err)
					}
					if cfg.verbose {
						fmt.Fprintf(stdout, "  conns=%-2d gso=%-3s %-9s %6.2f Gbit/s %6.2f CPU s/GiB  srv %.2f cli %.2f msgs/syscall lost=%d connGSO=%v\n",
							n, c.gso, modeName(wrap), r.Gbps, r.CPUPerGiB, r.SrvPerSyscall, r.CliPerSys, r.Lost, r.GSO)
					}
					if wrap {
						c.qb = append(c.qb, r)
					} else {
						c.plain = append(c.plain, r)
					}
				}
			}
			cells = append(cells, c)
		}
	}

	fmt.Fprintf(stdout, "%-5s %-4s | %-23s | %-23s | %-17s | %s\n", "", "", "throughput Gbit/s", "CPU s per GiB", "quicbatch", "")
	fmt.Fprintf(stdout, "%-5s %-4s | %7s %7s %7s | %7s %7s %7s | %-17s | %s\n",
		"conns", "GSO", "plain", "qbatch", "ratio", "plain", "qbatch", "ratio", "msgs/syscall s/c", "targets")
	var met, missed []string
	for _, c := range cells {
		pt, qt := median(c.plain, func(r runResult) float64 { return r.Gbps }), median(c.qb, func(r runResult) float64 { return r.Gbps })
		pc, qc := median(c.plain, func(r runResult) float64 { return r.CPUPerGiB }), median(c.qb, func(r runResult) float64 { return r.CPUPerGiB })
		ss, cs := median(c.qb, func(r runResult) float64 { return r.SrvPerSyscall }), median(c.qb, func(r runResult) float64 { return r.CliPerSys })
		tr, cr := qt/pt, qc/pc
		name := fmt.Sprintf("%d conns, GSO %s", c.conns, c.gso)
		var notes []string
		check := func(ok bool, what string) {
			s := fmt.Sprintf("%s: %s (throughput %.2fx, CPU/GiB %.2fx)", name, what, tr, cr)
			if ok {
				met = append(met, s)
				notes = append(notes, "ok:"+what)
			} else {
				missed = append(missed, s)
				notes = append(notes, "MISS:"+what)
			}
		}
		check(tr >= 0.97, "never worse (>=0.97x)")
		if c.conns >= 8 {
			check(tr >= 1.15 || cr <= 0.85, "8+ conns (>=1.15x or CPU<=0.85x)")
		}
		if c.gso == "off" {
			check(tr >= 1.2, "GSO off (>=1.2x)")
		}
		fmt.Fprintf(stdout, "%-5d %-4s | %7.2f %7.2f %6.2fx | %7.2f %7.2f %6.2fx | %7.2f / %-7.2f | %s\n",
			c.conns, c.gso, pt, qt, tr, pc, qc, cr, ss, cs, strings.Join(notes, " "))
	}
	fmt.Fprintf(stdout, "\ntargets met: %d, missed: %d\n", len(met), len(missed))
	for _, s := range missed {
		fmt.Fprintln(stdout, "  missed:", s)
	}
	return nil
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
func oneRun(cfg config, exe string, wrap bool, conns int, gsoOff bool) (runResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := os.Environ()
	if gsoOff {
		env = append(env, "QUIC_GO_DISABLE_GSO=true")
	}
	common := []string{"-" + wrapFlag + "=" + strconv.FormatBool(wrap),
		"-depth", strconv.Itoa(cfg.depth), "-qbytes", strconv.Itoa(cfg.qbytes), "-async=" + strconv.FormatBool(cfg.async)}

	srv := exec.CommandContext(ctx, exe, append([]string{"-" + roleFlag + "=server"}, common...)...)
	srv.Env, srv.Stderr = env, os.Stderr
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
		return runResult{}, errors.New("server did not report its address")
	}
	addr, _ := strings.CutPrefix(sc.Text(), "ADDR ")

	cli := exec.CommandContext(ctx, exe, append([]string{"-" + roleFlag + "=client", "-" + addrFlag, addr,
		"-" + connsFlag, strconv.Itoa(conns), "-bytes", strconv.FormatInt(cfg.total, 10)}, common...)...)
	cli.Env, cli.Stderr = env, os.Stderr
	out, err := cli.Output()
	if err != nil {
		return runResult{}, fmt.Errorf("client: %w", err)
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
		return runResult{}, fmt.Errorf("server: %w", err)
	}
	cpu := srv.ProcessState.UserTime() + srv.ProcessState.SystemTime() +
		cli.ProcessState.UserTime() + cli.ProcessState.SystemTime()
	gib := float64(cr.Bytes) / (1 << 30)
	return runResult{
		Gbps:          float64(cr.Bytes) * 8 / cr.Seconds / 1e9,
		CPUPerGiB:     cpu.Seconds() / gib,
		SrvPerSyscall: sr.Stats.MessagesPerSyscall(),
		CliPerSys:     cr.Stats.MessagesPerSyscall(),
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
	qb, err := quicbatch.Wrap(udp, quicbatch.WithQueueDepth(cfg.depth), quicbatch.WithQueueBytes(cfg.qbytes), quicbatch.WithAsync(cfg.async))
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
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go serveConn(c, payload)
		}
	}()
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin when the run is over
	json.NewEncoder(stdout).Encode(serverReport{Stats: stats(qb)})
	ln.Close()
	tr.Close()
	return closer.Close()
}

func serveConn(c *quic.Conn, payload []byte) {
	str, err := c.AcceptStream(context.Background())
	if err != nil {
		return
	}
	var hdr [8]byte
	if _, err := io.ReadFull(str, hdr[:]); err != nil {
		return
	}
	for n := int64(binary.BigEndian.Uint64(hdr[:])); n > 0; {
		p := payload[:min(int64(len(payload)), n)]
		if _, err := str.Write(p); err != nil {
			return
		}
		n -= int64(len(p))
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
	for range conns {
		wg.Go(func() {
			n, st, err := fetch(ctx, tr, raddr, per)
			mu.Lock()
			defer mu.Unlock()
			got += n
			lost += st.PacketsLost
			gso = gso && st.GSO
			if err != nil && first == nil {
				first = err
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

func fetch(ctx context.Context, tr *quic.Transport, addr net.Addr, size int64) (int64, connStats, error) {
	c, err := tr.Dial(ctx, addr, clientTLS(), quicConfig())
	if err != nil {
		return 0, connStats{}, err
	}
	defer c.CloseWithError(0, "")
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return 0, connStats{}, err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(size))
	if _, err := str.Write(hdr[:]); err != nil {
		return 0, connStats{}, err
	}
	str.Close()
	n, err := io.CopyBuffer(io.Discard, str, make([]byte, 64<<10))
	if err == nil && n != size {
		err = fmt.Errorf("got %d of %d bytes", n, size)
	}
	st := connStats{PacketsLost: c.ConnectionStats().PacketsLost, GSO: c.ConnectionState().GSO}
	return n, st, err
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
