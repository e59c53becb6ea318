package batchconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/batchconn/batchconn/batchconn"
)

// buffersOf returns one payload per size, stamped with its index.
func buffersOf(sizes ...int) [][]byte {
	bufs := make([][]byte, len(sizes))
	for i, size := range sizes {
		bufs[i] = payload(i, size)
	}
	return bufs
}

// TestWriteBuffersToIsWriteMessagesToOneDestination sends datagrams to one
// destination through WriteBuffersTo and checks that they arrive, in order
// and whole, sent as WriteMessages would send them (in GSO runs where the
// kernel has GSO).
func TestWriteBuffersToIsWriteMessagesToOneDestination(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			r := receiver(t, network)
			c := listen(t, network)
			sizes := append(gsoSizes(40, 1200), 500, 0, 1200)
			bufs := buffersOf(sizes...)
			n, err := c.WriteBuffersTo(context.Background(), bufs, nil, r.Addr(), 0)
			if n != len(bufs) || err != nil {
				t.Fatalf("WriteBuffersTo = %d, %v; want %d, nil", n, err, len(bufs))
			}
			got := r.Collect(len(bufs), recvWait)
			if len(got) != len(bufs) {
				t.Fatalf("%d datagrams arrived, want %d", len(got), len(bufs))
			}
			for i := range bufs {
				if !bytes.Equal(got[i].Payload, bufs[i]) || got[i].From != addrOf(c) {
					t.Fatalf("datagram %d: %d bytes from %v, want %d bytes from %v", i, len(got[i].Payload), got[i].From, len(bufs[i]), addrOf(c))
				}
			}
			if st := c.Stats(); c.GSOEnabled() && st.GSOBatches == 0 {
				t.Errorf("40 equal datagrams to one destination made no GSO send (Stats %+v)", st)
			}
		})
	}
}

// TestWriteBuffersToBadInput gives WriteBuffersTo what WriteMessages
// refuses and checks that it reports the same, loses nothing, and never
// panics.
func TestWriteBuffersToBadInput(t *testing.T) {
	ctx := context.Background()
	r := receiver(t, "udp4")
	c := listen(t, "udp4")
	if n, err := c.WriteBuffersTo(ctx, nil, nil, r.Addr(), 0); n != 0 || err != nil {
		t.Errorf("no buffers: %d, %v; want 0, nil", n, err)
	}
	//lint:ignore SA1012 a nil Context is the bad input under test
	if n, err := c.WriteBuffersTo(nil, buffersOf(10), nil, r.Addr(), 0); n != 0 || err == nil { //nolint:staticcheck
		t.Errorf("nil Context: %d, %v; want an error", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := c.WriteBuffersTo(cancelled, buffersOf(10), nil, r.Addr(), 0); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Context: %d, %v; want context.Canceled", n, err)
	}
	for _, dst := range []netip.AddrPort{{}, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)} {
		n, err := c.WriteBuffersTo(ctx, buffersOf(10, 10), nil, dst, 0)
		_, want := c.WriteMessages(ctx, []batchconn.Message{{Addr: dst, Buffers: buffersOf(10)}}, 0)
		if n != 0 || err == nil || errShape(err) != errShape(want) {
			t.Errorf("destination %v: %d, %v; want 0 and WriteMessages' error %v", dst, n, err, want)
		}
	}
	// An oversized datagram ends the call before it; the next call,
	// starting at it, reports EMSGSIZE; the rest still goes.
	bufs := buffersOf(100, 100, 100, 70000, 100)
	n, err := c.WriteBuffersTo(ctx, bufs, nil, r.Addr(), 0)
	if n != 3 || err != nil {
		t.Fatalf("oversized fourth datagram: %d, %v; want 3, nil", n, err)
	}
	if n, err = c.WriteBuffersTo(ctx, bufs[3:], nil, r.Addr(), 0); n != 0 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("starting at the oversized datagram: %d, %v; want 0, EMSGSIZE", n, err)
	}
	if n, err = c.WriteBuffersTo(ctx, bufs[4:], nil, r.Addr(), 0); n != 1 || err != nil {
		t.Fatalf("after it: %d, %v; want 1, nil", n, err)
	}
	if !r.Wait(4, recvWait) {
		t.Fatalf("%d datagrams arrived, want 4", r.Count())
	}
	// Malformed OOB is EINVAL, for every datagram it goes with.
	if n, err := c.WriteBuffersTo(ctx, buffersOf(10, 10), []byte{1, 2, 3}, r.Addr(), 0); n != 0 || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("malformed OOB: %d, %v; want 0, EINVAL", n, err)
	}
	// At most MaxMessages per call, as WriteMessages.
	many := make([][]byte, batchconn.MaxMessages+5)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	if n, err := c.WriteBuffersTo(ctx, many, nil, r.Addr(), 0); n != batchconn.MaxMessages || err != nil {
		t.Errorf("%d buffers: %d, %v; want %d, nil", len(many), n, err, batchconn.MaxMessages)
	}
	c.Close()
	if n, err := c.WriteBuffersTo(ctx, buffersOf(10), nil, r.Addr(), 0); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed Conn: %d, %v; want net.ErrClosed", n, err)
	}
}

// TestWriteBuffersToConcurrent sends from several goroutines at once, on a
// blocking and a non-blocking path, and checks that every datagram arrives:
// each call has its own messages (run it with -race).
func TestWriteBuffersToConcurrent(t *testing.T) {
	r := receiver(t, "udp4")
	c := listen(t, "udp4")
	const goroutines, calls, per = 4, 50, 8
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			bufs := buffersOf(gsoSizes(per, 100+g)...)
			for range calls {
				for sent := 0; sent < len(bufs); {
					n, err := c.WriteBuffersTo(context.Background(), bufs[sent:], nil, r.Addr(), 0)
					if err != nil {
						errs <- err
						return
					}
					sent += n
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !r.Wait(goroutines*calls*per, recvWait) {
		t.Fatalf("%d datagrams arrived, want %d", r.Count(), goroutines*calls*per)
	}
}

// TestWriteBuffersToAllocatesNothing checks that a warm WriteBuffersTo
// allocates nothing, with the race detector on too. Nobody reads the
// destination while allocations are counted: AllocsPerRun counts every
// goroutine's, and a reader allocates.
func TestWriteBuffersToAllocatesNothing(t *testing.T) {
	dst := sink(t)
	c := listen(t, "udp4")
	bufs := buffersOf(gsoSizes(16, 1000)...)
	oob := batchconn.AppendPacketInfo(make([]byte, 0, batchconn.PacketInfoSpace), netip.MustParseAddr("127.0.0.1"), 0)
	var err error
	send := func() {
		if n, e := c.WriteBuffersTo(context.Background(), bufs, oob, dst, 0); e != nil || n != len(bufs) {
			err = fmt.Errorf("WriteBuffersTo = (%d, %v), want (%d, nil)", n, e, len(bufs))
		}
	}
	send()
	if a := testing.AllocsPerRun(50, send); a != 0 {
		t.Errorf("WriteBuffersTo allocates %v times per call, want 0", a)
	}
	if err != nil {
		t.Fatal(err)
	}
}
