package main

import (
	"bytes"
	"encoding/json"
	"hash/crc32"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The sender's checksum is of the stream it writes, and a flipped byte
// changes the stream in that byte alone, not the checksum.
func TestSendPayloadChecksumsWhatItMeansToSend(t *testing.T) {
	const size = 3*blockSize + 100
	var clean bytes.Buffer
	crc, err := sendPayload(&clean, size, -1)
	if err != nil {
		t.Fatal(err)
	}
	if clean.Len() != size {
		t.Fatalf("wrote %d bytes, want %d", clean.Len(), size)
	}
	if got := crc32.Checksum(clean.Bytes(), castagnoli); got != crc {
		t.Fatalf("CRC-32C of the stream %08x, sendPayload said %08x", got, crc)
	}
	for _, off := range []int64{0, 7, 8, blockSize - 1, blockSize, 2*blockSize + 5, size - 1} {
		var bad bytes.Buffer
		crc2, err := sendPayload(&bad, size, off)
		if err != nil {
			t.Fatal(err)
		}
		if crc2 != crc {
			t.Errorf("corrupt %d: checksum %08x, want the clean stream's %08x", off, crc2, crc)
		}
		want := bytes.Clone(clean.Bytes())
		want[off] ^= 0x01
		if !bytes.Equal(bad.Bytes(), want) {
			t.Errorf("corrupt %d: the stream differs from the clean one elsewhere than in byte %d", off, off)
		}
		if crc32.Checksum(bad.Bytes(), castagnoli) == crc {
			t.Errorf("corrupt %d: the receiver's checksum would match", off)
		}
	}
}

// Blocks differ from each other (their numbers), so a repeated block in
// place of another changes the checksum.
func TestSendPayloadBlocksAreDistinct(t *testing.T) {
	var b bytes.Buffer
	if _, err := sendPayload(&b, 2*blockSize, -1); err != nil {
		t.Fatal(err)
	}
	s := b.Bytes()
	if bytes.Equal(s[:blockSize], s[blockSize:]) {
		t.Fatal("block 0 and block 1 are alike")
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		name   string
		c      cell
		missed []string
	}{
		{"batch meeting every target", cell{Mode: "batch", GbpsRatio: 1.10, SenderRatio: 0.75, EndToEndRatio: 0.85}, nil},
		{"batch missing sender CPU", cell{Mode: "batch", GbpsRatio: 1.2, SenderRatio: 0.76, EndToEndRatio: 0.8}, []string{"sender CPU<=0.75x"}},
		{"batch missing end-to-end CPU and throughput", cell{Mode: "batch", GbpsRatio: 1.09, SenderRatio: 0.7, EndToEndRatio: 0.86},
			[]string{"end-to-end CPU<=0.85x", "throughput>=1.10x"}},
		{"batch slower than std", cell{Mode: "batch", GbpsRatio: 0.96, SenderRatio: 0.7, EndToEndRatio: 0.8},
			[]string{"throughput>=0.97x", "throughput>=1.10x"}},
		{"mixed that gains", cell{Mode: "mixed", GbpsRatio: 1.0, EndToEndRatio: 0.95}, nil},
		{"mixed that costs as much", cell{Mode: "mixed", GbpsRatio: 1.0, EndToEndRatio: 1.0}, []string{"gains (end-to-end CPU<1x)"}},
		{"mixed slower", cell{Mode: "mixed", GbpsRatio: 0.9, EndToEndRatio: 0.9}, []string{"throughput>=0.97x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var missed []string
			for _, tg := range targets(tt.c) {
				if !tg.Met {
					missed = append(missed, tg.Name)
				}
			}
			if strings.Join(missed, ";") != strings.Join(tt.missed, ";") {
				t.Errorf("missed %q, want %q", missed, tt.missed)
			}
		})
	}
}

// requireBench skips a test that runs the benchmark for real where it
// cannot run.
func requireBench(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts network namespaces and wireguard-go processes")
	}
	if err := requirements(); err != nil {
		t.Skipf("%v", err)
	}
}

// runReal runs wgbench with args, its child processes being this test
// binary, and returns the exit status and outputs.
func runReal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv(envTestChild, "1")
	var stdout, stderr bytes.Buffer
	code := wgbench(args, nil, &stdout, &stderr)
	if ns := ourNamespaces(t); len(ns) > 0 {
		t.Errorf("namespaces left behind: %q", ns)
	}
	return code, stdout.String(), stderr.String()
}

// ourNamespaces lists the namespaces this process made and did not delete.
func ourNamespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var ns []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, nsPrefix+"-"+strconv.Itoa(os.Getpid())+"-") {
			ns = append(ns, name)
		}
	}
	return ns
}

// A short real run with StdNetBind on both ends moves its bytes both ways,
// checks them and prints the table.
func TestAShortRunWithStdBindsChecksItsBytesAndPrintsTheTable(t *testing.T) {
	requireBench(t)
	code, stdout, stderr := runReal(t, "-bytes", "4MiB", "-count", "1", "-modes", "std")
	if code != 0 {
		t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"every byte checked (CRC-32C)", "std -> std       A->B", "std -> std       B->A", "targets met: 0, missed: 0", "load average at start"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// The same with -json: every run is there, with CPU figures of both
// wireguard-go processes.
func TestAShortRunPrintsJSON(t *testing.T) {
	requireBench(t)
	code, stdout, stderr := runReal(t, "-bytes", "2MiB", "-count", "1", "-modes", "std", "-dir", "b2a", "-json")
	if code != 0 {
		t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var s summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("stdout is no summary: %v\n%s", err, stdout)
	}
	if len(s.Runs) != 1 || len(s.Cells) != 1 {
		t.Fatalf("%d runs and %d cells, want 1 of each", len(s.Runs), len(s.Cells))
	}
	r := s.Runs[0]
	if r.Dir != "b2a" || r.SendBind != "std" || r.Bytes != 2<<20 || r.Gbps <= 0 || r.SenderCPU <= 0 || r.ReceiverCPU <= 0 || r.EndToEndCPU != r.SenderCPU+r.ReceiverCPU {
		t.Errorf("run = %+v", r)
	}
}

// The hidden corruption flag proves that a run checks its bytes: one
// flipped byte fails the command with a message that says so.
func TestARunWithAFlippedByteFails(t *testing.T) {
	requireBench(t)
	code, stdout, stderr := runReal(t, "-bytes", "4MiB", "-count", "1", "-modes", "std", "-dir", "a2b", "-internal-corrupt", "1234567")
	if code != 1 {
		t.Fatalf("exit status %d, want 1; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"round 1, std, A->B", "the receiver's CRC-32C of its 4194304 bytes", "the data was corrupted"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
}

// SIGTERM in the middle of a run ends wgbench with status 1 and leaves no
// namespace behind.
func TestASignalStopsTheRunAndRemovesTheNamespaces(t *testing.T) {
	requireBench(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-bytes", "64GiB", "-count", "1", "-modes", "std")
	cmd.Env = append(os.Environ(), envTestChild+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	prefix := nsPrefix + "-" + strconv.Itoa(cmd.Process.Pid) + "-"
	// Wait for the transfer to be under way: both namespaces and a TUN.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command("ip", "-n", prefix+"1-a", "link", "show", tunName).CombinedOutput()
		if strings.Contains(string(out), tunName) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TUN in %s1-a after 30s: %s", prefix, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces %s* left behind:\n%s", prefix, out)
	}
}
