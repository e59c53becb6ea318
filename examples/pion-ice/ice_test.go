package pionice

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"

	"github.com/batchconn/batchconn/batchconn"
)

// hostOnly are the options every agent here gets: host candidates over
// IPv4 loopback only, no mDNS, so the test needs no network but lo.
func hostOnly() []ice.AgentOption {
	return []ice.AgentOption{
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithIncludeLoopback(),
		ice.WithInterfaceFilter(func(name string) bool { return name == "lo" }),
	}
}

func newAgent(t *testing.T, opts ...ice.AgentOption) *ice.Agent {
	t.Helper()
	a, err := ice.NewAgentWithOptions(append(hostOnly(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// gather collects a's candidates, marshalled as signalling would carry them.
func gather(t *testing.T, a *ice.Agent) []string {
	t.Helper()
	done := make(chan struct{})
	var cands []string
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(done)
			return
		}
		cands = append(cands, c.Marshal())
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("gathering did not finish")
	}
	if len(cands) == 0 {
		t.Fatal("no candidates gathered")
	}
	return cands
}

func addRemote(t *testing.T, a *ice.Agent, cands []string) {
	t.Helper()
	for _, s := range cands {
		c, err := ice.UnmarshalCandidate(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.AddRemoteCandidate(c); err != nil {
			t.Fatal(err)
		}
	}
}

// connect runs ICE between server (controlled, accepting) and client
// (controlling, dialling) and returns their connections.
func connect(t *testing.T, server, client *ice.Agent) (*ice.Conn, *ice.Conn) {
	t.Helper()
	sc, cc := gather(t, server), gather(t, client)
	addRemote(t, server, cc)
	addRemote(t, client, sc)
	sUfrag, sPwd, err := server.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	cUfrag, cPwd, err := client.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type accepted struct {
		c   *ice.Conn
		err error
	}
	ach := make(chan accepted, 1)
	go func() {
		c, err := server.Accept(ctx, cUfrag, cPwd)
		ach <- accepted{c, err}
	}()
	clientConn, err := client.Dial(ctx, sUfrag, sPwd)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	a := <-ach
	if a.err != nil {
		t.Fatalf("Accept: %v", a.err)
	}
	return a.c, clientConn
}

// exchange sends n numbered messages from one end to the other and checks
// that they arrive, in order or not, each once. ICE runs over UDP, so the
// sender paces itself by the receiver's progress to stay within the
// sockets' buffers; on loopback nothing else loses datagrams.
func exchange(t *testing.T, from, to *ice.Conn, label string, n int) error {
	got := make(map[string]bool, n)
	errc := make(chan error, 1)
	progress := make(chan struct{}, n)
	go func() {
		b := make([]byte, 1500)
		for len(got) < n {
			to.SetReadDeadline(time.Now().Add(10 * time.Second))
			k, err := to.Read(b)
			if err != nil {
				errc <- fmt.Errorf("%s: read after %d of %d: %w", label, len(got), n, err)
				return
			}
			m := string(b[:k])
			if got[m] {
				errc <- fmt.Errorf("%s: %q arrived twice", label, m)
				return
			}
			got[m] = true
			progress <- struct{}{}
		}
		errc <- nil
	}()
	const window = 32
	for i := range n {
		if i >= window {
			select {
			case <-progress:
			case err := <-errc:
				return err
			}
		}
		if _, err := from.Write([]byte(fmt.Sprintf("%s %d", label, i))); err != nil {
			return fmt.Errorf("%s: write %d: %w", label, i, err)
		}
	}
	return <-errc
}

// TestTwoSessionsOverOneBatchconnMux: two ICE agents share one
// ice.UDPMuxDefault whose socket is a *batchconn.Conn, as the sessions of
// a server share its port. Each connects to its own client agent on
// loopback, and data flows both ways on both sessions at once, so the
// mux's writers meet on the Conn.
func TestTwoSessionsOverOneBatchconnMux(t *testing.T) {
	bc, err := batchconn.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: bc})
	t.Cleanup(func() { mux.Close(); bc.Close() })
	if _, ok := mux.LocalAddr().(*net.UDPAddr); !ok {
		t.Fatalf("the mux's LocalAddr is %T; pion needs a *net.UDPAddr", mux.LocalAddr())
	}

	type session struct{ server, client *ice.Conn }
	var sessions []session
	for range 2 {
		server := newAgent(t, ice.WithUDPMux(mux))
		client := newAgent(t)
		s, c := connect(t, server, client)
		sessions = append(sessions, session{s, c})
	}

	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(sessions))
	for i, s := range sessions {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- exchange(t, s.server, s.client, fmt.Sprintf("session %d server->client", i), n)
		}()
		go func() {
			defer wg.Done()
			errs <- exchange(t, s.client, s.server, fmt.Sprintf("session %d client->server", i), n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := bc.Stats()
	t.Logf("the mux's Conn: %d datagrams sent in batches with others, in %d system calls; the rest went alone", st.Messages, st.Syscalls)
}
