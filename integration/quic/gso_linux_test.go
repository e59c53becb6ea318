package quicbatch

import (
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelGSO reports whether the kernel offers UDP GSO on a loopback socket,
// probed the way quic-go probes it (getsockopt UDP_SEGMENT).
func kernelGSO(t testing.TB) bool {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}

// Issue 8, item 3: Stats.GSOOff names the switch that turned GSO off.
func TestStatsGSOOffNamesTheSwitch(t *testing.T) {
	for _, tc := range []struct {
		name            string
		quicGo, bconn   string // QUIC_GO_DISABLE_GSO, BATCHCONN_DISABLE_GSO
		opts            []Option
		wantOff         string // in GSOOff; "" = on wherever the kernel has GSO
		wantNotInReason string
	}{
		{"QUIC_GO_DISABLE_GSO=true", "true", "", nil, "QUIC_GO_DISABLE_GSO", "WithGSO"},
		{"WithGSO(false)", "", "", []Option{WithGSO(false)}, "WithGSO(false)", "QUIC_GO"},
		{"BATCHCONN_DISABLE_GSO=1", "", "1", nil, "BATCHCONN_DISABLE_GSO", "WithGSO"},
		{"WithGSO(true) after QUIC_GO_DISABLE_GSO=true", "true", "", []Option{WithGSO(true)}, "", "QUIC_GO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("QUIC_GO_DISABLE_GSO", tc.quicGo)
			t.Setenv("BATCHCONN_DISABLE_GSO", tc.bconn)
			udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			c, err := Wrap(udp, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st := c.Stats()
			if tc.wantOff == "" {
				if st.GSO != kernelGSO(t) {
					t.Errorf("GSO = %v (GSOOff %q), want %v as the kernel offers", st.GSO, st.GSOOff, kernelGSO(t))
				}
			} else if st.GSO || !strings.Contains(st.GSOOff, tc.wantOff) {
				t.Errorf("GSO = %v, GSOOff = %q; want off, naming %q", st.GSO, st.GSOOff, tc.wantOff)
			}
			if strings.Contains(st.GSOOff, tc.wantNotInReason) {
				t.Errorf("GSOOff = %q names %q, which is not why", st.GSOOff, tc.wantNotInReason)
			}
		})
	}
}
