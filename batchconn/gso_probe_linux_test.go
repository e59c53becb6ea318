//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/batchconn/batchconn/internal/testnet"
	"golang.org/x/sys/unix"
)

// kernelAtLeast reports whether the running kernel's release is major.minor
// or later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("kernel release %q", rel)
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || ma == major && mi >= minor
}

func TestContractC14GSOSegmentsProbe(t *testing.T) {
	if _, err := New(testnet.ListenUDP(t, "udp4")); err != nil {
		t.Fatal(err)
	}
	t.Run("the probe finds this kernel's limit", func(t *testing.T) {
		if err := probeGSOSend(maxGSOSegments); err != nil {
			t.Skipf("no UDP GSO on loopback: %v", err)
		}
		got := gsoSegments()
		if got != maxGSOSegments && got != probedGSOSegments {
			t.Fatalf("gsoSegments() = %d, want %d or %d", got, maxGSOSegments, probedGSOSegments)
		}
		// UDP_MAX_SEGMENTS became 128 in Linux 6.9; older kernels may
		// have it backported, so only the newer ones are certain.
		if kernelAtLeast(t, 6, 9) && got != probedGSOSegments {
			t.Errorf("gsoSegments() = %d on Linux 6.9 or later, want %d", got, probedGSOSegments)
		}
		// The probe tells the limits apart: one segment more is refused.
		if err := probeGSOSend(got + 1); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("a GSO send of %d segments: %v, want EINVAL", got+1, err)
		}
	})
	t.Run("a probe the kernel refuses means 64", func(t *testing.T) {
		real := gsoProbe
		t.Cleanup(func() { gsoProbe = real })
		gsoProbe = func(int) error { return os.NewSyscallError("sendmsg", syscall.EINVAL) }
		if got := probeGSOSegments(); got != maxGSOSegments {
			t.Errorf("probeGSOSegments() = %d, want %d", got, maxGSOSegments)
		}
	})
	t.Run("no loopback means 64", func(t *testing.T) {
		p := testnet.NewPair(t, testnet.LinkConfig{})
		// As in a fresh network namespace: lo down, without addresses.
		p.A.Exec(t, "ip", "link", "set", "lo", "down")
		p.A.Exec(t, "ip", "addr", "flush", "dev", "lo")
		var got int
		var perr error
		if err := p.A.Run(func() error {
			perr = probeGSOSend(probedGSOSegments)
			got = probeGSOSegments()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if perr == nil || got != maxGSOSegments {
			t.Errorf("with lo down: probe %v, probeGSOSegments() = %d; want an error and %d", perr, got, maxGSOSegments)
		}
	})
}

func TestContractC14Run128SegmentsIsOneGSOSend(t *testing.T) {
	c, rxs, dst := seamSetup(t)
	if got := gsoSegments(); got != probedGSOSegments {
		t.Skipf("this kernel takes %d segments per GSO send", got)
	}
	if c.tx.p.maxSegs != probedGSOSegments {
		t.Fatalf("the planner's limit is %d, want the probed %d", c.tx.p.maxSegs, probedGSOSegments)
	}
	msgs := make([]Message, probedGSOSegments)
	for i := range msgs {
		p := bytes.Repeat([]byte{byte(i)}, 100)
		p[0], p[1] = byte(i>>8), byte(i)
		msgs[i] = Message{Addr: dst[0], Buffers: [][]byte{p}}
	}
	seamSend(t, c, msgs)
	if st := c.Stats(); st.GSOBatches != 1 || st.Syscalls != 1 || st.Messages != probedGSOSegments {
		t.Errorf("Stats: GSOBatches %d, Syscalls %d, Messages %d; want 1, 1, %d", st.GSOBatches, st.Syscalls, st.Messages, probedGSOSegments)
	}
	seamArrivals(t, c, rxs[:1], dst[:1], msgs)
}
