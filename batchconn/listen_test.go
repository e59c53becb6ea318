package batchconn_test

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"

	"github.com/batchconn/batchconn/batchconn"
)

// TestListenErrorsAsListenPacket: Listen fails as net.ListenPacket does, a
// *net.OpError with Op "listen" around the resolver's error, for every bad
// address; a network other than UDP fails with net.UnknownNetworkError,
// as net.ListenUDP's does.
func TestListenErrorsAsListenPacket(t *testing.T) {
	for _, tc := range []struct{ network, address string }{
		{"udp", "127.0.0.1:99999"},
		{"udp", "127.0.0.1"},
		{"udp", "nosuchhost.invalid:0"},
		{"udp", "1.2.3.4.5:0"},
		{"udp4", "[::1]:0"},
		{"udp6", "localhost:-1"},
		{"udp", ":http-nonesuch"},
	} {
		_, want := net.ListenPacket(tc.network, tc.address)
		c, got := batchconn.Listen(tc.network, tc.address)
		if c != nil || got == nil || want == nil {
			t.Errorf("Listen(%q, %q) = %v, %v; net.ListenPacket gave %v", tc.network, tc.address, c, got, want)
			continue
		}
		g, ok1 := got.(*net.OpError)
		w, ok2 := want.(*net.OpError)
		if !ok1 || !ok2 || g.Op != w.Op || g.Net != w.Net || fmt.Sprint(g.Addr) != fmt.Sprint(w.Addr) ||
			reflect.TypeOf(g.Err) != reflect.TypeOf(w.Err) {
			t.Errorf("Listen(%q, %q) = %#v; net.ListenPacket gave %#v", tc.network, tc.address, got, want)
		}
	}
	for _, network := range []string{"tcp", "ip4:udp", "unixgram", "", "UDP"} {
		_, err := batchconn.Listen(network, "127.0.0.1:0")
		var oe *net.OpError
		var unknown net.UnknownNetworkError
		if !errors.As(err, &oe) || oe.Op != "listen" || oe.Net != network || !errors.As(err, &unknown) {
			t.Errorf("Listen(%q) = %v, want a *net.OpError{Op: \"listen\"} with net.UnknownNetworkError", network, err)
		}
	}
}
