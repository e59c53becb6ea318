package quicbatch

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/batchconn/batchconn/batchconn"
)

// A sender sends quic-go's packets through batchconn, whose write queue
// (batchconn.WithWriteQueue) does the queueing, batching and error
// accounting. What is left here is quicbatch's policy on top of it:
//
//   - which packets wait for their own result: long-header packets
//     (quic-go needs their errors during the handshake), every packet in
//     combining mode (WithAsync(false)), and every packet off Linux, where
//     one system call per packet leaves nothing to batch;
//   - what a queued packet's failure leads to: EPERM is retried once (the
//     first sendmsg on a new socket sometimes gets it, golang/go#63322);
//     EIO on a GSO buffer is resent split by the queue itself; EMSGSIZE
//     and every other error are dropped and counted (quic-go sees a lost
//     packet).
type sender struct {
	bc     *batchconn.Conn
	queued bool   // short-header packets go through bc's write queue
	gsoOff string // why Wrap turned batchconn's GSO off, if it did

	// queue puts a packet in bc's write queue (WriteMsgUDPAddrPort) and
	// sendOne sends one and returns its own error; tests replace them to
	// see every packet or to inject the kernel's error shapes.
	queue   func(b, oob []byte, addr netip.AddrPort) error
	sendOne func(b, oob []byte, addr netip.AddrPort) error
	ones    sync.Pool // *one: the Message WriteMessages takes

	st struct {
		writes          atomic.Uint64 // packets accepted
		alone, aloneLen atomic.Uint64 // combining mode: packets sent and their bytes
	}
}

// one is the single Message, and its buffer list, of a packet that waits
// for its own result behind a write queue.
type one struct {
	msgs [1]batchconn.Message
	bufs [1][]byte
}

func newSender(udp *net.UDPConn, cfg config) (*sender, error) {
	s := &sender{gsoOff: cfg.gsoOff}
	s.queued = cfg.async && cfg.queueDepth > 0 && cfg.queueBytes > 0 && runtime.GOOS == "linux"
	// quic-go picks each packet's source itself (packet info on a wildcard
	// server, none on a client): the Conn adds none of its own
	// (WithReplySource), so every packet leaves as quic-go asked.
	opts := []batchconn.Option{batchconn.WithGSO(cfg.gso), batchconn.WithGRO(cfg.gro), batchconn.WithReplySource(false)}
	if s.queued {
		opts = append(opts, batchconn.WithWriteQueue(cfg.queueBytes), batchconn.WithWriteQueueErrors(retryEPERM))
	}
	bc, err := batchconn.New(udp, opts...)
	if err != nil {
		return nil, err
	}
	s.bc = bc
	s.queue = func(b, oob []byte, addr netip.AddrPort) error {
		_, _, err := bc.WriteMsgUDPAddrPort(b, oob, addr)
		return err
	}
	s.sendOne = s.writeOne
	if !s.queued {
		s.sendOne = s.queue // group commit: each writer gets its own result
	}
	return s, nil
}

// retryEPERM is the write queue's error function: a queued packet that got
// EPERM is sent once more, as quic-go does for its first packet.
func retryEPERM(_ batchconn.Message, err error) bool { return errors.Is(err, syscall.EPERM) }

// writeOne sends one packet after the packets queued before it, and
// returns its own error: WriteMessages of one message.
func (s *sender) writeOne(b, oob []byte, addr netip.AddrPort) error {
	o, _ := s.ones.Get().(*one)
	if o == nil {
		o = new(one)
	}
	o.bufs[0] = b
	o.msgs[0] = batchconn.Message{Addr: addr, Buffers: o.bufs[:], OOB: oob}
	_, err := s.bc.WriteMessages(context.Background(), o.msgs[:], 0)
	*o = one{}
	s.ones.Put(o)
	return err
}

func isLongHeader(b []byte) bool { return len(b) > 0 && b[0]&0x80 != 0 }

// write sends or queues one packet: the packet's own error, or nil once
// it was queued.
func (s *sender) write(b, oob []byte, ua *net.UDPAddr) error {
	addr := addrPort(ua)
	var err error
	if s.queued && !isLongHeader(b) {
		err = s.queue(b, oob, addr)
	} else {
		err = s.sendOne(b, oob, addr)
		if err == nil && !s.queued {
			s.st.alone.Add(1)
			s.st.aloneLen.Add(uint64(len(b)))
		}
	}
	if err == nil {
		s.st.writes.Add(1)
	}
	return err
}

// flush waits for the queue; it reports only a closed socket, the one
// error that is kept (see the package docs).
func (s *sender) flush() error {
	if err := s.bc.Flush(context.Background()); errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return nil
}

func (s *sender) stats() Stats {
	bs := s.bc.Stats()
	st := Stats{
		Writes:      s.st.writes.Load(),
		Queued:      bs.QueueWrites,
		QueueWaits:  bs.QueueWaits,
		Batches:     bs.QueueBatches,
		Syscalls:    bs.Syscalls,
		Messages:    bs.Messages,
		Bytes:       bs.Bytes,
		MaxBatch:    bs.QueueMaxBatch,
		GSOSplits:   bs.QueueGSOSplits,
		DropMsgSize: bs.QueueFailures.MessageSize,
		Dropped:     bs.QueueFailures.Total() - bs.QueueFailures.MessageSize,
		GSO:         s.bc.GSOEnabled(),
		GSOOff:      cmp.Or(s.gsoOff, bs.GSOOff),
	}
	if !s.queued {
		// batchconn counts the packets group commit combined, not those
		// a writer sent alone with the UDPConn's own method, one system
		// call each.
		alone, combined := s.st.alone.Load(), bs.Messages
		st.Syscalls += alone - min(alone, combined)
		st.Messages, st.Bytes = alone, s.st.aloneLen.Load()
	}
	return st
}
