//go:build !unix

package batchconn

import (
	"context"
)

// recvState holds a Conn's reusable receive state on platforms without Unix
// socket APIs (Windows, and the rest): one ReadMsgUDPAddrPort per call.
//
// These platforms give no way to try a read without waiting, so each call
// returns one datagram, and a non-blocking call may still wait for it;
// flags are not passed on.
type recvState struct {
	c       *Conn
	scratch []byte
}

func (s *recvState) init(c *Conn) { s.c = c }

// recv receives one datagram into msgs[0]. The caller holds the read gate.
// Context cancellation is armed up front, because the wait happens inside
// the net package.
func (c *Conn) recv(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	s := &c.rx
	c.rd.ctx = ctx
	c.rd.arm()
	m := &msgs[0]
	b := s.buffer(m)
	n, oobn, rflags, from, err := c.udp.ReadMsgUDPAddrPort(b, m.OOB)
	c.rstats.syscalls.Add(1)
	if err != nil {
		return 0, c.readError(c.waitErr(ctx, unwrapOp(err)))
	}
	if len(m.Buffers) != 1 {
		scatter(m.Buffers, b[:n])
	}
	m.N, m.NN, m.Flags, m.Addr = n, oobn, rflags, from
	c.rstats.messages.Add(1)
	c.rstats.bytes.Add(uint64(n))
	return 1, nil
}

// buffer returns where to read m's datagram: its one buffer, or scratch
// room as large as all of them, scattered afterwards.
func (s *recvState) buffer(m *Message) []byte {
	if len(m.Buffers) == 1 {
		return m.Buffers[0]
	}
	size := 0
	for _, b := range m.Buffers {
		size += len(b)
	}
	if cap(s.scratch) < size {
		s.scratch = make([]byte, size)
	}
	return s.scratch[:size]
}
