//go:build !unix

package wgbatch

// msgTrunc is 0 where batchconn reads one datagram per call with the
// platform's ReadMsgUDPAddrPort, which reports a truncated datagram as an
// error rather than a flag.
const msgTrunc = 0
