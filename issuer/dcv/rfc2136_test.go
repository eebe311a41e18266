package dcv_test

import (
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/issuer/dcv"
)

// updateServer is a primary server for one zone that applies RFC 2136
// updates signed with one TSIG key, as BIND does with "update-policy" or
// "allow-update { key ...; }", and answers queries from what it holds.
type updateServer struct {
	zone string // FQDN
	key  string // FQDN

	mu      sync.Mutex
	records []dns.RR
	applied int // updates applied
	addr    string
}

const (
	testKey    = "acmegw-key"
	testSecret = "c2VjcmV0LXRzaWcta2V5LWZvci1hY21lZ3ctdGVzdHM=" // base64("secret-tsig-key-for-acmegw-tests")
)

func newUpdateServer(t *testing.T, zone string) *updateServer {
	t.Helper()
	s := &updateServer{zone: dns.Fqdn(zone), key: dns.Fqdn(testKey)}
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	s.addr = pc.LocalAddr().String()
	secrets := map[string]string{s.key: testSecret}
	// miekg/dns turns updates away (NOTIMP) unless told otherwise.
	accept := func(dh dns.Header) dns.MsgAcceptAction {
		if dh.Bits&(1<<15) == 0 && int(dh.Bits>>11)&0xF == dns.OpcodeUpdate {
			return dns.MsgAccept
		}
		return dns.DefaultMsgAcceptFunc(dh)
	}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: s, TsigSecret: secrets, MsgAcceptFunc: accept},
		{Listener: l, Handler: s, TsigSecret: secrets, MsgAcceptFunc: accept},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

func (s *updateServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r.Opcode == dns.OpcodeUpdate {
		s.update(w, r)
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	if !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns." + s.zone, Mbox: "hostmaster." + s.zone, Serial: 1, Minttl: 60}
	s.mu.Lock()
	exists := false
	for _, rr := range s.records {
		if strings.EqualFold(rr.Header().Name, name) {
			exists = true
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
	}
	s.mu.Unlock()
	switch {
	case name == s.zone && q.Qtype == dns.TypeSOA:
		m.Answer = append(m.Answer, soa)
	case len(m.Answer) == 0:
		if !exists && name != s.zone {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

func (s *updateServer) update(w dns.ResponseWriter, r *dns.Msg) {
	tsig := r.IsTsig()
	if tsig == nil {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	if err := w.TsigStatus(); err != nil {
		// RFC 8945 5.3.2: an unsigned NOTAUTH carrying the TSIG error.
		// Written raw, since WriteMsg would try to sign it.
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNotAuth)
		code := uint16(dns.RcodeBadSig)
		switch {
		case errors.Is(err, dns.ErrSecret):
			code = dns.RcodeBadKey
		case errors.Is(err, dns.ErrTime):
			code = dns.RcodeBadTime
		}
		m.Extra = append(m.Extra, &dns.TSIG{
			Hdr:       dns.RR_Header{Name: tsig.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: tsig.Algorithm, TimeSigned: tsig.TimeSigned, Fudge: tsig.Fudge,
			OrigId: r.Id, Error: code,
		})
		buf, perr := m.Pack()
		if perr == nil {
			_, _ = w.Write(buf)
		}
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, s.zone) {
		m.Rcode = dns.RcodeNotAuth
	} else {
		for _, rr := range r.Ns {
			if !dns.IsSubDomain(s.zone, dns.CanonicalName(rr.Header().Name)) {
				m.Rcode = dns.RcodeNotZone
			}
		}
	}
	if m.Rcode == dns.RcodeSuccess {
		s.mu.Lock()
		for _, rr := range r.Ns {
			s.apply(rr)
		}
		s.applied++
		s.mu.Unlock()
	}
	m.SetTsig(tsig.Hdr.Name, tsig.Algorithm, 300, time.Now().Unix())
	_ = w.WriteMsg(m)
}

// apply performs one update RR (RFC 2136 3.4.2): class IN adds, NONE
// deletes one record, ANY deletes an RRset.
func (s *updateServer) apply(u dns.RR) {
	h := u.Header()
	switch h.Class {
	case dns.ClassINET:
		if h.Rrtype == dns.TypeCNAME {
			s.deleteWhere(func(rr dns.RR) bool { return sameName(rr, u) && rr.Header().Rrtype == dns.TypeCNAME })
		}
		for _, rr := range s.records {
			if dns.IsDuplicate(rr, u) {
				return
			}
		}
		s.records = append(s.records, dns.Copy(u))
	case dns.ClassNONE:
		want := dns.Copy(u)
		want.Header().Class = dns.ClassINET
		s.deleteWhere(func(rr dns.RR) bool { return dns.IsDuplicate(rr, want) })
	case dns.ClassANY:
		s.deleteWhere(func(rr dns.RR) bool {
			return sameName(rr, u) && (h.Rrtype == dns.TypeANY || rr.Header().Rrtype == h.Rrtype)
		})
	}
}

func sameName(a, b dns.RR) bool { return strings.EqualFold(a.Header().Name, b.Header().Name) }

func (s *updateServer) deleteWhere(match func(dns.RR) bool) {
	s.records = slices.DeleteFunc(s.records, match)
}

func (s *updateServer) updates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func newRFC2136(t *testing.T, cfg dcv.RFC2136Config) *dcv.RFC2136 {
	t.Helper()
	p, err := dcv.NewRFC2136(cfg)
	if err != nil {
		t.Fatalf("NewRFC2136: %v", err)
	}
	return p
}

func TestRFC2136PublishUnpublish(t *testing.T) {
	for _, tc := range []struct {
		name string
		tcp  bool
		zone string
		alg  string
	}{
		{name: "udp", zone: "example.com"},
		{name: "tcp", tcp: true, zone: "example.com", alg: "hmac-sha512"},
		{name: "zone-discovery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newUpdateServer(t, "example.com")
			p := newRFC2136(t, dcv.RFC2136Config{
				Nameserver: srv.addr, Zone: tc.zone, TCP: tc.tcp,
				TSIGKey: testKey, TSIGSecret: testSecret, TSIGAlgorithm: tc.alg,
			})
			if p.Method() != "dns-provider" {
				t.Errorf("Method = %q", p.Method())
			}
			ctx := t.Context()
			name := "_dnsauth.example.com"
			q := func() *dns.Msg { return query(t, srv.addr, "udp", name, dns.TypeTXT) }
			tok1 := txt("example.com", name, "tok-1")
			tok2 := txt("example.com", name, "tok-2")
			publish(t, p, tok1, tok2, tok1) // tok1 twice: a retried Publish
			if got := txtValues(q()); !slices.Equal(got, []string{"tok-1", "tok-2"}) {
				t.Fatalf("after Publish: %v", got)
			}
			if ttl := q().Answer[0].Header().Ttl; ttl != 60 {
				t.Errorf("TTL %d, want the default 60", ttl)
			}
			if err := p.Unpublish(ctx, tok1); err != nil {
				t.Fatal(err)
			}
			if got := txtValues(q()); !slices.Equal(got, []string{"tok-2"}) {
				t.Fatalf("after Unpublish(tok-1): %v", got)
			}
			if err := p.Unpublish(ctx, tok2); err != nil {
				t.Fatal(err)
			}
			if m := q(); rcode(m) != "NXDOMAIN" {
				t.Fatalf("after Unpublish(tok-2): %s %v", rcode(m), m.Answer)
			}

			cn := dcv.Record{Domain: "example.com", Name: "x7k2.example.com", Type: "CNAME", Value: "dcv.digicert.com"}
			publish(t, p, cn)
			if got := cnameTarget(query(t, srv.addr, "tcp", cn.Name, dns.TypeCNAME)); got != "dcv.digicert.com." {
				t.Fatalf("CNAME after Publish: %q", got)
			}
			if err := p.Unpublish(ctx, cn); err != nil {
				t.Fatal(err)
			}
			if m := query(t, srv.addr, "udp", cn.Name, dns.TypeCNAME); rcode(m) != "NXDOMAIN" {
				t.Fatalf("CNAME after Unpublish: %s", rcode(m))
			}
			if n := srv.updates(); n != 7 {
				t.Errorf("server applied %d signed updates, want 7", n)
			}
		})
	}
}

// TestRFC2136Refusals checks that each way a server turns an update down
// gives an error that says what to fix, never showing the secret.
func TestRFC2136Refusals(t *testing.T) {
	srv := newUpdateServer(t, "example.com")
	wrongSecret := base64.StdEncoding.EncodeToString([]byte("not-the-servers-secret"))
	rec := txt("example.com", "_dnsauth.example.com", "tok")
	for _, tc := range []struct {
		name string
		cfg  dcv.RFC2136Config
		rec  dcv.Record
		want []string
	}{
		{"wrong secret", dcv.RFC2136Config{Zone: "example.com", TSIGKey: testKey, TSIGSecret: wrongSecret}, rec,
			[]string{"NOTAUTH/BADSIG", `TSIG key "acmegw-key"`, "hmac-sha256", "adding TXT _dnsauth.example.com"}},
		{"unknown key", dcv.RFC2136Config{Zone: "example.com", TSIGKey: "other-key", TSIGSecret: testSecret}, rec,
			[]string{"NOTAUTH/BADKEY", `"other-key"`}},
		{"unsigned", dcv.RFC2136Config{Zone: "example.com"}, rec,
			[]string{"REFUSED", "unsigned updates"}},
		{"wrong zone", dcv.RFC2136Config{Zone: "example.net", TSIGKey: testKey, TSIGSecret: testSecret},
			txt("example.net", "_dnsauth.example.net", "tok"),
			[]string{"NOTAUTH", "zone example.net"}},
		{"outside the configured zone", dcv.RFC2136Config{Zone: "example.com", TSIGKey: testKey, TSIGSecret: testSecret},
			txt("example.org", "_dnsauth.example.org", "tok"),
			[]string{"not inside the configured zone example.com"}},
		{"no zone to discover", dcv.RFC2136Config{TSIGKey: testKey, TSIGSecret: testSecret},
			txt("example.org", "_dnsauth.example.org", "tok"),
			[]string{"finding the zone of _dnsauth.example.org", "set zone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Nameserver = srv.addr
			p := newRFC2136(t, tc.cfg)
			before := srv.updates()
			err := p.Publish(t.Context(), tc.rec)
			if err == nil {
				t.Fatal("Publish succeeded")
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
			for _, secret := range []string{testSecret, wrongSecret, "secret-tsig-key", "not-the-servers-secret"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(p.String(), secret) {
					t.Errorf("error or String() shows a secret")
				}
			}
			if srv.updates() != before {
				t.Error("the server applied a refused update")
			}
		})
	}
}

func TestNewRFC2136Rejects(t *testing.T) {
	for _, tc := range []struct {
		cfg  dcv.RFC2136Config
		want string
	}{
		{dcv.RFC2136Config{}, "nameserver is required"},
		{dcv.RFC2136Config{Nameserver: "ns", TSIGKey: "k"}, "has no secret"},
		{dcv.RFC2136Config{Nameserver: "ns", TSIGSecret: testSecret}, "no TSIG key name"},
		{dcv.RFC2136Config{Nameserver: "ns", TSIGKey: "k", TSIGSecret: "sekrit!!not base64"}, "not valid base64"},
		{dcv.RFC2136Config{Nameserver: "ns", TSIGKey: "k", TSIGSecret: testSecret, TSIGAlgorithm: "hmac-md5"}, "not supported"},
		{dcv.RFC2136Config{Nameserver: "ns", Zone: "bad..zone"}, "not a valid DNS name"},
	} {
		_, err := dcv.NewRFC2136(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewRFC2136(%s) = %v, want an error with %q", tc.want, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), testSecret)) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	p := newRFC2136(t, dcv.RFC2136Config{Nameserver: "192.0.2.1", TSIGKey: "k", TSIGSecret: testSecret})
	if s := p.String(); !strings.Contains(s, "192.0.2.1:53") {
		t.Errorf("String() = %s, want the port added", s)
	}
}
