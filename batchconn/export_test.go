package batchconn

// GSOSegments is the most segments the Conns of this process put in one
// GSO send (the probed limit on Linux).
var GSOSegments = gsoSegments

// WriterParked reports whether the write gate's holder waits in the poller
// for room in the send buffer.
func (c *Conn) WriterParked() bool { return c.wg.parked() }

// GSORetryDatagrams is how many datagrams a destination turned off for GSO
// gets plain before it is offered GSO again.
const GSORetryDatagrams = gsoRetryDatagrams

// ReplySourceSupported says this build makes reply sources (Linux, the
// recvmmsg path).
const ReplySourceSupported = replySupported
