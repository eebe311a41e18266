package dcv_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// query asks server one question over network ("udp" or "tcp"), without
// recursion and with EDNS0 advertising 1232 bytes (the DNS Flag Day 2020
// size), the way a resolver asks an authoritative server.
func query(t *testing.T, server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s query %s %s at %s: %v", network, name, dns.TypeToString[qtype], server, err)
	}
	return resp
}

// txtValues returns the TXT values of an answer, each joined from its
// character-strings, sorted.
func txtValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	slices.Sort(out)
	return out
}

// cnameTarget returns the target of the answer's first CNAME, or "".
func cnameTarget(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			return c.Target
		}
	}
	return ""
}

// hasSOA reports whether the authority section carries the zone's SOA, as
// negative answers must.
func hasSOA(m *dns.Msg, zone string) bool {
	for _, rr := range m.Ns {
		if s, ok := rr.(*dns.SOA); ok && strings.EqualFold(s.Hdr.Name, dns.Fqdn(zone)) {
			return true
		}
	}
	return false
}

func rcode(m *dns.Msg) string { return dns.RcodeToString[m.Rcode] }
