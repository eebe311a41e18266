package validationtest

import (
	"testing"

	"github.com/miekg/dns"
)

func query(t *testing.T, s *DNSServer, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := (&dns.Client{Net: network}).Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func TestDNSServer(t *testing.T) {
	s := NewDNSServer(t)
	s.AddTXT("a.example.test", "v1", "v2")
	s.AddA("b.sub.example.test", "192.0.2.1")
	s.AddAAAA("b.sub.example.test", "2001:db8::1")
	s.AddCAA("example.test", 0, "issue", "acmegw.test")
	s.AddRecord(`mx.example.test. 300 IN MX 10 mail.example.test.`)
	s.AddCNAME("alias.example.test", "a.example.test")

	for _, network := range []string{"udp", "tcp"} {
		if r := query(t, s, network, "A.example.test", dns.TypeTXT); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Errorf("%s TXT: %v", network, r)
		}
	}
	if r := query(t, s, "udp", "b.sub.example.test", dns.TypeAAAA); len(r.Answer) != 1 {
		t.Errorf("AAAA: %v", r)
	}
	if r := query(t, s, "udp", "example.test", dns.TypeCAA); len(r.Answer) != 1 || r.Answer[0].(*dns.CAA).Value != "acmegw.test" {
		t.Errorf("CAA: %v", r)
	}
	if r := query(t, s, "udp", "mx.example.test", dns.TypeMX); len(r.Answer) != 1 {
		t.Errorf("MX: %v", r)
	}
	// sub.example.test has no records but a name below it: NODATA.
	if r := query(t, s, "udp", "sub.example.test", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("empty non-terminal: %v", r)
	}
	if r := query(t, s, "udp", "missing.example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("missing: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if r := query(t, s, "udp", "alias.example.test", dns.TypeTXT); len(r.Answer) != 1 {
		t.Errorf("CNAME not chased: %v", r)
	}
	s.SetChaseCNAME(true)
	if r := query(t, s, "udp", "alias.example.test", dns.TypeTXT); len(r.Answer) != 3 {
		t.Errorf("CNAME chased: %v", r)
	}
	s.SetRcode("a.example.test", dns.RcodeServerFailure)
	if r := query(t, s, "udp", "a.example.test", dns.TypeTXT); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("SetRcode: %v", r)
	}
	s.SetRcode("a.example.test", dns.RcodeSuccess)
	s.RemoveTXT("a.example.test", "v1")
	if r := query(t, s, "udp", "a.example.test", dns.TypeTXT); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "v2" {
		t.Errorf("RemoveTXT: %v", r)
	}
	s.Remove("a.example.test")
	if r := query(t, s, "udp", "a.example.test", dns.TypeTXT); r.Rcode != dns.RcodeNameError {
		t.Errorf("Remove: %v", r)
	}
	if udp, tcp := s.Queries(); udp == 0 || tcp != 1 {
		t.Errorf("Queries() = %d, %d", udp, tcp)
	}
}

func TestALPNCert(t *testing.T) {
	c, err := ALPNCert("dns", "example.test", "token.thumb")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Leaf.DNSNames) != 1 || c.Leaf.DNSNames[0] != "example.test" || len(c.Leaf.IPAddresses) != 0 {
		t.Errorf("names: %v %v", c.Leaf.DNSNames, c.Leaf.IPAddresses)
	}
	found := false
	for _, e := range c.Leaf.Extensions {
		if e.Id.Equal(oidACMEIdentifier) {
			found = e.Critical
		}
	}
	if !found {
		t.Error("no critical acmeIdentifier extension")
	}
	c, err = ALPNCert("ip", "::ffff:192.0.2.1", "token.thumb")
	if err != nil || len(c.Leaf.IPAddresses) != 1 || c.Leaf.IPAddresses[0].String() != "192.0.2.1" || len(c.Leaf.DNSNames) != 0 {
		t.Errorf("ip: %v, %v", c.Leaf.IPAddresses, err)
	}
}
