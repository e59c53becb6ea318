//go:build unix

package batchconn

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestContractR3NonBlockingBesideAReaderAboutToPark holds the read gate as
// a blocking reader does between taking it and parking in the poller: a
// non-blocking read that arrives in that window must not queue on the gate
// (the holder may then park until a datagram comes), but return
// ErrWouldBlock once the holder parks.
func TestContractR3NonBlockingBesideAReaderAboutToPark(t *testing.T) {
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.rd.gate.lock(context.Background(), nil) // the "blocking reader" holds the gate, not yet parked
	done := make(chan error, 1)
	go func() {
		msgs := []Message{{Buffers: [][]byte{make([]byte, 10)}}}
		_, err := c.ReadMessages(context.Background(), msgs, msgDontwait)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the non-blocking read find the gate held
	c.rd.gate.park()                  // the holder parks in the poller
	select {
	case err := <-done:
		if !errors.Is(err, ErrWouldBlock) {
			t.Errorf("non-blocking ReadMessages beside a parked reader: %v, want ErrWouldBlock", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a non-blocking ReadMessages waited for the read gate behind a reader that parked")
	}
	c.rd.gate.unpark()
	c.rd.gate.unlock()
}
