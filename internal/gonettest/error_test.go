// Copyright 2015 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Ported from go1.26.8 src/net/error_test.go; see LICENSE-GO. The error
// parsers are Go's, with the net package's unexported error types and
// values recognised from outside it (see below); the tests are its UDP
// ones.

//go:build unix

package gonettest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The net package's unexported errors, as Go's parsers name them. A value
// the net package hands out is recognised by its identity where a UDPConn
// can be made to return it (errMissingAddress), and otherwise by its type
// and message, which no error made outside the net package matches by
// accident.
var (
	errMissingAddress = sync.OnceValue(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			c, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		}
		if err != nil {
			panic(err)
		}
		defer c.Close()
		_, _, err = c.WriteMsgUDP([]byte("x"), nil, nil)
		return err.(*net.OpError).Err
	})

	deadlineExceededType = reflect.TypeOf(os.ErrDeadlineExceeded) // *poll.DeadlineExceededError
)

// unexported is one of the net package's (or internal/poll's) unexported
// errors, by its type's name and its message ("" for any).
type unexported struct{ typ, msg string }

func (u unexported) is(err error) bool {
	return err != nil && fmt.Sprintf("%T", err) == u.typ && (u.msg == "" || err.Error() == u.msg)
}

var (
	errCanceled          = unexported{"net.canceledError", "operation was canceled"}
	errTimeout           = unexported{"*net.timeoutError", "i/o timeout"}
	errNoSuitableAddress = unexported{"*errors.errorString", "no suitable address found"}
	errNotPollable       = unexported{"*errors.errorString", "not pollable"} // poll.ErrNotPollable
	timeoutErrorType     = unexported{"*net.timeoutError", ""}
	addrinfoErrno        = unexported{"net.addrinfoErrno", ""} // the cgo resolver's
)

// opErrorValid is (*net.OpError).isValid.
func opErrorValid(e *net.OpError) error {
	if e.Op == "" {
		return fmt.Errorf("OpError.Op is empty: %v", e)
	}
	if e.Net == "" {
		return fmt.Errorf("OpError.Net is empty: %v", e)
	}
	for _, addr := range []net.Addr{e.Source, e.Addr} {
		switch addr := addr.(type) {
		case nil:
		case *net.TCPAddr:
			if addr == nil {
				return fmt.Errorf("OpError.Source or Addr is non-nil interface: %#v, %v", addr, e)
			}
		case *net.UDPAddr:
			if addr == nil {
				return fmt.Errorf("OpError.Source or Addr is non-nil interface: %#v, %v", addr, e)
			}
		case *net.IPAddr:
			if addr == nil {
				return fmt.Errorf("OpError.Source or Addr is non-nil interface: %#v, %v", addr, e)
			}
		case *net.IPNet:
			if addr == nil {
				return fmt.Errorf("OpError.Source or Addr is non-nil interface: %#v, %v", addr, e)
			}
		case *net.UnixAddr:
			if addr == nil {
				return fmt.Errorf("OpError.Source or Addr is non-nil interface: %#v, %v", addr, e)
			}
		default:
			return fmt.Errorf("OpError.Source or Addr is unknown type: %T, %v", addr, e)
		}
	}
	if e.Err == nil {
		return fmt.Errorf("OpError.Err is empty: %v", e)
	}
	return nil
}

// parseDialError parses nestedErr and reports whether it is a valid
// error value from Dial, Listen functions.
// It returns nil when nestedErr is valid.
func parseDialError(nestedErr error) error {
	if nestedErr == nil {
		return nil
	}

	switch err := nestedErr.(type) {
	case *net.OpError:
		if err := opErrorValid(err); err != nil {
			return err
		}
		nestedErr = err.Err
		goto second
	}
	return fmt.Errorf("unexpected type on 1st nested level: %T", nestedErr)

second:
	if isPlatformError(nestedErr) {
		return nil
	}
	switch err := nestedErr.(type) {
	case *net.AddrError, *net.DNSError, net.InvalidAddrError, *net.ParseError, net.UnknownNetworkError:
		return nil
	case *os.SyscallError:
		nestedErr = err.Err
		goto third
	case *fs.PathError: // for Plan 9
		nestedErr = err.Err
		goto third
	}
	if timeoutErrorType.is(nestedErr) || reflect.TypeOf(nestedErr) == deadlineExceededType || addrinfoErrno.is(nestedErr) {
		return nil
	}
	switch nestedErr {
	case net.ErrClosed, errMissingAddress(), context.DeadlineExceeded, context.Canceled:
		return nil
	}
	if errCanceled.is(nestedErr) || errNoSuitableAddress.is(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 2nd nested level: %T", nestedErr)

third:
	if isPlatformError(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 3rd nested level: %T", nestedErr)
}

var listenPacketErrorTests = []struct {
	network, address string
}{
	{"foo", ""},
	{"bar", "baz"},
	{"datakit", "mh/astro/r70"},
	{"udp", "127.0.0.1:☺"},
	{"udp", "no-such-name:80"},
	{"udp", "mh/astro/r70:http"},

	{"udp", net.JoinHostPort("127.0.0.1", "-1")},
	{"udp", net.JoinHostPort("127.0.0.1", "123456789")},
}

// failLookups makes name lookups fail with a *net.DNSError until the test
// ends, as Go's tests do by replacing the net package's lookup
// (testHookLookupIP), which is out of reach here: the port swaps
// net.DefaultResolver for one whose DNS server cannot be reached. Names in
// /etc/hosts still resolve. The test must not be parallel.
func failLookups(t *testing.T, msg string) {
	orig := net.DefaultResolver
	t.Cleanup(func() { net.DefaultResolver = orig })
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return nil, &net.DNSError{Err: msg, Name: "name", Server: "server", IsTimeout: true}
		},
	}
}

func TestListenPacketError(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("%s does not have full support of socktest", runtime.GOOS)
	}

	failLookups(t, "listen error test")

	forEachMode(t, func(t *testing.T, m *mode) {
		for i, tt := range listenPacketErrorTests {
			t.Run(fmt.Sprintf("%s_%s", tt.network, tt.address), func(t *testing.T) {
				c, err := m.ListenPacket(tt.network, tt.address)
				if err == nil {
					t.Errorf("#%d: should fail; %s:%s->", i, c.LocalAddr().Network(), c.LocalAddr())
					c.Close()
					return
				}
				if c != nil {
					t.Errorf("ListenPacket returned non-nil interface %T(%v) with err != nil", c, c)
				}
				if err = parseDialError(err); err != nil {
					t.Errorf("#%d: %v", i, err)
				}
			})
		}
	})
}

// TestProtocolListenError is Go's for the "udp" network: ListenUDP with a
// port out of range. A Conn's is batchconn.Listen with the address as a
// string, there being no batchconn.ListenUDP.
func TestProtocolListenError(t *testing.T) {
	switch runtime.GOOS {
	case "plan9":
		t.Skipf("not supported on %s", runtime.GOOS)
	}

	forEachMode(t, func(t *testing.T, m *mode) {
		for _, network := range []string{"udp"} {
			var err error
			switch network {
			case "udp":
				laddr := &net.UDPAddr{Port: 1 << 16}
				if m.conn {
					_, err = m.ListenPacket(network, laddr.String())
				} else {
					_, err = m.ListenUDP(network, laddr)
				}
			}
			if err == nil {
				t.Errorf("%s: should fail", network)
				continue
			}
			if err = parseDialError(err); err != nil {
				t.Errorf("%s: %v", network, err)
				continue
			}
		}
	})
}

// parseReadError parses nestedErr and reports whether it is a valid
// error value from Read functions.
// It returns nil when nestedErr is valid.
func parseReadError(nestedErr error) error {
	if nestedErr == nil {
		return nil
	}

	switch err := nestedErr.(type) {
	case *net.OpError:
		if err := opErrorValid(err); err != nil {
			return err
		}
		nestedErr = err.Err
		goto second
	}
	if nestedErr == io.EOF {
		return nil
	}
	return fmt.Errorf("unexpected type on 1st nested level: %T", nestedErr)

second:
	if isPlatformError(nestedErr) {
		return nil
	}
	switch err := nestedErr.(type) {
	case *os.SyscallError:
		nestedErr = err.Err
		goto third
	}
	switch nestedErr {
	case net.ErrClosed, os.ErrDeadlineExceeded:
		return nil
	}
	if errTimeout.is(nestedErr) || errNotPollable.is(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 2nd nested level: %T", nestedErr)

third:
	if isPlatformError(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 3rd nested level: %T", nestedErr)
}

// parseWriteError parses nestedErr and reports whether it is a valid
// error value from Write functions.
// It returns nil when nestedErr is valid.
func parseWriteError(nestedErr error) error {
	if nestedErr == nil {
		return nil
	}

	switch err := nestedErr.(type) {
	case *net.OpError:
		if err := opErrorValid(err); err != nil {
			return err
		}
		nestedErr = err.Err
		goto second
	}
	return fmt.Errorf("unexpected type on 1st nested level: %T", nestedErr)

second:
	if isPlatformError(nestedErr) {
		return nil
	}
	switch err := nestedErr.(type) {
	case *net.AddrError, *net.DNSError, net.InvalidAddrError, *net.ParseError, net.UnknownNetworkError:
		return nil
	case *os.SyscallError:
		nestedErr = err.Err
		goto third
	}
	if timeoutErrorType.is(nestedErr) || reflect.TypeOf(nestedErr) == deadlineExceededType || addrinfoErrno.is(nestedErr) {
		return nil
	}
	switch nestedErr {
	case net.ErrClosed, errMissingAddress(), os.ErrDeadlineExceeded, net.ErrWriteToConnected, io.ErrUnexpectedEOF:
		return nil
	}
	if errCanceled.is(nestedErr) || errTimeout.is(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 2nd nested level: %T", nestedErr)

third:
	if isPlatformError(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 3rd nested level: %T", nestedErr)
}

// parseCloseError parses nestedErr and reports whether it is a valid
// error value from Close functions.
// It returns nil when nestedErr is valid.
func parseCloseError(nestedErr error, isShutdown bool) error {
	if nestedErr == nil {
		return nil
	}

	// Because historically we have not exported the error that we
	// return for an operation on a closed network connection,
	// there are programs that test for the exact error string.
	// Verify that string here so that we don't break those
	// programs unexpectedly. See issues #4373 and #19252.
	want := "use of closed network connection"
	if !isShutdown && !strings.Contains(nestedErr.Error(), want) {
		return fmt.Errorf("error string %q does not contain expected string %q", nestedErr, want)
	}

	if !isShutdown && !errors.Is(nestedErr, net.ErrClosed) {
		return fmt.Errorf("errors.Is(%v, errClosed) returns false, want true", nestedErr)
	}

	switch err := nestedErr.(type) {
	case *net.OpError:
		if err := opErrorValid(err); err != nil {
			return err
		}
		nestedErr = err.Err
		goto second
	}
	return fmt.Errorf("unexpected type on 1st nested level: %T", nestedErr)

second:
	if isPlatformError(nestedErr) {
		return nil
	}
	switch err := nestedErr.(type) {
	case *os.SyscallError:
		nestedErr = err.Err
		goto third
	case *fs.PathError: // for Plan 9
		nestedErr = err.Err
		goto third
	}
	switch nestedErr {
	case net.ErrClosed:
		return nil
	}
	return fmt.Errorf("unexpected type on 2nd nested level: %T", nestedErr)

third:
	if isPlatformError(nestedErr) {
		return nil
	}
	switch nestedErr {
	case fs.ErrClosed: // for Plan 9
		return nil
	}
	return fmt.Errorf("unexpected type on 3rd nested level: %T", nestedErr)
}

// TestCloseError is Go's "udp" subtest.
func TestCloseError(t *testing.T) {
	forEachMode(t, func(t *testing.T, m *mode) {
		if !testableNetwork("udp") {
			t.Skipf("skipping: udp not available")
		}

		pc, err := m.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()

		for i := 0; i < 3; i++ {
			err = pc.Close()
			if perr := parseCloseError(err, false); perr != nil {
				t.Errorf("#%d: %v", i, perr)
			}
		}
	})
}

// parseCommonError parses nestedErr and reports whether it is a valid
// error value from miscellaneous functions.
// It returns nil when nestedErr is valid.
func parseCommonError(nestedErr error) error {
	if nestedErr == nil {
		return nil
	}

	switch err := nestedErr.(type) {
	case *net.OpError:
		if err := opErrorValid(err); err != nil {
			return err
		}
		nestedErr = err.Err
		goto second
	}
	return fmt.Errorf("unexpected type on 1st nested level: %T", nestedErr)

second:
	if isPlatformError(nestedErr) {
		return nil
	}
	switch err := nestedErr.(type) {
	case *os.SyscallError:
		nestedErr = err.Err
		goto third
	case *os.LinkError:
		nestedErr = err.Err
		goto third
	case *fs.PathError:
		nestedErr = err.Err
		goto third
	}
	switch nestedErr {
	case net.ErrClosed:
		return nil
	}
	return fmt.Errorf("unexpected type on 2nd nested level: %T", nestedErr)

third:
	if isPlatformError(nestedErr) {
		return nil
	}
	return fmt.Errorf("unexpected type on 3rd nested level: %T", nestedErr)
}
