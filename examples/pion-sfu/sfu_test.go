package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestForwardsEveryPacket: the SFU on each socket, the load in the same
// process, two configurations: every subscriber gets every packet of the
// window of every publisher, once, with the right sequence number and
// payload, and the SFU's count of what it forwarded agrees.
func TestForwardsEveryPacket(t *testing.T) {
	shapes := []shape{{1, 3, 100}, {2, 2, 100}}
	if testing.Short() {
		shapes = shapes[:1]
	}
	for _, socket := range sockets.Names() {
		for _, sh := range shapes {
			t.Run(fmt.Sprintf("%s/%v", socket, sh), func(t *testing.T) {
				conn, err := listen(socket, "127.0.0.1:0", 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				s := newSFU(conn)
				hs := httptest.NewServer(s)
				t.Cleanup(func() { hs.Close(); s.Close() })
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				r, err := runLoad(ctx, loadConfig{server: hs.URL, publishers: sh.publishers, subscribers: sh.subscribers,
					rate: sh.rate, duration: 500 * time.Millisecond, size: 1000})
				if err != nil {
					t.Fatal(err)
				}
				t.Log(r)
				want := uint64(sh.publishers * sh.rate / 2)
				switch {
				case r.Sent != want:
					t.Errorf("sent %d, want %d", r.Sent, want)
				case r.Received != r.Expected || r.Lost != 0:
					t.Errorf("received %d of %d", r.Received, r.Expected)
				case r.Duplicates != 0:
					t.Errorf("%d duplicates", r.Duplicates)
				case r.SFUForward < r.Expected:
					t.Errorf("the SFU says it forwarded %d, fewer than the %d received", r.SFUForward, r.Expected)
				}
			})
		}
	}
}

// TestPayloadCheck: what the subscribers check catches what it must.
func TestPayloadCheck(t *testing.T) {
	b := make([]byte, 100)
	fillPayload(b, 3, 70000)
	if err := checkPayload(b, 3, 70000, 100); err != nil {
		t.Fatalf("a right payload: %v", err)
	}
	corrupt := func(i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return c
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		pub     uint32
		counter uint32
		size    int
	}{
		{"another publisher's packet", b, 2, 70000, 100},
		{"a sequence number that is not the packet's", b, 3, 70001, 100},
		{"the same low 16 bits of another packet", b, 3, 70000 + 65536, 100},
		{"a flipped byte", corrupt(50), 3, 70000, 100},
		{"a flipped last byte", corrupt(99), 3, 70000, 100},
		{"a short payload", b[:99], 3, 70000, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkPayload(tc.payload, tc.pub, tc.counter, tc.size); err == nil {
				t.Error("not caught")
			}
		})
	}
}

// TestStreamCounts: a subscriber's accounting of one track, sequence
// numbers extended across the 16-bit wrap (RFC 3550 A.1).
func TestStreamCounts(t *testing.T) {
	const pub, size = 1, 16
	st := &stream{highest: -1}
	send := func(counter uint32) {
		p := make([]byte, size)
		fillPayload(p, pub, counter)
		st.check(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(counter)}, Payload: p}, pub, size)
	}
	for c := uint32(65530); c < 65540; c++ { // across the wrap
		if c != 65535 {
			send(c)
		}
	}
	send(65535) // late: reordered
	send(65537) // again: a duplicate
	if st.bad != nil {
		t.Fatal(st.bad)
	}
	if st.highest != 65539 || st.reordered != 1 || st.duplicates != 1 {
		t.Errorf("highest %d, reordered %d, duplicates %d; want 65539, 1, 1", st.highest, st.reordered, st.duplicates)
	}
	if n := countBits(st.seen, 65530, 65540); n != 10 {
		t.Errorf("%d of 10 packets counted", n)
	}
	if n := countBits(st.seen, 65536, 70000); n != 4 {
		t.Errorf("%d packets counted past the end, want 4", n)
	}

	// A packet whose sequence number does not match its payload fails.
	p := make([]byte, size)
	fillPayload(p, pub, 65541)
	st.check(&rtp.Packet{Header: rtp.Header{SequenceNumber: 65542 & 0xffff}, Payload: p}, pub, size)
	if st.bad == nil {
		t.Error("a sequence number that is not the payload's went unnoticed")
	}
}

// TestSignallingBadRequests: the SFU's HTTP signalling refuses what is
// not a request it knows, with a status and a reason, and goes on
// serving.
func TestSignallingBadRequests(t *testing.T) {
	conn, err := listen("conn-queue", "127.0.0.1:0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := newSFU(conn)
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"a publish that is not JSON", "POST", "/publish", "v=0", 400, "invalid character"},
		{"a publish whose offer is not SDP", "POST", "/publish", `{"type":"offer","sdp":"nonsense"}`, 400, ""},
		{"a publish of an answer", "POST", "/publish", `{"type":"answer","sdp":""}`, 400, ""},
		{"a publish over 1 MiB", "POST", "/publish", `{"type":"offer","sdp":"` + strings.Repeat("x", 2<<20) + `"}`, 400, "too large"},
		{"a subscribe with no publishers", "POST", "/subscribe", "", 400, "no publishers yet"},
		{"an answer for no one", "POST", "/subscribe/answer?id=7", "{}", 400, `no subscriber "7"`},
		{"an answer without an id", "POST", "/subscribe/answer", "{}", 400, `no subscriber ""`},
		{"an unknown path", "GET", "/rooms", "", 404, ""},
		{"stats by POST", "POST", "/stats", "", 404, ""},
		{"publish by GET", "GET", "/publish", "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
				t.Errorf("%s %s: %s %q, want %d saying %q", tc.method, tc.path, resp.Status, b, tc.status, tc.says)
			}
		})
	}
	resp, err := http.Get(hs.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st sfuStats
	if err := decodeReply(resp, &st); err != nil || st.Publishers != 0 || st.Subscribers != 0 || st.CPUNs <= 0 {
		t.Errorf("stats after the bad requests: %+v, %v", st, err)
	}
}
