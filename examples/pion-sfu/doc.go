// Command pion-sfu is a pion/webrtc v4 SFU, written the way the simplest
// pion SFUs are (pion's sfu-ws and broadcast examples), run on a
// *batchconn.Conn: every PeerConnection on one UDP port through
// webrtc.NewICEUDPMux, and per publisher one goroutine forwarding each RTP
// packet to every subscriber with TrackLocalStaticRTP.WriteRTP. The one
// change is the conn handed to the mux:
//
//	conn, err := batchconn.Listen("udp4", ":50000", batchconn.WithWriteQueue(1<<20)) // was net.ListenUDP
//	var se webrtc.SettingEngine
//	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
//	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
//
// WriteRTP writes one SRTP datagram per subscriber, one after the other,
// from the forwarding goroutine: a single writer, so group commit has
// nothing to gather, and a Conn alone sends as a *net.UDPConn does. With
// WithWriteQueue each write is copied into the Conn's queue and returns,
// and the queue's goroutine sends what has gathered in batches through
// sendmmsg, each subscriber's packets of a video frame grouped into UDP
// GSO sends.
//
// serve runs the SFU on the socket -socket names (udpconn, conn,
// conn-queue, conn-queue-gro), with HTTP signalling (whole SDP offers and
// answers in JSON); load connects publishers and subscribers to it (pion
// PeerConnections, each on a loopback socket of its own), sends RTP in
// video-like frames, and every subscriber checks every packet: its RTP
// sequence number, extended across the 16-bit wrap, must be the packet's
// counter in the payload, and the payload must be the publisher's; loss,
// duplicates and reordering are counted. load also reads the SFU's own
// counters and CPU time (GET /stats) around the measured window:
//
//	go run . serve -socket conn-queue &
//	go run . load -publishers 1 -subscribers 50 -rate 300
//
// bench runs both as child processes, a fresh SFU per socket and round,
// in configurations of publishers × subscribers at a packet rate, modes
// alternating round by round on internal/bench, and reports the SFU
// process's CPU time per forwarded packet (getrusage, all threads),
// packets forwarded per second and the fraction delivered, as medians of
// same-round ratios against udpconn, with issue 24's targets:
//
//	go run . bench
//
// It is its own module, so that the library's go.mod does not gain pion.
package main
