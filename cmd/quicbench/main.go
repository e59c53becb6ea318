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
	"log"
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
	roleFlag = "internal-role"
	addrFlag = "internal-addr"
	wrapFlag = "internal-wrap"
)

var (
	flagBytes = flag.String("bytes", "256MiB", "bytes moved per run, over all connections (suffixes KiB, MiB, GiB)")
	flagCount = flag.Int("count", 5, "runs per cell and mode; the table shows medians")
	flagConns = flag.String("conns", "1,8,32", "comma-separated connection counts")
	flagGSO   = flag.String("gso", "on,off", "comma-separated GSO settings (on, off)")
	flagDepth = flag.Int("depth", quicbatch.DefaultQueueDepth, "quicbatch queue depth")
	flagQB    = flag.Int("qbytes", quicbatch.DefaultQueueBytes, "quicbatch queue bytes")
	flagAsync = flag.Bool("async", true, "quicbatch queues short-header packets (WithAsync); false: combining")
	flagV     = flag.Bool("v", false, "print every run")

	flagRole = flag.String(roleFlag, "", "")
	flagAddr = flag.String(addrFlag, "", "")
	flagWrap = flag.Bool(wrapFlag, false, "")
	flagN    = flag.Int("internal-conns", 1, "")
)

func main() {
	flag.Usage = usage
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("quicbench: ")
	total, err := parseBytes(*flagBytes)
	if err != nil {
		log.Fatal(err)
	}
	switch *flagRole {
	case "server":
		err = runServer(*flagWrap)
	case "client":
		err = runClient(*flagWrap, *flagAddr, *flagN, total)
	case "":
		err = runMatrix(total)
	default:
		err = fmt.Errorf("unknown role %q", *flagRole)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func usage() {
	fmt.Fprintf(flag.CommandLine.Output(), "usage: quicbench [flags]\n\n")
	flag.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "internal-") {
			return
		}
		fmt.Fprintf(flag.CommandLine.Output(), "  -%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
	})
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad -bytes %q", s)
	}
	return n * mult, nil
}

// ---- matrix (parent process) ----

type runResult struct {
	Gbps, CPUPerGiB          float64
	SrvPerSyscall, CliPerSys float64
	Lost                     uint64
	GSO                      bool
}

func runMatrix(total int64) error {
	var conns []int
	for _, f := range strings.Split(*flagConns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -conns %q", *flagConns)
		}
		conns = append(conns, n)
	}
	gsos := strings.Split(*flagGSO, ",")
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("quicbench: %s per run, median of %d, loopback, server and client in separate processes\n\n",
		*flagBytes, *flagCount)

	type cell struct {
		conns int
		gso   string
		plain []runResult
		qb    []runResult
	}
	var cells []*cell
	for _, g := range gsos {
		for _, n := range conns {
			c := &cell{conns: n, gso: strings.TrimSpace(g)}
			for i := range *flagCount {
				order := []bool{false, true}
				if i%2 == 1 {
					order = []bool{true, false}
				}
				for _, wrap := range order {
					r, err := oneRun(exe, wrap, n, c.gso == "off", total)
					if err != nil {
						return fmt.Errorf("conns=%d gso=%s wrap=%v: %w", n, c.gso, wrap, err)
					}
					if *flagV {
						fmt.Printf("  conns=%-2d gso=%-3s %-9s %6.2f Gbit/s %6.2f CPU s/GiB  srv %.2f cli %.2f msgs/syscall lost=%d connGSO=%v\n",
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

	fmt.Printf("%-5s %-4s | %-23s | %-23s | %-17s | %s\n", "", "", "throughput Gbit/s", "CPU s per GiB", "quicbatch", "")
	fmt.Printf("%-5s %-4s | %7s %7s %7s | %7s %7s %7s | %-17s | %s\n",
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
		fmt.Printf("%-5d %-4s | %7.2f %7.2f %6.2fx | %7.2f %7.2f %6.2fx | %7.2f / %-7.2f | %s\n",
			c.conns, c.gso, pt, qt, tr, pc, qc, cr, ss, cs, strings.Join(notes, " "))
	}
	fmt.Printf("\ntargets met: %d, missed: %d\n", len(met), len(missed))
	for _, s := range missed {
		fmt.Println("  missed:", s)
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
func oneRun(exe string, wrap bool, conns int, gsoOff bool, total int64) (runResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := os.Environ()
	if gsoOff {
		env = append(env, "QUIC_GO_DISABLE_GSO=true")
	}
	common := []string{"-" + wrapFlag + "=" + strconv.FormatBool(wrap),
		"-depth", strconv.Itoa(*flagDepth), "-qbytes", strconv.Itoa(*flagQB), "-async=" + strconv.FormatBool(*flagAsync)}

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
		"-internal-conns", strconv.Itoa(conns), "-bytes", strconv.FormatInt(total, 10)}, common...)...)
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
func endpoint(wrap bool) (*quic.Transport, *quicbatch.Conn, io.Closer, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, nil, err
	}
	if !wrap {
		return &quic.Transport{Conn: udp}, nil, udp, nil
	}
	qb, err := quicbatch.Wrap(udp, quicbatch.WithQueueDepth(*flagDepth), quicbatch.WithQueueBytes(*flagQB), quicbatch.WithAsync(*flagAsync))
	if err != nil {
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

func runServer(wrap bool) error {
	tr, qb, closer, err := endpoint(wrap)
	if err != nil {
		return err
	}
	ln, err := tr.Listen(serverTLS(), quicConfig())
	if err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
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
	json.NewEncoder(os.Stdout).Encode(serverReport{Stats: stats(qb)})
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

func runClient(wrap bool, addr string, conns int, total int64) error {
	tr, qb, closer, err := endpoint(wrap)
	if err != nil {
		return err
	}
	defer closer.Close()
	defer tr.Close()
	raddr, err := net.ResolveUDPAddr("udp", addr)
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
	return json.NewEncoder(os.Stdout).Encode(clientReport{
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
func serverTLS() *tls.Config {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		log.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		NextProtos:   []string{alpn},
	}
}

func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}
}
