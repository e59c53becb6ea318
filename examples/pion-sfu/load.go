package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// loadConfig is what the load asks of the SFU.
type loadConfig struct {
	server      string        // the SFU's signalling URL
	publishers  int           // PeerConnections sending one video track each
	subscribers int           // PeerConnections receiving every publisher's track
	rate        int           // RTP packets per second per publisher
	duration    time.Duration // of the measured window
	size        int           // RTP payload bytes
}

// fps is the publishers' frame rate: each frame's packets are sent back to
// back, as a video encoder's packetizer hands them over.
const fps = 30

// minSize is the smallest payload: the publisher's index and the packet's
// 32-bit counter.
const minSize = 8

// loadResult is what a load run measured. The window is the packets the
// publishers sent after every subscriber had received from every
// publisher; the SFU figures are the SFU's own counters and CPU time
// (GET /stats) from the window's start until the subscribers stopped
// receiving.
type loadResult struct {
	Publishers  int     `json:"publishers"`
	Subscribers int     `json:"subscribers"`
	Rate        int     `json:"rate"`
	Seconds     float64 `json:"seconds"`    // from the window's first packet sent to its last
	Sent        uint64  `json:"sent"`       // packets the publishers sent in the window
	Expected    uint64  `json:"expected"`   // sent × subscribers
	Received    uint64  `json:"received"`   // distinct window packets the subscribers received
	Lost        uint64  `json:"lost"`       // expected - received
	Duplicates  uint64  `json:"duplicates"` // packets received more than once
	Reordered   uint64  `json:"reordered"`  // packets received after a later one of their stream
	SFUCPUNs    int64   `json:"sfu_cpu_ns"`
	SFUReceived uint64  `json:"sfu_received"`
	SFUForward  uint64  `json:"sfu_forwarded"`
	// On a Conn: datagrams it sent in batches, in how many system calls
	// and GSO sends, and queued datagrams that failed.
	SFUBatched       uint64 `json:"sfu_batched"`
	SFUBatchSyscalls uint64 `json:"sfu_batch_syscalls"`
	SFUGSOBatches    uint64 `json:"sfu_gso_batches"`
	SFUQueueFailures uint64 `json:"sfu_queue_failures"`
}

func (r *loadResult) String() string {
	conn := ""
	if r.SFUBatched > 0 {
		conn = fmt.Sprintf("; its Conn sent %d datagrams in batches, in %d system calls (%d GSO sends), %d queued ones failed",
			r.SFUBatched, r.SFUBatchSyscalls, r.SFUGSOBatches, r.SFUQueueFailures)
	}
	return fmt.Sprintf("%d publishers x %d subscribers, %d packets/s each, %.1fs: sent %d, subscribers received %d of %d (lost %d, %d duplicates, %d reordered); "+
		"the SFU read %d and forwarded %d packets (%.0f/s) with %.2fs of CPU time: %.2fµs per forwarded packet",
		r.Publishers, r.Subscribers, r.Rate, r.Seconds, r.Sent, r.Received, r.Expected, r.Lost, r.Duplicates, r.Reordered,
		r.SFUReceived, r.SFUForward, forwardRate(*r), float64(r.SFUCPUNs)/1e9, cpuPerForward(*r)/1e3) + conn
}

// peerReadBuffer is each load peer's socket receive buffer: a subscriber
// stands for a browser on a host of its own, which the SFU's bursts must
// not overflow because the load shares the SFU's machine.
const peerReadBuffer = 4 << 20

// newPeer makes a PeerConnection of the load's pion on a UDP socket of its
// own on loopback (through an ICE UDP mux, as the SFU's), with no
// interceptors, so that subscribers send no NACKs and the SFU retransmits
// nothing: every loss is seen as such.
func newPeer() (*webrtc.PeerConnection, ice.UDPMux, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	if err := conn.SetReadBuffer(peerReadBuffer); err != nil {
		conn.Close()
		return nil, nil, err
	}
	mux := webrtc.NewICEUDPMux(nil, conn)
	se := settings(mux)
	var m webrtc.MediaEngine
	if err := m.RegisterDefaultCodecs(); err != nil {
		mux.Close()
		return nil, nil, err
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&m), webrtc.WithInterceptorRegistry(&interceptor.Registry{}), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		mux.Close()
		return nil, nil, err
	}
	return pc, mux, nil
}

// runLoad connects the publishers and subscribers to the SFU, sends, and
// checks every packet every subscriber receives.
func runLoad(ctx context.Context, cfg loadConfig) (*loadResult, error) {
	l := &load{cfg: cfg, connected: make(chan struct{}, cfg.publishers+cfg.subscribers), failedCh: make(chan struct{})}
	defer l.close()
	for i := range cfg.publishers {
		if err := l.publish(); err != nil {
			return nil, fmt.Errorf("publisher %d: %w", i, err)
		}
	}
	for i := range cfg.subscribers {
		if err := l.subscribe(); err != nil {
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
	}
	if err := l.waitConnected(ctx); err != nil {
		return nil, err
	}
	if err := l.prime(ctx); err != nil {
		return nil, err
	}
	before, err := l.sfuStats()
	if err != nil {
		return nil, err
	}
	seconds, err := l.send(ctx)
	if err != nil {
		return nil, err
	}
	l.drain(ctx)
	after, err := l.sfuStats()
	if err != nil {
		return nil, err
	}
	l.close()
	return l.result(seconds, before, after)
}

type load struct {
	cfg       loadConfig
	muxes     []ice.UDPMux
	pubs      []*publisher
	subs      []*subscriber
	connected chan struct{}
	failed    atomic.Pointer[string] // the first failure (fail)
	failedCh  chan struct{}          // closed at the first failure
	closeOnce sync.Once
}

type publisher struct {
	index       int // the SFU's
	pc          *webrtc.PeerConnection
	track       *webrtc.TrackLocalStaticRTP
	next        uint32 // the next packet's counter
	first, stop uint32 // the window: counters first to stop-1
	payload     []byte
}

type subscriber struct {
	pc      *webrtc.PeerConnection
	streams []*stream // by publisher
	readers sync.WaitGroup
}

// stream is what a subscriber receives of one publisher's track.
type stream struct {
	received atomic.Uint64 // every packet, for priming and draining
	started  atomic.Bool

	// The stream's reader goroutine's own; read after it ends.
	seen                  []uint64 // bit n: the packet with extended sequence number n arrived
	highest               int64    // the highest extended sequence number, -1 before the first
	duplicates, reordered uint64
	bad                   error // the first packet whose sequence number or payload was wrong
}

// watch counts pc as connected once, and records a failure.
func (l *load) watch(pc *webrtc.PeerConnection, who string) {
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { l.connected <- struct{}{} })
		case webrtc.PeerConnectionStateFailed:
			l.fail(who + ": the PeerConnection failed")
		}
	})
}

// fail records msg if it is the load's first failure.
func (l *load) fail(msg string) {
	if l.failed.CompareAndSwap(nil, &msg) {
		close(l.failedCh)
	}
}

func (l *load) publish() error {
	pc, mux, err := newPeer()
	if err != nil {
		return err
	}
	l.muxes = append(l.muxes, mux)
	p := &publisher{pc: pc, payload: make([]byte, l.cfg.size)}
	l.pubs = append(l.pubs, p)
	l.watch(pc, fmt.Sprintf("publisher %d", len(l.pubs)-1))
	if p.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "load"); err != nil {
		return err
	}
	sender, err := pc.AddTrack(p.track)
	if err != nil {
		return err
	}
	go drainRTCP(sender)
	offer, err := negotiate(pc, nil)
	if err != nil {
		return err
	}
	var reply publishReply
	if err := l.post("/publish", offer, &reply); err != nil {
		return err
	}
	if reply.Index != len(l.pubs)-1 {
		return fmt.Errorf("the SFU numbered this publisher %d, want %d: is another load running against it?", reply.Index, len(l.pubs)-1)
	}
	p.index = reply.Index
	return pc.SetRemoteDescription(reply.Answer)
}

func (l *load) subscribe() error {
	pc, mux, err := newPeer()
	if err != nil {
		return err
	}
	l.muxes = append(l.muxes, mux)
	s := &subscriber{pc: pc}
	for range l.cfg.publishers {
		s.streams = append(s.streams, &stream{highest: -1})
	}
	l.subs = append(l.subs, s)
	who := fmt.Sprintf("subscriber %d", len(l.subs)-1)
	l.watch(pc, who)
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		k, err := strconv.Atoi(strings.TrimPrefix(t.StreamID(), "pub-"))
		if err != nil || k < 0 || k >= len(s.streams) || !s.streams[k].started.CompareAndSwap(false, true) {
			l.fail(fmt.Sprintf("%s: an unexpected track, stream %q", who, t.StreamID()))
			return
		}
		s.readers.Add(1)
		go func() {
			defer s.readers.Done()
			s.streams[k].read(t, k, l.cfg.size)
		}()
	})
	var reply subscribeReply
	if err := l.post("/subscribe", nil, &reply); err != nil {
		return err
	}
	answer, err := negotiate(pc, &reply.Offer)
	if err != nil {
		return err
	}
	return l.post("/subscribe/answer?id="+reply.ID, answer, nil)
}

// drainRTCP reads the RTCP that reaches sender until it closes: RTCP must
// be read for the interceptors (reports, NACKs) to run.
func drainRTCP(sender *webrtc.RTPSender) {
	b := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(b); err != nil {
			return
		}
	}
}

// post sends in as JSON to the SFU's path and decodes its reply into out.
func (l *load) post(path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := http.Post(l.cfg.server+path, "application/json", body)
	if err != nil {
		return err
	}
	return decodeReply(resp, out)
}

func decodeReply(resp *http.Response, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", resp.Request.URL, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (l *load) sfuStats() (*sfuStats, error) {
	resp, err := http.Get(l.cfg.server + "/stats")
	if err != nil {
		return nil, err
	}
	var st sfuStats
	return &st, decodeReply(resp, &st)
}

// connectTimeout bounds ICE and DTLS for all the PeerConnections, and
// priming.
const connectTimeout = 30 * time.Second

func (l *load) waitConnected(ctx context.Context) error {
	timeout := time.After(connectTimeout)
	for n := 0; n < len(l.pubs)+len(l.subs); n++ {
		select {
		case <-l.connected:
		case <-l.failedCh:
			return errors.New(*l.failed.Load())
		case <-timeout:
			return fmt.Errorf("only %d of %d PeerConnections connected within %v", n, len(l.pubs)+len(l.subs), connectTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// prime has every publisher send a packet every 20 ms until every
// subscriber has received from every publisher: pion starts a track only
// on its first packet, at the SFU and at each subscriber.
func (l *load) prime(ctx context.Context) error {
	deadline := time.Now().Add(connectTimeout)
	for !l.primed() {
		if msg := l.failed.Load(); msg != nil {
			return errors.New(*msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every subscriber received from every publisher within %v", connectTimeout)
		}
		for _, p := range l.pubs {
			if err := p.send(); err != nil {
				return err
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (l *load) primed() bool {
	for _, s := range l.subs {
		for _, st := range s.streams {
			if st.received.Load() == 0 {
				return false
			}
		}
	}
	return true
}

// send runs the window: every publisher sends rate packets per second,
// in frames of fps, for the duration. It returns how long it took.
func (l *load) send(ctx context.Context) (float64, error) {
	start := time.Now()
	errs := make(chan error, len(l.pubs))
	for _, p := range l.pubs {
		go func() { errs <- p.run(ctx, start, l.cfg.rate, l.cfg.duration) }()
	}
	var err error
	for range l.pubs {
		err = errors.Join(err, <-errs)
	}
	return time.Since(start).Seconds(), err
}

// run sends the publisher's window, frame by frame.
func (p *publisher) run(ctx context.Context, start time.Time, rate int, d time.Duration) error {
	p.first = p.next
	total := int(float64(rate) * d.Seconds())
	for frame, sent := 0, 0; sent < total; frame++ {
		due := min(total, rate*(frame+1)/fps)
		for ; sent < due; sent++ {
			if err := p.send(); err != nil {
				return err
			}
		}
		select {
		case <-time.After(time.Until(start.Add(time.Duration(frame+1) * time.Second / fps))):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.stop = p.next
	return nil
}

// send sends the publisher's next packet: sequence number the counter's
// low 16 bits, and a payload that says who sent it and which it is.
func (p *publisher) send() error {
	c := p.next
	fillPayload(p.payload, uint32(p.index), c)
	pkt := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(c), Timestamp: c * 90, SSRC: 1},
		Payload: p.payload,
	}
	if err := p.track.WriteRTP(&pkt); err != nil {
		return err
	}
	p.next++
	return nil
}

// fillPayload writes the publisher's index and the packet's counter,
// then bytes that depend on both.
func fillPayload(b []byte, pub, counter uint32) {
	binary.BigEndian.PutUint32(b, pub)
	binary.BigEndian.PutUint32(b[4:], counter)
	x := byte(counter*7 + pub*13)
	for i := minSize; i < len(b); i++ {
		b[i] = x + byte(i)*131
	}
}

// checkPayload says what is wrong with the payload of publisher pub's
// packet counter, or nil.
func checkPayload(b []byte, pub, counter uint32, size int) error {
	if len(b) != size {
		return fmt.Errorf("a payload of %d bytes, want %d", len(b), size)
	}
	if got := binary.BigEndian.Uint32(b); got != pub {
		return fmt.Errorf("a packet of publisher %d in publisher %d's track", got, pub)
	}
	if got := binary.BigEndian.Uint32(b[4:]); got != counter {
		return fmt.Errorf("sequence number %d (extended %d) on the payload of packet %d", uint16(counter), counter, got)
	}
	x := byte(counter*7 + pub*13)
	for i := minSize; i < len(b); i++ {
		if b[i] != x+byte(i)*131 {
			return fmt.Errorf("packet %d: payload byte %d is %#x, want %#x", counter, i, b[i], x+byte(i)*131)
		}
	}
	return nil
}

// read checks every packet of publisher pub's track until it ends.
func (st *stream) read(t *webrtc.TrackRemote, pub, size int) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		st.received.Add(1)
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			st.fail(err)
			continue
		}
		st.check(&pkt, pub, size)
	}
}

// check checks one packet of publisher pub's track: its extended sequence
// number must be the counter its payload carries, and the payload the
// publisher's. It counts the packet as new, duplicate or reordered.
func (st *stream) check(pkt *rtp.Packet, pub, size int) {
	ext := st.extend(pkt.SequenceNumber)
	if err := checkPayload(pkt.Payload, uint32(pub), uint32(ext), size); err != nil {
		st.fail(err)
		return
	}
	w, bit := ext/64, uint64(1)<<(ext%64)
	for int64(len(st.seen)) <= w {
		st.seen = append(st.seen, 0)
	}
	switch {
	case st.seen[w]&bit != 0:
		st.duplicates++
		return
	case ext < st.highest:
		st.reordered++
	}
	st.seen[w] |= bit
	st.highest = max(st.highest, ext)
}

func (st *stream) fail(err error) {
	if st.bad == nil {
		st.bad = err
	}
}

// extend turns a 16-bit RTP sequence number into the extended one
// nearest the highest seen, as an RTP receiver does (RFC 3550 A.1).
func (st *stream) extend(seq uint16) int64 {
	if st.highest < 0 {
		return int64(seq)
	}
	ext := st.highest&^0xffff | int64(seq)
	switch {
	case ext < st.highest-0x8000:
		ext += 0x10000
	case ext > st.highest+0x8000 && ext >= 0x10000:
		ext -= 0x10000
	}
	return ext
}

// drain waits until the subscribers have received nothing for 300 ms (at
// most 5 s): what the SFU still had queued has arrived.
func (l *load) drain(ctx context.Context) {
	var last uint64
	quiet := 0
	for deadline := time.Now().Add(5 * time.Second); quiet < 3 && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
		var n uint64
		for _, s := range l.subs {
			for _, st := range s.streams {
				n += st.received.Load()
			}
		}
		if n == last {
			quiet++
		} else {
			quiet, last = 0, n
		}
	}
}

// close closes every PeerConnection and waits for the subscribers'
// readers.
func (l *load) close() {
	l.closeOnce.Do(func() {
		for _, p := range l.pubs {
			p.pc.Close()
		}
		for _, s := range l.subs {
			s.pc.Close()
			s.readers.Wait()
		}
		for _, m := range l.muxes {
			m.Close()
		}
	})
}

// result counts what arrived of the window. A packet whose sequence
// number or payload was wrong fails the run.
func (l *load) result(seconds float64, before, after *sfuStats) (*loadResult, error) {
	r := &loadResult{Publishers: len(l.pubs), Subscribers: len(l.subs), Rate: l.cfg.rate, Seconds: seconds,
		SFUCPUNs: after.CPUNs - before.CPUNs, SFUReceived: after.Received - before.Received, SFUForward: after.Forwarded - before.Forwarded,
		SFUBatched: after.BatchedMessages - before.BatchedMessages, SFUBatchSyscalls: after.BatchSyscalls - before.BatchSyscalls,
		SFUGSOBatches: after.GSOBatches - before.GSOBatches, SFUQueueFailures: after.QueueFailures - before.QueueFailures}
	for _, p := range l.pubs {
		r.Sent += uint64(p.stop - p.first)
	}
	for i, s := range l.subs {
		for k, st := range s.streams {
			if st.bad != nil {
				return nil, fmt.Errorf("subscriber %d, publisher %d's track: %w", i, k, st.bad)
			}
			p := l.pubs[k]
			r.Received += countBits(st.seen, uint64(p.first), uint64(p.stop))
			r.Duplicates += st.duplicates
			r.Reordered += st.reordered
		}
	}
	r.Expected = r.Sent * uint64(len(l.subs))
	r.Lost = r.Expected - r.Received
	return r, nil
}

// countBits counts the bits of set from first to stop-1.
func countBits(set []uint64, first, stop uint64) uint64 {
	var n uint64
	for i := first; i < stop; i++ {
		if w := i / 64; w < uint64(len(set)) && set[w]&(1<<(i%64)) != 0 {
			n++
		}
	}
	return n
}
