package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/bench"
)

// sfu is a selective forwarding unit the way the simplest pion SFUs are
// written (pion's sfu-ws and broadcast examples): every PeerConnection on
// one UDP port through webrtc.NewICEUDPMux, pion's default codecs and
// interceptors, and per publisher one goroutine that reads its track's RTP
// and writes each packet to a TrackLocalStaticRTP that every subscriber's
// PeerConnection sends (WriteRTP: one encrypted datagram per subscriber,
// written one after the other from that goroutine).
//
// Signalling is HTTP with whole (non-trickle) SDP in JSON:
//
//	POST /publish              an offer with one video track -> {"index": k, "answer": ...}
//	POST /subscribe            -> {"id": ..., "offer": ...} with every publisher's track
//	POST /subscribe/answer?id= the subscriber's answer
//	GET  /stats                the SFU's counters and CPU time (sfuStats)
//
// A subscriber gets the tracks of the publishers there when it subscribes
// (there is no renegotiation), so the load connects its publishers first.
type sfu struct {
	api  *webrtc.API
	mux  ice.UDPMux
	conn *batchconn.Conn // the socket, if it is a Conn: for its Stats

	publishing  sync.Mutex // held by a publish from start to end
	mu          sync.Mutex
	tracks      []*track
	pending     map[string]*webrtc.PeerConnection // subscribers waiting for their answer
	pcs         []*webrtc.PeerConnection
	subscribers int
	nextID      int

	received  atomic.Uint64 // RTP packets read from publishers
	forwarded atomic.Uint64 // RTP packets written to subscribers
}

// track is one publisher's video, as the SFU sends it on.
type track struct {
	local       *webrtc.TrackLocalStaticRTP
	subscribers atomic.Int64 // PeerConnections sending it
}

// sfuStats is what GET /stats returns.
type sfuStats struct {
	CPUNs       int64  `json:"cpu_ns"` // the process's user+system CPU time so far (getrusage)
	Received    uint64 `json:"received"`
	Forwarded   uint64 `json:"forwarded"`
	Publishers  int    `json:"publishers"`
	Subscribers int    `json:"subscribers"`
	// On a Conn, from its Stats: datagrams sent in batches (by group
	// commit or the write queue), the system calls and GSO sends they took.
	// A write sent alone with the UDPConn's own call is not counted.
	BatchedMessages uint64 `json:"batched_messages"`
	BatchSyscalls   uint64 `json:"batch_syscalls"`
	GSOBatches      uint64 `json:"gso_batches"`
	QueueFailures   uint64 `json:"queue_failures"`
}

// newSFU makes an SFU whose PeerConnections all use conn, through one
// ICE UDP mux. conn is the one thing that differs between the sockets
// compared: a *net.UDPConn or a *batchconn.Conn.
func newSFU(conn net.PacketConn) *sfu {
	mux := webrtc.NewICEUDPMux(nil, conn)
	se := settings(mux)
	bc, _ := conn.(*batchconn.Conn)
	return &sfu{
		api:     webrtc.NewAPI(webrtc.WithSettingEngine(se)), // pion's default codecs and interceptors
		mux:     mux,
		conn:    bc,
		pending: map[string]*webrtc.PeerConnection{},
	}
}

// settings are the SFU's and the load's: every PeerConnection on the one
// ICE UDP mux, IPv4, on loopback (where the benchmark runs), no mDNS.
func settings(mux ice.UDPMux) webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// maxBody bounds a signalling request's body: an SDP is a few KiB.
const maxBody = 1 << 20

func (s *sfu) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var v any
	var err error
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/publish":
		v, err = s.publish(r.Body)
	case r.Method == http.MethodPost && r.URL.Path == "/subscribe":
		v, err = s.subscribe()
	case r.Method == http.MethodPost && r.URL.Path == "/subscribe/answer":
		err = s.answer(r.URL.Query().Get("id"), r.Body)
	case r.Method == http.MethodGet && r.URL.Path == "/stats":
		v, err = s.stats()
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

type publishReply struct {
	Index  int                       `json:"index"`
	Answer webrtc.SessionDescription `json:"answer"`
}

// publish answers a publisher's offer and starts forwarding its track.
func (s *sfu) publish(body io.Reader) (*publishReply, error) {
	var offer webrtc.SessionDescription
	if err := json.NewDecoder(body).Decode(&offer); err != nil {
		return nil, err
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.Close()
		return nil, err
	}
	// One publish at a time, so that the track's number is its index once
	// it is added, and a publisher whose negotiation fails leaves nothing.
	s.publishing.Lock()
	defer s.publishing.Unlock()
	s.mu.Lock()
	k := len(s.tracks)
	s.mu.Unlock()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "pub-"+strconv.Itoa(k))
	if err != nil {
		pc.Close()
		return nil, err
	}
	t := &track{local: local}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { s.forward(remote, t) })
	answer, err := negotiate(pc, &offer)
	if err != nil {
		pc.Close()
		return nil, err
	}
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	s.pcs = append(s.pcs, pc)
	s.mu.Unlock()
	return &publishReply{Index: k, Answer: *answer}, nil
}

// forward is the SFU's work: every RTP packet of a publisher's track,
// written to every subscriber of it (sfu-ws's loop).
func (s *sfu) forward(remote *webrtc.TrackRemote, t *track) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		s.received.Add(1)
		subs := t.subscribers.Load()
		if err := t.local.WriteRTP(&pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			continue // a subscriber that went away; the others got it
		}
		s.forwarded.Add(uint64(subs))
	}
}

type subscribeReply struct {
	ID    string                    `json:"id"`
	Offer webrtc.SessionDescription `json:"offer"`
}

// subscribe offers a new subscriber every publisher's track.
func (s *sfu) subscribe() (*subscribeReply, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	tracks := append([]*track(nil), s.tracks...)
	s.nextID++
	id := strconv.Itoa(s.nextID)
	s.pcs = append(s.pcs, pc)
	s.mu.Unlock()
	if len(tracks) == 0 {
		pc.Close()
		return nil, errors.New("no publishers yet")
	}
	for _, t := range tracks {
		sender, err := pc.AddTrack(t.local)
		if err != nil {
			pc.Close()
			return nil, err
		}
		go drainRTCP(sender)
	}
	offer, err := negotiate(pc, nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	s.mu.Lock()
	s.pending[id] = pc
	s.mu.Unlock()
	// A subscriber counts for forwarded from when it is connected until it
	// fails or closes.
	var counted atomic.Bool
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		var d int64
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if counted.CompareAndSwap(false, true) {
				d = 1
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			if counted.CompareAndSwap(true, false) {
				d = -1
			}
		}
		for _, t := range tracks {
			t.subscribers.Add(d)
		}
	})
	return &subscribeReply{ID: id, Offer: *offer}, nil
}

// answer takes a subscriber's answer to its offer.
func (s *sfu) answer(id string, body io.Reader) error {
	s.mu.Lock()
	pc := s.pending[id]
	delete(s.pending, id)
	if pc != nil {
		s.subscribers++
	}
	s.mu.Unlock()
	if pc == nil {
		return fmt.Errorf("no subscriber %q waiting for an answer", id)
	}
	var answer webrtc.SessionDescription
	if err := json.NewDecoder(body).Decode(&answer); err != nil {
		return err
	}
	return pc.SetRemoteDescription(answer)
}

// negotiate answers offer, or makes an offer when it is nil, and returns
// the local description once ICE gathering is complete (no trickle): the
// SFU's side and the load's alike.
func negotiate(pc *webrtc.PeerConnection, offer *webrtc.SessionDescription) (*webrtc.SessionDescription, error) {
	var desc webrtc.SessionDescription
	var err error
	if offer != nil {
		if err = pc.SetRemoteDescription(*offer); err == nil {
			desc, err = pc.CreateAnswer(nil)
		}
	} else {
		desc, err = pc.CreateOffer(nil)
	}
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return nil, err
	}
	<-gathered
	return pc.LocalDescription(), nil
}

func (s *sfu) stats() (*sfuStats, error) {
	cpu, err := bench.ProcessCPU()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &sfuStats{CPUNs: cpu.Nanoseconds(), Received: s.received.Load(), Forwarded: s.forwarded.Load(),
		Publishers: len(s.tracks), Subscribers: s.subscribers}
	if s.conn != nil {
		cs := s.conn.Stats()
		st.BatchedMessages, st.BatchSyscalls, st.GSOBatches = cs.Messages, cs.Syscalls, cs.GSOBatches
		st.QueueFailures = cs.QueueFailures.Total()
	}
	return st, nil
}

// Close closes every PeerConnection, then the mux and its socket.
func (s *sfu) Close() error {
	s.mu.Lock()
	pcs := s.pcs
	s.pcs = nil
	s.mu.Unlock()
	var errs []error
	for _, pc := range pcs {
		errs = append(errs, pc.Close())
	}
	return errors.Join(append(errs, s.mux.Close())...)
}
