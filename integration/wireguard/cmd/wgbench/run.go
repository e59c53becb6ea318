package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/batchconn/batchconn/internal/bench"
	"github.com/batchconn/batchconn/internal/netns"
)

// The addresses of a run: the veth link's are in 198.18.0.0/15 (see
// internal/netns), the tunnel's in 198.19.0.0/16 (both RFC 2544,
// benchmarking), inside namespaces of our own.
const (
	tunnelA, tunnelB = "198.19.250.1", "198.19.250.2"
	tunName          = "wgbench0"
	wgPort           = 51820
	tcpPort          = 5201
)

// geteuid is os.Geteuid; a test replaces it to see the message a user
// without root gets while running as root.
var geteuid = os.Geteuid

// requirements says what keeps wgbench from running here.
func requirements() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("wgbench needs Linux (network namespaces, veth, kernel TUN), not %s", runtime.GOOS)
	}
	if euid := geteuid(); euid != 0 {
		return fmt.Errorf("wgbench needs root: it makes network namespaces, a veth pair and TUN devices (running as uid %d; try sudo)", euid)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("wgbench needs /dev/net/tun for its TUN devices: %w", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("wgbench needs the ip command (iproute2): %w", err)
	}
	return nil
}

// runBench is the parent process: the namespaces, the rounds, the table.
func runBench(cfg config, stdout, stderr io.Writer) error {
	if err := requirements(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := bench.SignalContext(context.Background())
	defer stop()
	// Deleted also after a signal: it ends the run (bench.SignalContext),
	// not the process.
	tb, err := netns.New(nsPrefix, cfg.mtu)
	if err != nil {
		return err
	}
	defer func() {
		if err := tb.Remove(); err != nil {
			fmt.Fprintf(stderr, "wgbench: %v\n", err)
		}
	}()
	b := &wgBench{cfg: cfg, exe: exe, tb: tb, log: stdout}
	if cfg.json {
		b.log = stderr
	}
	sum := summary{
		Bytes: cfg.total, Rounds: cfg.count, MTU: cfg.mtu, TunnelMTU: cfg.mtu - 80, GRO: cfg.gro, GSO: cfg.gso,
		LoadStart: bench.LoadAverage(), Veth: offloads(tb.A),
	}
	if !cfg.json {
		b.header(sum)
	}
	// A group per direction, the modes taking turns in each round.
	var groups []bench.Group[runResult]
	for _, dir := range cfg.dirs {
		g := bench.Group[runResult]{Name: dirName(dir)}
		for _, mode := range cfg.modes {
			g.Modes = append(g.Modes, bench.Mode[runResult]{Name: mode,
				Sample: func(ctx context.Context, round int) (runResult, error) {
					r, err := b.run(ctx, round, mode, dir)
					if err == nil && cfg.verbose {
						fmt.Fprintf(b.log, "  round %d %-5s %s %-14s %6.2f Gbit/s  CPU s/GiB: sender %.2f receiver %.2f end-to-end %.2f (TCP ends %.2f %.2f)\n",
							round, mode, dirName(dir), pairName(r.SendBind, r.RecvBind), r.Gbps, r.SenderCPU, r.ReceiverCPU, r.EndToEndCPU,
							r.TCPSenderCPU, r.TCPReceiverCPU)
					}
					return r, err
				}})
		}
		groups = append(groups, g)
	}
	progress := stderr
	if cfg.verbose || cfg.json {
		progress = nil
	}
	res, err := bench.Run(ctx, bench.Plan[runResult]{Name: "wgbench", Rounds: cfg.count, Groups: groups, Progress: progress})
	if err != nil {
		return err
	}
	sum.LoadEnd = bench.LoadAverage()
	sum.fill(cfg, res)
	if cfg.json {
		return bench.WriteJSON(stdout, sum)
	}
	printTable(stdout, sum)
	return nil
}

// ---- the namespaces ----

// nsPrefix starts the name of every namespace wgbench makes:
// "wgbench-<pid>-<n>-a" and "-b" (see internal/netns).
const nsPrefix = "wgbench"

// offloads returns the veth's offload settings that matter for UDP and
// TCP, as ethtool -k shows them, or why they are unknown.
func offloads(h *netns.Host) string {
	out, err := exec.Command("ip", "netns", "exec", h.Name, "ethtool", "-k", h.Link).CombinedOutput()
	if err != nil {
		return "unknown (ethtool -k: " + strings.TrimSpace(firstLine(string(out))+" "+err.Error()) + ")"
	}
	var keep []string
	for line := range strings.SplitSeq(string(out), "\n") {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ": ")
		switch name {
		case "tx-checksumming", "tcp-segmentation-offload", "tx-udp-segmentation", "generic-segmentation-offload",
			"generic-receive-offload", "rx-udp-gro-forwarding":
			if ok {
				keep = append(keep, name+" "+strings.Fields(val)[0])
			}
		}
	}
	return strings.Join(keep, ", ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// ---- one run ----

type wgBench struct {
	cfg config
	exe string
	tb  *netns.Pair
	log io.Writer // where -v writes
}

// runResult is one transfer: CPU figures are seconds per GiB moved.
type runResult struct {
	Round              int
	Mode, Dir          string
	SendBind, RecvBind string
	Bytes              int64
	Seconds, Gbps      float64
	SenderCPU          float64 // the sending wireguard-go process
	ReceiverCPU        float64 // the receiving one
	EndToEndCPU        float64 // both
	TCPSenderCPU       float64 // the TCP sender process, not in EndToEndCPU
	TCPReceiverCPU     float64 // the TCP receiver process, not in EndToEndCPU
}

// binds returns the Binds of namespaces A and B in a mode.
func binds(mode string) (a, b string) {
	switch mode {
	case "batch":
		return "batch", "batch"
	case "mixed":
		return "std", "batch"
	}
	return "std", "std"
}

func dirName(dir string) string {
	if dir == "b2a" {
		return "B->A"
	}
	return "A->B"
}

func pairName(send, recv string) string { return send + " -> " + recv }

// run moves cfg.total bytes of TCP through a fresh pair of wireguard-go
// processes in the given mode and direction, in round (from 1).
func (b *wgBench) run(parent context.Context, round int, mode, dir string) (runResult, error) {
	// Generous: 60s for setup plus 10 MB/s, some 50 times slower than
	// this machine's tunnel.
	ctx, cancel := context.WithTimeout(parent, 60*time.Second+time.Duration(b.cfg.total/10e6)*time.Second)
	defer cancel()
	keyA, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return runResult{}, err
	}
	keyB, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return runResult{}, err
	}
	bindA, bindB := binds(mode)
	label := fmt.Sprintf("r%d-%s-%s", round, dir, mode)
	side := func(ns, bind, ownTunnel, peerTunnel, peerVeth string, own, peer *ecdh.PrivateKey) (*wgProc, error) {
		return b.startWireGuard(ctx, ns, ownTunnel, wgConfig{
			Label: label + "-" + ns[len(ns)-1:] + "-" + bind, Bind: bind, GRO: b.cfg.gro, GSO: b.cfg.gso,
			TUN: tunName, MTU: b.cfg.mtu - 80,
			PrivateKey: hex.EncodeToString(own.Bytes()), PeerPublicKey: hex.EncodeToString(peer.PublicKey().Bytes()),
			ListenPort: wgPort, PeerEndpoint: fmt.Sprintf("%s:%d", peerVeth, wgPort),
			PeerAllowedIP: peerTunnel + "/32", PeerTunnelIP: peerTunnel,
		})
	}
	wgA, err := side(b.tb.A.Name, bindA, tunnelA, tunnelB, b.tb.B.Addr4.String(), keyA, keyB)
	if err != nil {
		return runResult{}, fmt.Errorf("wireguard-go in A (%s): %w", bindA, err)
	}
	defer wgA.stop()
	wgB, err := side(b.tb.B.Name, bindB, tunnelB, tunnelA, b.tb.A.Addr4.String(), keyB, keyA)
	if err != nil {
		return runResult{}, fmt.Errorf("wireguard-go in B (%s): %w", bindB, err)
	}
	defer wgB.stop()
	if _, err := wgA.ask(cmdHandshake); err != nil {
		return runResult{}, err
	}

	snd, rcv, sendNS, recvNS, recvAddr := wgA, wgB, b.tb.A.Name, b.tb.B.Name, tunnelB
	r := runResult{Round: round, Mode: mode, Dir: dir, SendBind: bindA, RecvBind: bindB, Bytes: b.cfg.total}
	if dir == "b2a" {
		snd, rcv, sendNS, recvNS, recvAddr = wgB, wgA, b.tb.B.Name, b.tb.A.Name, tunnelA
		r.SendBind, r.RecvBind = bindB, bindA
	}
	addr := fmt.Sprintf("%s:%d", recvAddr, tcpPort)
	recv := exec.CommandContext(ctx, "ip", "netns", "exec", recvNS, b.exe, "-"+roleFlag+"=recv", "-"+addrFlag, addr,
		"-bytes", strconv.FormatInt(b.cfg.total, 10))
	var recvErr bytes.Buffer
	recv.Stderr = &recvErr
	recv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	recvOut, err := recv.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := recv.Start(); err != nil {
		return r, err
	}
	defer recv.Process.Kill()
	recvLines := bufio.NewScanner(recvOut)
	if !recvLines.Scan() || recvLines.Text() != "LISTEN" {
		recv.Wait()
		return r, fmt.Errorf("TCP receiver did not start: %s", strings.TrimSpace(recvErr.String()))
	}

	send0, err := snd.cpu()
	if err != nil {
		return r, err
	}
	recv0, err := rcv.cpu()
	if err != nil {
		return r, err
	}
	send := exec.CommandContext(ctx, "ip", "netns", "exec", sendNS, b.exe, "-"+roleFlag+"=send", "-"+addrFlag, addr,
		"-bytes", strconv.FormatInt(b.cfg.total, 10), "-"+corruptFlag, strconv.FormatInt(b.cfg.corrupt, 10))
	var sendErr bytes.Buffer
	send.Stderr = &sendErr
	send.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sendOut, sendRunErr := send.Output()
	if sendRunErr != nil {
		recv.Process.Kill() // it would wait for the connection until the timeout
	}
	var recvReport []byte
	if recvLines.Scan() {
		recvReport = bytes.Clone(recvLines.Bytes())
	}
	recvRunErr := recv.Wait()
	if sendRunErr != nil {
		return r, fmt.Errorf("TCP sender: %w: %s", sendRunErr, strings.TrimSpace(sendErr.String()))
	}
	if recvRunErr != nil {
		return r, fmt.Errorf("TCP receiver: %w: %s", recvRunErr, strings.TrimSpace(recvErr.String()))
	}
	send1, err := snd.cpu()
	if err != nil {
		return r, err
	}
	recv1, err := rcv.cpu()
	if err != nil {
		return r, err
	}
	var sr, rr endReport
	if err := json.Unmarshal(sendOut, &sr); err != nil {
		return r, fmt.Errorf("TCP sender's report %q: %w", sendOut, err)
	}
	if err := json.Unmarshal(recvReport, &rr); err != nil {
		return r, fmt.Errorf("TCP receiver's report %q: %w", recvReport, err)
	}
	if rr.Bytes != b.cfg.total || sr.Bytes != b.cfg.total {
		return r, fmt.Errorf("the receiver got %d bytes, the sender sent %d, want %d", rr.Bytes, sr.Bytes, b.cfg.total)
	}
	if rr.CRC != sr.CRC {
		return r, fmt.Errorf("the receiver's CRC-32C of its %d bytes is %08x, the sender's %08x: the data was corrupted",
			rr.Bytes, rr.CRC, sr.CRC)
	}
	if err := errors.Join(wgA.stop(), wgB.stop()); err != nil {
		return r, err
	}

	gib := float64(r.Bytes) / (1 << 30)
	r.Seconds = rr.Seconds
	r.Gbps = float64(r.Bytes) * 8 / rr.Seconds / 1e9
	r.SenderCPU = (send1 - send0).Seconds() / gib
	r.ReceiverCPU = (recv1 - recv0).Seconds() / gib
	r.EndToEndCPU = r.SenderCPU + r.ReceiverCPU
	cpu := func(p *os.ProcessState) float64 { return bench.ChildCPU(p).Seconds() / gib }
	r.TCPSenderCPU, r.TCPReceiverCPU = cpu(send.ProcessState), cpu(recv.ProcessState)
	return r, nil
}

// wgProc is a running wireguard-go process and the pipes that talk to it.
type wgProc struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Scanner
	stderr  bytes.Buffer
	stopped bool
	err     error
}

// startWireGuard starts a wireguard-go process in namespace ns, waits for
// its device, and gives its TUN the tunnel address.
func (b *wgBench) startWireGuard(ctx context.Context, ns, tunnelAddr string, cfg wgConfig) (*wgProc, error) {
	p := &wgProc{cmd: exec.CommandContext(ctx, "ip", "netns", "exec", ns, b.exe, "-"+roleFlag+"=wg")}
	p.cmd.Stderr = &p.stderr
	// ip netns exec execs the command (it does not fork), so this process
	// is wireguard-go itself; it dies with us.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewScanner(out)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := json.Marshal(cfg)
	if err != nil {
		p.stop()
		return nil, err
	}
	if _, err := p.ask(string(line)); err != nil {
		p.stop()
		return nil, err
	}
	for _, args := range [][]string{
		{"addr", "add", tunnelAddr + "/24", "dev", cfg.TUN},
		{"link", "set", cfg.TUN, "up"},
	} {
		if err := netns.Command(append([]string{"ip", "-n", ns}, args...)...); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// ask sends one line and returns the reply line.
func (p *wgProc) ask(line string) (string, error) {
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		return "", p.failed(err)
	}
	if !p.out.Scan() {
		return "", p.failed(errors.New("no answer"))
	}
	reply := p.out.Text()
	if msg, ok := strings.CutPrefix(reply, "ERR "); ok {
		return "", errors.New(msg)
	}
	return reply, nil
}

// failed adds what the process said on its way out to err.
func (p *wgProc) failed(err error) error {
	p.stop()
	return fmt.Errorf("wireguard-go process: %w: %s", err, strings.TrimSpace(p.stderr.String()))
}

// cpu returns the process's user + system CPU so far.
func (p *wgProc) cpu() (time.Duration, error) {
	reply, err := p.ask(cmdRusage)
	if err != nil {
		return 0, err
	}
	var user, sys int64
	if _, err := fmt.Sscanf(reply, "%d %d", &user, &sys); err != nil {
		return 0, fmt.Errorf("rusage reply %q: %w", reply, err)
	}
	return time.Duration(user+sys) * time.Microsecond, nil
}

// stop ends the process (closing its input asks it to) and reports how it
// ended; later calls return the same.
func (p *wgProc) stop() error {
	if p.stopped {
		return p.err
	}
	p.stopped = true
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.err = fmt.Errorf("wireguard-go process: %w: %s", err, strings.TrimSpace(p.stderr.String()))
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
		p.err = fmt.Errorf("wireguard-go process did not stop within 10s: %s", strings.TrimSpace(p.stderr.String()))
	}
	return p.err
}
