package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for quicbench's child processes:
// runMatrix re-executes os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(envTestChild) == "1" {
		os.Exit(quicbench(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const envTestChild = "QUICBENCH_TEST_CHILD"

// stream returns the first size bytes of stream seed, as sendPayload writes
// them, with the byte at corrupt flipped.
func stream(t *testing.T, seed uint64, size, corrupt int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sendPayload(&b, seed, size, corrupt); err != nil {
		t.Fatal(err)
	}
	if int64(b.Len()) != size {
		t.Fatalf("sendPayload wrote %d bytes, want %d", b.Len(), size)
	}
	return b.Bytes()
}

func TestPayloadCheckAcceptsTheStreamInAnyPieces(t *testing.T) {
	const size = 3*blockSize + 100
	s := stream(t, 7, size, -1)
	for _, piece := range []int{1, 5, 8, 1452, 64 << 10, blockSize + 3} {
		for off := 0; off < len(s); off += piece {
			if off > 5*piece && off < len(s)-blockSize-5*piece && piece < 1000 {
				off = len(s) - blockSize - 5*piece // small pieces: the start, a block edge and the end are enough
			}
			p := s[off:min(off+piece, len(s))]
			if bad := checkPayload(p, 7, int64(off)); bad >= 0 {
				t.Fatalf("pieces of %d: byte %d of the piece at %d flagged", piece, bad, off)
			}
		}
	}
}

func TestPayloadCheckCatchesEveryFlippedByte(t *testing.T) {
	s := stream(t, 3, 2*blockSize+20, -1)
	// Around the block edge, where the header is, every byte; elsewhere a
	// sample.
	offsets := []int64{0, 7, 8, 9, 100, blockSize - 1}
	for o := int64(blockSize - 3); o < blockSize+12; o++ {
		offsets = append(offsets, o)
	}
	offsets = append(offsets, 2*blockSize+19)
	for _, o := range offsets {
		c := bytes.Clone(s)
		c[o] ^= 0x01
		start := max(0, o-700)
		if bad := checkPayload(c[start:], 3, start); start+int64(bad) != o || bad < 0 {
			t.Errorf("byte %d flipped: checkPayload = %d (offset %d)", o, bad, start+int64(bad))
		}
		// sendPayload's own corruption lands at the same place.
		if got := stream(t, 3, int64(len(s)), o); !bytes.Equal(got, c) {
			t.Errorf("sendPayload with corrupt %d differs from the stream with byte %d flipped", o, o)
		}
	}
}

func TestPayloadCheckCatchesAnotherStreamOrAMisplacedBlock(t *testing.T) {
	s := stream(t, 1, 3*blockSize, -1)
	if bad := checkPayload(s, 2, 0); bad < 0 || bad >= 8 {
		t.Errorf("stream 1 checked as stream 2: first bad byte %d, want in the header", bad)
	}
	if bad := checkPayload(s[2*blockSize:], 1, blockSize); bad < 0 || bad >= 8 {
		t.Errorf("block 2 checked as block 1: first bad byte %d, want in the header", bad)
	}
}

// The hidden corruption flag proves that a run checks its bytes: one flipped
// byte fails the command with a message that names it.
func TestARunWithAFlippedByteFails(t *testing.T) {
	if testing.Short() {
		t.Skip("starts quicbench's processes")
	}
	t.Setenv(envTestChild, "1")
	var stdout, stderr bytes.Buffer
	code := quicbench([]string{"-bytes", "3MiB", "-count", "1", "-conns", "1", "-gso", "on", "-gro", "on",
		"-internal-corrupt", "1234567"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit status %d, want 1; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"byte 1234567 of the 3145728-byte stream", "the data was corrupted", "connection 0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr does not say %q:\n%s", want, msg)
		}
	}
}

// The same run without the flipped byte passes and prints the table with
// GRO cells and the receive-side columns.
func TestARunChecksItsBytesAndPrintsTheTable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts quicbench's processes")
	}
	t.Setenv(envTestChild, "1")
	var stdout, stderr bytes.Buffer
	code := quicbench([]string{"-bytes", "3MiB", "-count", "1", "-conns", "2", "-gso", "on", "-gro", "on,off", "-wrap", "both,client"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"every byte checked", "GRO", "recv", "2     on  on  both", "2     on  off both", "2     on  on  client", "targets met"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
