package main

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/batchconn/batchconn/internal/testnet"
	"github.com/miekg/dns"
)

// serveOn starts the server on socket at network/address and stops it in
// t.Cleanup, checking that it stops cleanly.
func serveOn(t *testing.T, socket, network, address string) net.Addr {
	t.Helper()
	pc, err := listen(socket, network, address, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	stop, _, err := start(pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	return pc.LocalAddr()
}

// check is one query and what its answer must be.
type check struct {
	name   string
	qtype  uint16
	rcode  int
	answer string // the answer's one RR's data ("10.53.0.7"), or "" for none
}

// checks are every host's A record, then the other kinds of answer.
func checks() []check {
	var cs []check
	for i := range zoneHosts {
		cs = append(cs, check{hostName(i), dns.TypeA, dns.RcodeSuccess, hostAddr(i).String()})
	}
	return append(cs,
		check{"HOST-7." + origin, dns.TypeA, dns.RcodeSuccess, hostAddr(7).String()}, // names are case-insensitive
		check{hostName(3), dns.TypeAAAA, dns.RcodeSuccess, ""},                       // NODATA
		check{"nope." + origin, dns.TypeA, dns.RcodeNameError, ""},
		check{origin, dns.TypeSOA, dns.RcodeSuccess, "ns." + origin},
		check{origin, dns.TypeNS, dns.RcodeSuccess, "ns." + origin},
	)
}

// verify returns what is wrong with m as the answer to c, or nil.
func (c check) verify(m *dns.Msg, id uint16) error {
	switch {
	case m.Id != id:
		return fmt.Errorf("%s: answer ID %d, want %d", c.name, m.Id, id)
	case !m.Response || !m.Authoritative:
		return fmt.Errorf("%s: not an authoritative response: %v", c.name, m.MsgHdr)
	case m.Rcode != c.rcode:
		return fmt.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[c.rcode])
	case len(m.Question) != 1 || m.Question[0].Name != c.name || m.Question[0].Qtype != c.qtype:
		return fmt.Errorf("%s: the answer's question is %v", c.name, m.Question)
	}
	if c.answer == "" {
		if len(m.Answer) != 0 || len(m.Ns) != 1 {
			return fmt.Errorf("%s: want no answer and the SOA, got answer %v, authority %v", c.name, m.Answer, m.Ns)
		}
		return nil
	}
	if len(m.Answer) != 1 {
		return fmt.Errorf("%s: %d answers, want 1: %v", c.name, len(m.Answer), m.Answer)
	}
	var got string
	switch rr := m.Answer[0].(type) {
	case *dns.A:
		got = rr.A.String()
	case *dns.SOA:
		got = rr.Ns
	case *dns.NS:
		got = rr.Ns
	}
	if got != c.answer {
		return fmt.Errorf("%s: answer %v, want %s", c.name, m.Answer[0], c.answer)
	}
	return nil
}

// TestEveryAnswerOnEverySocket: the server answers every name of the zone
// right, on every socket, IPv4 and IPv6, with 8 clients querying at once
// (so replies are written from many goroutines at once, as miekg/dns
// writes them).
func TestEveryAnswerOnEverySocket(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		for _, s := range sockets {
			t.Run(network+"/"+s.Name, func(t *testing.T) {
				address := "127.0.0.1:0"
				if network == "udp6" {
					address = "[::1]:0"
				}
				testnet.ListenUDP(t, network) // skips where there is no IPv6 loopback
				addr := serveOn(t, s.Name, network, address)
				cs := checks()
				const clients = 8
				var wg sync.WaitGroup
				errs := make(chan error, clients)
				for k := range clients {
					wg.Go(func() {
						errs <- queryAll(addr.String(), cs[k*len(cs)/clients:(k+1)*len(cs)/clients])
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
}

// queryAll asks every check over one client socket, one at a time, and
// verifies every answer.
func queryAll(server string, cs []check) error {
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(server)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, ck := range cs {
		q := new(dns.Msg)
		q.SetQuestion(ck.name, ck.qtype)
		m, _, err := c.ExchangeWithConn(q, conn)
		if err != nil {
			return fmt.Errorf("%s: %w", ck.name, err)
		}
		if err := ck.verify(m, q.Id); err != nil {
			return err
		}
	}
	return nil
}

// queryFrom sends one query for host-7's A record from c to server, and
// returns the answer and the address it came from. c is unconnected, so
// it sees a reply from any source, as dig's socket does not.
func queryFrom(c *net.UDPConn, server netip.AddrPort) (*dns.Msg, netip.AddrPort, error) {
	q := new(dns.Msg)
	q.SetQuestion(hostName(7), dns.TypeA)
	b, err := q.Pack()
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	if _, err := c.WriteToUDPAddrPort(b, server); err != nil {
		return nil, netip.AddrPort{}, err
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 512)
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("no reply to a query at %v: %w", server, err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		return nil, src, err
	}
	return m, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), check{hostName(7), dns.TypeA, dns.RcodeSuccess, hostAddr(7).String()}.verify(m, q.Id)
}
