package quicbatch

import (
	"os"
	"strconv"
	"testing"

	"github.com/quic-go/quic-go"
)

// checkGSO fails unless quic-go kept GSO through the wrapper wherever the
// kernel has it (and had it off when want is false).
func checkGSO(t *testing.T, states []quic.ConnectionState, want bool) {
	t.Helper()
	for i, st := range states {
		if st.GSO != want {
			t.Errorf("connection %d: ConnectionState().GSO = %v, want %v", i, st.GSO, want)
		}
	}
}

// quicGoGSODisabled reports whether QUIC_GO_DISABLE_GSO turns quic-go's GSO
// off, read as quic-go reads it (strconv.ParseBool).
func quicGoGSODisabled() bool {
	v, err := strconv.ParseBool(os.Getenv("QUIC_GO_DISABLE_GSO"))
	return err == nil && v
}

// quicGoGSO reports whether quic-go will use GSO on a new connection: where
// the kernel offers it and QUIC_GO_DISABLE_GSO does not turn it off.
func quicGoGSO(t testing.TB) bool { return !quicGoGSODisabled() && kernelGSO(t) }

// skipUnlessQuicGoGSO skips a test that is about quic-go's GSO buffers.
func skipUnlessQuicGoGSO(t *testing.T) {
	t.Helper()
	if quicGoGSODisabled() {
		t.Skip("QUIC_GO_DISABLE_GSO is set: quic-go writes no GSO buffers, which this test is about")
	}
	if !kernelGSO(t) {
		t.Skip("the kernel has no UDP GSO (getsockopt UDP_SEGMENT fails): quic-go writes no GSO buffers")
	}
}

func logStats(t *testing.T, name string, s *side) {
	t.Helper()
	if s.qb == nil {
		return
	}
	st := s.qb.Stats()
	t.Logf("%s: writes=%d queued=%d waits=%d batches=%d syscalls=%d msgs=%d (%.2f/syscall) maxBatch=%d splits=%d dropMsgSize=%d dropped=%d readBatches=%d",
		name, st.Writes, st.Queued, st.QueueWaits, st.Batches, st.Syscalls, st.Messages, st.MessagesPerSyscall(),
		st.MaxBatch, st.GSOSplits, st.DropMsgSize, st.Dropped, st.ReadBatches)
}

func TestTransferBothEndsWrapped(t *testing.T) {
	srv, cli := newSide(t, true), newSide(t, true)
	res := transfer(t, srv, cli, 1, testSize(256<<20), true)
	gso := quicGoGSO(t)
	checkGSO(t, res.client, gso)
	checkGSO(t, res.server, gso)
	logStats(t, "server", srv)
	logStats(t, "client", cli)
}

func TestTransferOneEndWrapped(t *testing.T) {
	for _, tc := range []struct {
		name             string
		srvWrap, cliWrap bool
		download         bool
	}{
		{"wrapped server sends to plain client", true, false, true},
		{"wrapped client sends to plain server", false, true, false},
		{"plain server sends to wrapped client", false, true, true},
		{"plain client sends to wrapped server", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := newSide(t, tc.srvWrap), newSide(t, tc.cliWrap)
			res := transfer(t, srv, cli, 1, testSize(48<<20), tc.download)
			gso := quicGoGSO(t)
			checkGSO(t, res.client, gso)
			checkGSO(t, res.server, gso)
		})
	}
}

func TestTransferConcurrentConnectionsShareServerSocket(t *testing.T) {
	for _, tc := range []struct {
		name     string
		conns    int
		download bool
	}{
		{"1 connection downloads", 1, true},
		{"16 connections download", 16, true},
		{"16 connections upload", 16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := newSide(t, true), newSide(t, true)
			per := testSize(128<<20) / int64(tc.conns)
			transfer(t, srv, cli, tc.conns, per, tc.download)
			logStats(t, "server", srv)
			logStats(t, "client", cli)
			if st := srv.qb.Stats(); st.Writes == 0 || st.ReadBatches == 0 {
				t.Errorf("server Stats = %+v: quic-go did not write and read through the wrapper", st)
			}
		})
	}
}

func TestTransferQuicGoGSODisabled(t *testing.T) {
	t.Setenv("QUIC_GO_DISABLE_GSO", "true")
	srv, cli := newSide(t, true), newSide(t, true)
	res := transfer(t, srv, cli, 4, testSize(64<<20)/4, true)
	checkGSO(t, res.client, false)
	checkGSO(t, res.server, false)
	if st := srv.qb.Stats(); st.GSO {
		t.Errorf("QUIC_GO_DISABLE_GSO=true left batchconn's GSO on: %+v", st)
	}
	logStats(t, "server", srv)
}
