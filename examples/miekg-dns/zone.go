package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// The zone the server answers: example.test. with an SOA, an NS and
// zoneHosts A records, host-0 to host-999, each with its own address.
const (
	origin    = "example.test."
	zoneHosts = 1000
	ttl       = 300
)

// hostName is the name of host i of the zone.
func hostName(i int) string { return fmt.Sprintf("host-%d.%s", i, origin) }

// hostAddr is the address of host i: 10.53.0.0/16, two bytes of i.
func hostAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 53, byte(i >> 8), byte(i)}) }

// zone is a dns.Handler for the zone: an authoritative server's answers,
// NXDOMAIN with the SOA for names it does not have, and NODATA for types
// a name does not have.
type zone struct {
	hosts map[string]netip.Addr
	soa   *dns.SOA
	ns    *dns.NS
}

func newZone() *zone {
	z := &zone{
		hosts: make(map[string]netip.Addr, zoneHosts),
		soa: &dns.SOA{
			Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns:  "ns." + origin, Mbox: "hostmaster." + origin,
			Serial: 2026120601, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl,
		},
		ns: &dns.NS{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl}, Ns: "ns." + origin},
	}
	for i := range zoneHosts {
		z.hosts[hostName(i)] = hostAddr(i)
	}
	return z
}

// ServeDNS answers one query, as miekg/dns calls it: from a goroutine of
// its own per query, writing the reply through w.
func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	addr, ok := z.hosts[name]
	switch {
	case ok && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   addr.AsSlice(),
		}}
	case name == origin && q.Qtype == dns.TypeSOA:
		m.Answer = []dns.RR{z.soa}
	case name == origin && q.Qtype == dns.TypeNS:
		m.Answer = []dns.RR{z.ns}
	case ok || name == origin:
		m.Ns = []dns.RR{z.soa} // NODATA
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
	}
	w.WriteMsg(m)
}
