// Package wgbatch is a wireguard-go [conn.Bind] built on batchconn: the
// UDP of a WireGuard tunnel, batched both ways, with no copy on the send
// path and no allocation per packet.
//
// A VPN built on wireguard-go changes one line, the Bind it gives the
// device:
//
//	dev := device.NewDevice(tun, wgbatch.NewBind(), logger) // was conn.NewDefaultBind()
//
// The Bind opens a udp4 and a udp6 socket on one port, as wireguard-go's own
// StdNetBind does, each a [batchconn.Conn]. On Linux a ReceiveFunc reads
// with one recvmmsg, and UDP GRO, straight into wireguard-go's buffers,
// one packet each; a Send goes out as one sendmmsg whose runs of
// equal-size packets are UDP GSO sends gathered from wireguard-go's
// buffers, where StdNetBind copies each packet into one buffer first.
// Replies leave from the local address the peer's packets arrived on
// (sticky sockets, IP_PKTINFO and IPV6_PKTINFO), and [Endpoint]s of known
// peers are reused, so a ReceiveFunc allocates nothing. When batchconn turns
// GSO off because the device cannot segment, one Send returns
// [conn.ErrUDPGSODisabled], which wireguard-go logs.
//
// Elsewhere batchconn sends and receives one datagram per system call, with
// the same semantics, and SetMark does nothing, as StdNetBind's.
//
// The nested module's cmd/wgbench measures the Bind against StdNetBind over
// kernel TUNs in two network namespaces, and devicetest/run runs
// wireguard-go's own ./device tests with it.
package wgbatch
