package quicbatch

import (
	"net"
	"testing"
	"time"
)

// Issue 8, item 3: batchconn.New ignores a nil Option; Wrap panicked.
func TestWrapIgnoresANilOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"nil alone", []Option{nil}},
		{"nil among options", []Option{WithQueueDepth(0), nil, WithAsync(false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			c, err := Wrap(udp, tc.opts...)
			if err != nil {
				udp.Close()
				t.Fatalf("Wrap: %v", err)
			}
			defer c.Close()
			rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			if _, err := c.WriteTo([]byte("hi"), rx.LocalAddr()); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 16)
			if n, _, err := rx.ReadFrom(buf); err != nil || string(buf[:n]) != "hi" {
				t.Fatalf("ReadFrom = %q, %v; want \"hi\"", buf[:n], err)
			}
		})
	}
}
