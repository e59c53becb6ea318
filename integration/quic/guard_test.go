package quicbatch

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/quic-go/quic-go"
)

// oobOnly has quic.OOBCapablePacketConn's methods and nothing else: no
// ReadBatch and not a net.Conn.
type oobOnly struct{ quic.OOBCapablePacketConn }

// If this fails after a quic-go upgrade, quic-go no longer requires ReadBatch
// (or net.Conn) of an OOBCapablePacketConn: check whether it still reads
// through Conn.ReadBatch, or through the file descriptor behind our back.
func TestGuardQuicGoRequiresReadBatchOrNetConn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the rule is checked where quic-go uses its oob conn; Linux here")
	}
	s := newSide(t, true)
	tr := &quic.Transport{Conn: oobOnly{s.qb}}
	srvTLS, _ := tlsConfigs(t)
	ln, err := tr.Listen(srvTLS, quicConfig())
	if err == nil {
		ln.Close()
		t.Fatal("quic-go accepted a conn without ReadBatch or net.Conn; the ReadBatch rule changed")
	}
	if !strings.Contains(err.Error(), "must implement net.Conn or ReadBatch") {
		t.Fatalf("Listen: %v; want the \"must implement net.Conn or ReadBatch\" error", err)
	}
}

// If this fails after a quic-go upgrade, quic-go stopped using Conn for reads
// and writes or stopped detecting GSO through Conn.SyscallConn.
func TestGuardQuicGoReadsWritesAndDetectsGSOThroughConn(t *testing.T) {
	srv, cli := newSide(t, true), newSide(t, true)
	res := transfer(t, srv, cli, 1, 4<<20, true)
	for name, s := range map[string]*side{"server": srv, "client": cli} {
		if st := s.qb.Stats(); st.Writes == 0 || st.ReadBatches == 0 {
			t.Errorf("%s Stats = %+v: quic-go bypassed the wrapper", name, st)
		}
	}
	skipUnlessQuicGoGSO(t)
	checkGSO(t, res.server, true)
	checkGSO(t, res.client, true)
	if st := srv.qb.Stats(); st.Bytes/max(st.Messages, 1) <= 1452 {
		t.Errorf("server sent %d bytes in %d messages: quic-go did not hand over GSO buffers", st.Bytes, st.Messages)
	}
}

func TestGuardDialAndCloseWithoutTraffic(t *testing.T) {
	srv, cli := newSide(t, true), newSide(t, true)
	srvTLS, cliTLS := tlsConfigs(t)
	ln, err := srv.tr.Listen(srvTLS, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cli.tr.Dial(context.Background(), srv.udp.LocalAddr(), cliTLS, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.CloseWithError(0, "")
	ln.Close()
	// Transport.Close relies on SetReadDeadline ending a blocked ReadBatch.
	if err := cli.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.tr.Close(); err != nil {
		t.Fatal(err)
	}
}
