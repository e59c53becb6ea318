//go:build !linux || batchconn_sendmsg

package batchconn

// gather returns m's datagram as one buffer, for the paths that send one
// buffer per message. It copies into *scratch only when m has several
// non-empty parts.
func gather(scratch *[]byte, m *Message) []byte {
	var one []byte
	parts := 0
	for _, b := range m.Buffers {
		if len(b) > 0 {
			one = b
			parts++
		}
	}
	if parts <= 1 {
		return one
	}
	*scratch = (*scratch)[:0]
	for _, b := range m.Buffers {
		*scratch = append(*scratch, b...)
	}
	return *scratch
}
