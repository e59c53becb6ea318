//go:build !linux

package quicbatch

import (
	"net"
	"sync/atomic"
	"time"
)

// sender off Linux is a pass-through: one WriteMsgUDP per packet. quic-go
// has no GSO there and reads one packet per ReadBatch on Darwin, so a
// sendmmsg batcher would have little to combine.
type sender struct {
	udp    *net.UDPConn
	closed atomic.Bool
	st     struct {
		writes, messages, bytes atomic.Uint64
	}
}

func newSender(udp *net.UDPConn, _ config) (*sender, error) {
	return &sender{udp: udp}, nil
}

func (s *sender) write(b, oob []byte, ua *net.UDPAddr) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	s.st.writes.Add(1)
	if _, _, err := s.udp.WriteMsgUDP(b, oob, ua); err != nil {
		return err
	}
	s.st.messages.Add(1)
	s.st.bytes.Add(uint64(len(b)))
	return nil
}

func (s *sender) setWriteDeadline(t time.Time) error { return s.udp.SetWriteDeadline(t) }

func (s *sender) flush() error { return nil }

func (s *sender) close() error {
	if s.closed.Swap(true) {
		return net.ErrClosed
	}
	return s.udp.Close()
}

func (s *sender) stats() Stats {
	n := s.st.messages.Load()
	return Stats{
		Writes:   s.st.writes.Load(),
		Batches:  n,
		Syscalls: n,
		Messages: n,
		Bytes:    s.st.bytes.Load(),
		MaxBatch: min(n, 1),
		GSOOff:   "not Linux",
	}
}
