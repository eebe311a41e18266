package dcv_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/validation/validationtest"
)

const testZone = "dcv.acmegw.test"

// startZone starts a DelegatedZone on loopback, with defaults filled in, and
// closes it when the test ends.
func startZone(t *testing.T, cfg dcv.DelegatedConfig) *dcv.DelegatedZone {
	t.Helper()
	if cfg.Zone == "" {
		cfg.Zone = testZone
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.NS == nil {
		cfg.NS = []string{"ns1." + testZone, "ns.other.test"}
	}
	z, err := dcv.NewDelegatedZone(cfg)
	if err != nil {
		t.Fatalf("NewDelegatedZone: %v", err)
	}
	if err := z.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = z.Close() })
	return z
}

func publish(t *testing.T, p dcv.Publisher, rs ...dcv.Record) {
	t.Helper()
	for _, r := range rs {
		if err := p.Publish(t.Context(), r); err != nil {
			t.Fatalf("Publish(%+v): %v", r, err)
		}
	}
}

func txt(domain, name, value string) dcv.Record {
	return dcv.Record{Domain: domain, Name: name, Type: "TXT", Value: value}
}

func TestDelegatedZoneAnswers(t *testing.T) {
	z := startZone(t, dcv.DelegatedConfig{
		Glue: map[string][]netip.Addr{"ns1." + testZone: {netip.MustParseAddr("127.0.0.53")}},
	})
	long := strings.Repeat("0123456789abcdef", 40) // 640 bytes: three character-strings
	tok1 := txt("example.com", "_dnsauth.example.com", "tok-1")
	tok2 := txt("example.com", "_dnsauth.example.com", "tok-2")
	longRec := txt("long.example", "_dnsauth.long.example", long)
	cname := dcv.Record{Domain: "example.com", Name: "rnd123.example.com", Type: "CNAME", Value: "dcv.digicert.com"}
	publish(t, z, tok1, tok2, longRec, cname)

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			q := func(name string, qtype uint16) *dns.Msg {
				return query(t, z.Addr(), network, name, qtype)
			}
			authoritative := func(m *dns.Msg, want string) {
				t.Helper()
				if !m.Authoritative || rcode(m) != want {
					t.Fatalf("%s: AA=%v rcode %s, want AA and %s\n%v", m.Question[0].Name, m.Authoritative, rcode(m), want, m)
				}
			}

			m := q(testZone, dns.TypeSOA)
			authoritative(m, "NOERROR")
			if len(m.Answer) != 1 || m.Answer[0].(*dns.SOA).Ns != "ns1."+testZone+"." {
				t.Errorf("SOA answer: %v", m.Answer)
			}

			m = q(testZone, dns.TypeNS)
			authoritative(m, "NOERROR")
			var ns []string
			for _, rr := range m.Answer {
				ns = append(ns, rr.(*dns.NS).Ns)
			}
			slices.Sort(ns)
			if want := []string{"ns.other.test.", "ns1." + testZone + "."}; !slices.Equal(ns, want) {
				t.Errorf("NS = %v, want %v", ns, want)
			}
			var glue []string
			for _, rr := range m.Extra {
				if a, ok := rr.(*dns.A); ok {
					glue = append(glue, a.A.String())
				}
			}
			if !slices.Equal(glue, []string{"127.0.0.53"}) {
				t.Errorf("NS answer glue = %v, want the A of ns1", m.Extra)
			}
			m = q("ns1."+testZone, dns.TypeA)
			authoritative(m, "NOERROR")
			if len(m.Answer) != 1 {
				t.Errorf("A of the in-zone name server: %v", m.Answer)
			}

			// Mixed case, as resolvers using 0x20 randomisation send it.
			m = q(strings.ToUpper(z.Target(tok1)[:10])+z.Target(tok1)[10:], dns.TypeTXT)
			authoritative(m, "NOERROR")
			if got := txtValues(m); !slices.Equal(got, []string{"tok-1", "tok-2"}) {
				t.Errorf("TXT at %s = %v, want both tokens", z.Target(tok1), got)
			}
			if ttl := m.Answer[0].Header().Ttl; ttl != 60 {
				t.Errorf("TTL %d, want the default 60", ttl)
			}

			m = q(z.Target(longRec), dns.TypeTXT)
			authoritative(m, "NOERROR")
			if got := txtValues(m); len(got) != 1 || got[0] != long {
				t.Fatalf("long TXT came back as %q", got)
			}
			if n := len(m.Answer[0].(*dns.TXT).Txt); n != 3 {
				t.Errorf("a 640-byte value is %d character-strings, want 3", n)
			}

			for _, qt := range []uint16{dns.TypeCNAME, dns.TypeTXT, dns.TypeA} {
				m = q(z.Target(cname), qt)
				authoritative(m, "NOERROR")
				if got := cnameTarget(m); got != "dcv.digicert.com." {
					t.Errorf("%s query at the CNAME: target %q", dns.TypeToString[qt], got)
				}
			}

			// NODATA: the name exists without the type asked for...
			for _, name := range []string{z.Target(tok1), testZone} {
				m = q(name, dns.TypeAAAA)
				authoritative(m, "NOERROR")
				if len(m.Answer) != 0 || !hasSOA(m, testZone) {
					t.Errorf("AAAA at %s: want NODATA with the SOA, got %v", name, m)
				}
			}
			// ... and empty non-terminals above published names exist.
			for _, name := range []string{"example.com." + testZone, "com." + testZone} {
				m = q(name, dns.TypeA)
				authoritative(m, "NOERROR")
				if len(m.Answer) != 0 || !hasSOA(m, testZone) {
					t.Errorf("empty non-terminal %s: want NODATA with the SOA, got %v", name, m)
				}
			}

			m = q("_dnsauth.unknown.example."+testZone, dns.TypeTXT)
			authoritative(m, "NXDOMAIN")
			if !hasSOA(m, testZone) {
				t.Errorf("NXDOMAIN without the SOA: %v", m)
			}

			for _, name := range []string{"_dnsauth.example.com", "acmegw.test", "test"} {
				m = q(name, dns.TypeTXT)
				if rcode(m) != "REFUSED" || m.Authoritative || len(m.Answer) != 0 {
					t.Errorf("%s (outside the zone): %s AA=%v, want REFUSED without AA", name, rcode(m), m.Authoritative)
				}
			}
		})
	}
}

// TestDelegatedTruncation checks that a large answer is truncated over UDP
// and served whole over TCP, as resolvers then retry.
func TestDelegatedTruncation(t *testing.T) {
	z := startZone(t, dcv.DelegatedConfig{})
	var want []string
	for i := range 20 {
		v := fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 100))
		want = append(want, v)
		publish(t, z, txt("big.example", "_dnsauth.big.example", v))
	}
	name := z.Target(dcv.Record{Name: "_dnsauth.big.example"})
	if m := query(t, z.Addr(), "udp", name, dns.TypeTXT); !m.Truncated {
		t.Errorf("UDP answer of %d bytes was not truncated", m.Len())
	}
	if got := txtValues(query(t, z.Addr(), "tcp", name, dns.TypeTXT)); !slices.Equal(got, want) {
		t.Errorf("TCP answer: %d values, want %d", len(got), len(want))
	}
}

func TestDelegatedUnpublish(t *testing.T) {
	z := startZone(t, dcv.DelegatedConfig{})
	a1 := txt("example.com", "_dnsauth.example.com", "a1")
	a2 := txt("example.com", "_dnsauth.example.com", "a2")
	www := txt("www.example.com", "_dnsauth.www.example.com", "w")
	publish(t, z, a1, a2, www)
	ctx := t.Context()
	q := func(name string) *dns.Msg { return query(t, z.Addr(), "udp", name, dns.TypeTXT) }

	if err := z.Unpublish(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if got := txtValues(q(z.Target(a1))); !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("after unpublishing a1: %v, want [a2]", got)
	}
	if err := z.Unpublish(ctx, www); err != nil {
		t.Fatal(err)
	}
	if m := q(z.Target(www)); rcode(m) != "NXDOMAIN" {
		t.Errorf("unpublished %s: %s", z.Target(www), rcode(m))
	}
	if m := q("www.example.com." + testZone); rcode(m) != "NXDOMAIN" {
		t.Errorf("www.example.com.%s has nothing below it any more: %s, want NXDOMAIN", testZone, rcode(m))
	}
	if m := q("example.com." + testZone); rcode(m) != "NOERROR" {
		t.Errorf("example.com.%s still has _dnsauth below it: %s, want NOERROR", testZone, rcode(m))
	}
	if err := z.Unpublish(ctx, a2); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{z.Target(a2), "example.com." + testZone, "com." + testZone} {
		if m := q(name); rcode(m) != "NXDOMAIN" {
			t.Errorf("%s after unpublishing everything: %s, want NXDOMAIN", name, rcode(m))
		}
	}
	// Unpublishing again is harmless: brand jobs retry.
	if err := z.Unpublish(ctx, a2); err != nil {
		t.Errorf("second Unpublish: %v", err)
	}
}

// TestDelegationChain follows the brand's lookup: the public DNS of
// example.com (a validationtest.DNSServer, which does not recurse) holds the
// owner's CNAME; its target is looked up in the delegated zone, as a
// resolver would next.
func TestDelegationChain(t *testing.T) {
	z := startZone(t, dcv.DelegatedConfig{})
	public := validationtest.NewDNSServer(t)
	rec := txt("example.com", "_dnsauth.example.com", "brand-token-42")
	if want := "_dnsauth.example.com." + testZone; z.Target(rec) != want {
		t.Fatalf("Target = %s, want %s", z.Target(rec), want)
	}
	public.AddCNAME("_dnsauth.example.com", z.Target(rec))
	publish(t, z, rec)

	m := query(t, public.Addr(), "udp", "_dnsauth.example.com", dns.TypeTXT)
	target := cnameTarget(m)
	if target != z.Target(rec)+"." {
		t.Fatalf("public DNS: TXT _dnsauth.example.com → CNAME %q, want %s.", target, z.Target(rec))
	}
	m = query(t, z.Addr(), "udp", target, dns.TypeTXT)
	if got := txtValues(m); !m.Authoritative || !slices.Equal(got, []string{"brand-token-42"}) {
		t.Fatalf("delegated zone at %s: AA=%v %v", target, m.Authoritative, got)
	}
	// The operator's instructions name exactly the CNAME the chain uses.
	if ins := z.Instructions("*.example.com"); !strings.Contains(ins, "_dnsauth.example.com.  CNAME  "+target+"\n") {
		t.Errorf("Instructions do not give the CNAME to %s:\n%s", target, ins)
	}
}

func TestCheckDelegation(t *testing.T) {
	resolver := validationtest.NewDNSServer(t)
	z := startZone(t, dcv.DelegatedConfig{CheckDelegation: true, Resolver: resolver.Addr()})
	rec := txt("example.com", "_dnsauth.example.com", "tok")
	wantLine := "_dnsauth.example.com. CNAME _dnsauth.example.com." + testZone + "."

	err := z.Publish(t.Context(), rec)
	var de *dcv.DelegationError
	if !errors.As(err, &de) || de.Got != "" || !strings.Contains(err.Error(), wantLine) {
		t.Fatalf("Publish without the owner's CNAME: %v; want a DelegationError naming %q", err, wantLine)
	}
	t.Logf("missing CNAME: %v", err)
	if m := query(t, z.Addr(), "udp", z.Target(rec), dns.TypeTXT); rcode(m) != "NXDOMAIN" {
		t.Errorf("a refused Publish left the record served: %s", rcode(m))
	}

	resolver.AddCNAME("_dnsauth.example.com", "_dnsauth.example.com.other-gateway.test")
	err = z.Publish(t.Context(), rec)
	if !errors.As(err, &de) || de.Got != "_dnsauth.example.com.other-gateway.test" ||
		!strings.Contains(err.Error(), "other-gateway.test.") || !strings.Contains(err.Error(), wantLine) {
		t.Fatalf("Publish with a CNAME elsewhere: %v", err)
	}
	t.Logf("wrong CNAME: %v", err)

	resolver.Remove("_dnsauth.example.com")
	resolver.AddCNAME("_dnsauth.example.com", z.Target(rec))
	publish(t, z, rec)
	if got := txtValues(query(t, z.Addr(), "udp", z.Target(rec), dns.TypeTXT)); !slices.Equal(got, []string{"tok"}) {
		t.Errorf("after a good check: %v", got)
	}
	// Unpublish needs no delegation: it must work even if the owner has
	// removed the CNAME meanwhile.
	resolver.Remove("_dnsauth.example.com")
	if err := z.Unpublish(t.Context(), rec); err != nil {
		t.Errorf("Unpublish: %v", err)
	}
}

// TestDelegatedSharedStore stands two acmegw instances on one Redis: what
// one publishes, the other answers, and unpublishing on one removes it from
// both.
func TestDelegatedSharedStore(t *testing.T) {
	url := testredis.Start(t)
	newStore := func() dcv.RecordStore {
		opts, err := goredis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c := goredis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		return dcv.NewRedisStore(c)
	}
	a := startZone(t, dcv.DelegatedConfig{Store: newStore()})
	b := startZone(t, dcv.DelegatedConfig{Store: newStore()})
	// Fresh names: a Redis given by URL may be shared with other runs.
	domain := fmt.Sprintf("shared-%d.example", time.Now().UnixNano())
	rec := txt(domain, "_dnsauth."+domain, "from-a")

	publish(t, a, rec)
	for _, z := range []*dcv.DelegatedZone{a, b} {
		m := query(t, z.Addr(), "tcp", a.Target(rec), dns.TypeTXT)
		if got := txtValues(m); !m.Authoritative || !slices.Equal(got, []string{"from-a"}) {
			t.Errorf("instance %s: AA=%v %v", z.Addr(), m.Authoritative, got)
		}
		if m := query(t, z.Addr(), "udp", domain+"."+testZone, dns.TypeTXT); rcode(m) != "NOERROR" {
			t.Errorf("instance %s: empty non-terminal %s", z.Addr(), rcode(m))
		}
	}
	if err := a.Unpublish(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if m := query(t, b.Addr(), "udp", a.Target(rec), dns.TypeTXT); rcode(m) != "NXDOMAIN" {
		t.Errorf("other instance after Unpublish: %s", rcode(m))
	}
}

// brokenStore fails every call, as a Redis outage would.
type brokenStore struct{}

func (brokenStore) Put(context.Context, string, string, string, time.Duration) error {
	return errors.New("store down")
}
func (brokenStore) Delete(context.Context, string, string, string) error {
	return errors.New("store down")
}
func (brokenStore) Get(context.Context, string) ([]dcv.StoredRecord, error) {
	return nil, errors.New("store down")
}

// TestDelegatedStoreDown checks that a failing store makes the zone answer
// SERVFAIL (resolvers then try another instance) and Publish fail, rather
// than deny records exist.
func TestDelegatedStoreDown(t *testing.T) {
	z := startZone(t, dcv.DelegatedConfig{Store: brokenStore{}, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if m := query(t, z.Addr(), "udp", "_dnsauth.example.com."+testZone, dns.TypeTXT); rcode(m) != "SERVFAIL" {
		t.Errorf("store down: %s, want SERVFAIL", rcode(m))
	}
	if m := query(t, z.Addr(), "udp", testZone, dns.TypeSOA); rcode(m) != "NOERROR" {
		t.Errorf("the apex needs no store: %s", rcode(m))
	}
	if err := z.Publish(t.Context(), txt("example.com", "_dnsauth.example.com", "x")); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Errorf("Publish with the store down: %v", err)
	}
}

func TestDelegatedTargetAndInstructions(t *testing.T) {
	z, err := dcv.NewDelegatedZone(dcv.DelegatedConfig{
		Zone: "DCV.AcmeGW.Example.", NS: []string{"ns1.acmegw.example"},
		Labels: []string{"_dnsauth", "_acme-challenge"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"_dnsauth.example.com":        "_dnsauth.example.com.dcv.acmegw.example",
		"_DNSAUTH.Example.COM.":       "_dnsauth.example.com.dcv.acmegw.example",
		"_acme-challenge.www.example": "_acme-challenge.www.example.dcv.acmegw.example",
		"x7f3k2.example.com":          "x7f3k2.example.com.dcv.acmegw.example",
	} {
		if got := z.Target(dcv.Record{Name: name}); got != want {
			t.Errorf("Target(%s) = %s, want %s", name, got, want)
		}
	}
	ins := z.Instructions("*.Example.com")
	for _, line := range []string{
		"    _dnsauth.example.com.  CNAME  _dnsauth.example.com.dcv.acmegw.example.\n",
		"    _acme-challenge.example.com.  CNAME  _acme-challenge.example.com.dcv.acmegw.example.\n",
	} {
		if !strings.Contains(ins, line) {
			t.Errorf("Instructions lack %q:\n%s", line, ins)
		}
	}
	if z.Method() != "delegated" || z.Zone() != "dcv.acmegw.example" || z.Addr() != "" {
		t.Errorf("Method %q Zone %q Addr %q", z.Method(), z.Zone(), z.Addr())
	}
}

func TestDelegatedRejects(t *testing.T) {
	for _, tc := range []struct {
		cfg  dcv.DelegatedConfig
		want string
	}{
		{dcv.DelegatedConfig{NS: []string{"ns.x.test"}}, "zone is required"},
		{dcv.DelegatedConfig{Zone: "dcv.x.test"}, "at least one name server"},
		{dcv.DelegatedConfig{Zone: "test", NS: []string{"ns.x.test"}}, "not a valid DNS name below a TLD"},
		{dcv.DelegatedConfig{Zone: "dcv.x.test", NS: []string{"ns.x.test"},
			Glue: map[string][]netip.Addr{"ns.x.test": {netip.MustParseAddr("192.0.2.1")}}}, "outside zone"},
	} {
		if _, err := dcv.NewDelegatedZone(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewDelegatedZone(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}

	z, err := dcv.NewDelegatedZone(dcv.DelegatedConfig{Zone: testZone, NS: []string{"ns.x.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := z.Start(t.Context()); err == nil {
		t.Error("Start without a listen address succeeded")
	}
	for _, tc := range []struct {
		rec  dcv.Record
		want string
	}{
		{dcv.Record{Name: "_dnsauth", Type: "TXT", Value: "v"}, "not fully qualified"},
		{dcv.Record{Name: "*.example.com", Type: "TXT", Value: "v"}, "cannot have"},
		{dcv.Record{Name: "_dnsauth.example.com", Type: "MX", Value: "v"}, "only TXT and CNAME"},
		{dcv.Record{Name: "_dnsauth.example.com", Type: "TXT"}, "empty value"},
		{dcv.Record{Name: "x.example.com", Type: "CNAME", Value: "bad..name"}, "not a valid DNS name"},
		{dcv.Record{Name: "_dnsauth.x." + testZone, Type: "TXT", Value: "v"}, "inside the zone"},
		{dcv.Record{Name: strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + ".example", Type: "TXT", Value: "v"}, "too long"},
	} {
		if err := z.Publish(t.Context(), tc.rec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Publish(%+v) = %v, want an error with %q", tc.rec, err, tc.want)
		}
	}
	// A name holds one CNAME or other records, never both.
	publish(t, z, dcv.Record{Name: "c.example.com", Type: "CNAME", Value: "one.example"})
	if err := z.Publish(t.Context(), dcv.Record{Name: "c.example.com", Type: "CNAME", Value: "two.example"}); err == nil {
		t.Error("a second CNAME target at one name was accepted")
	}
	if err := z.Publish(t.Context(), txt("example.com", "c.example.com", "v")); err == nil {
		t.Error("a TXT next to a CNAME was accepted")
	}
	publish(t, z, dcv.Record{Name: "c.example.com", Type: "CNAME", Value: "ONE.example."}) // same CNAME again: fine
}
