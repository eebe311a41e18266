package dcv_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// The fakes of the DNS operators' APIs keep their records in a fakeZone,
// which also serves them on a real loopback DNS server, so a test sees a
// record in DNS exactly when the fake API holds it.

const providerZone = "example.com"

type fakeRecord struct {
	ID          int
	Name        string // canonical FQDN without the trailing dot
	Type, Value string // Value as the API was given it
}

type fakeZone struct {
	dns *validationtest.DNSServer

	mu      sync.Mutex
	next    int
	records []fakeRecord
	calls   map[string]int
}

func newFakeZone(t *testing.T) *fakeZone {
	return &fakeZone{dns: validationtest.NewDNSServer(t), next: 1000, calls: map[string]int{}}
}

func (z *fakeZone) count(call string) {
	z.mu.Lock()
	z.calls[call]++
	z.mu.Unlock()
}

func (z *fakeZone) callCount(call string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.calls[call]
}

// add stores a record and serves it. A CNAME target may carry the trailing
// dot; a TXT value may be quoted, as Cloudflare stores it.
func (z *fakeZone) add(name, typ, value string) int {
	z.mu.Lock()
	z.next++
	id := z.next
	rec := fakeRecord{ID: id, Name: strings.TrimSuffix(strings.ToLower(name), "."), Type: strings.ToUpper(typ), Value: value}
	z.records = append(z.records, rec)
	z.mu.Unlock()
	switch rec.Type {
	case "TXT":
		z.dns.AddTXT(rec.Name, unquote(value))
	case "CNAME":
		z.dns.AddCNAME(rec.Name, value)
	}
	return id
}

func unquote(v string) string {
	if s, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
		return s
	}
	return v
}

// remove deletes the record with id from the store and from DNS.
func (z *fakeZone) remove(id int) bool {
	z.mu.Lock()
	i := slices.IndexFunc(z.records, func(r fakeRecord) bool { return r.ID == id })
	if i < 0 {
		z.mu.Unlock()
		return false
	}
	rec := z.records[i]
	z.records = slices.Delete(z.records, i, i+1)
	z.mu.Unlock()
	switch rec.Type {
	case "TXT":
		z.dns.RemoveTXT(rec.Name, unquote(rec.Value))
	case "CNAME":
		z.dns.Remove(rec.Name)
	}
	return true
}

// find returns the records at name (and of typ, unless empty), in order.
func (z *fakeZone) find(name, typ string) []fakeRecord {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []fakeRecord
	for _, r := range z.records {
		if r.Name == strings.TrimSuffix(strings.ToLower(name), ".") && (typ == "" || strings.EqualFold(r.Type, typ)) {
			out = append(out, r)
		}
	}
	return out
}

func (z *fakeZone) txt(t *testing.T, name string) []string {
	t.Helper()
	return txtValues(query(t, z.dns.Addr(), "udp", name, dns.TypeTXT))
}

// exercise runs the contract every API provider must keep against its fake:
// the record shows in DNS after Publish, a repeated Publish adds nothing,
// Unpublish removes exactly that value and may be repeated, and CNAMEs work.
func exercise(t *testing.T, p dcv.Publisher, z *fakeZone) {
	t.Helper()
	ctx := context.Background()
	if p.Method() != "dns-provider" {
		t.Errorf("Method() = %s", p.Method())
	}
	const name = "_dnsauth.example.com"
	// Another order's token at the same name must survive.
	other := z.add(name, "TXT", "other-order-token")
	// A fuzzy search for the label would also match this one.
	z.add("_dnsauth.www.example.com", "TXT", "brand-token-value")

	rec := dcv.Record{Domain: "*.example.com", Name: "_dnsauth.Example.com.", Type: "txt", Value: "brand-token-value"}
	if err := p.Publish(ctx, rec); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got := z.txt(t, name); !slices.Equal(got, []string{"brand-token-value", "other-order-token"}) {
		t.Fatalf("TXT %s after Publish = %q", name, got)
	}
	if err := p.Publish(ctx, rec); err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if n := len(z.find(name, "TXT")); n != 2 {
		t.Errorf("after a repeated Publish %d TXT records at %s, want 2", n, name)
	}
	if err := p.Unpublish(ctx, rec); err != nil {
		t.Fatalf("Unpublish: %v", err)
	}
	if got := z.txt(t, name); !slices.Equal(got, []string{"other-order-token"}) {
		t.Fatalf("TXT %s after Unpublish = %q, want only the other token", name, got)
	}
	if got := z.txt(t, "_dnsauth.www.example.com"); !slices.Equal(got, []string{"brand-token-value"}) {
		t.Fatalf("a record at another name was touched: %q", got)
	}
	if err := p.Unpublish(ctx, rec); err != nil {
		t.Fatalf("repeated Unpublish: %v", err)
	}
	z.remove(other)

	// The zone apex and a CNAME (DigiCert's dns-cname-token).
	apex := dcv.Record{Domain: "example.com", Name: "example.com", Type: "TXT", Value: "apex token with spaces & symbols=+/"}
	if err := p.Publish(ctx, apex); err != nil {
		t.Fatalf("Publish at the apex: %v", err)
	}
	if got := z.txt(t, "example.com"); !slices.Equal(got, []string{apex.Value}) {
		t.Fatalf("TXT at the apex = %q", got)
	}
	if err := p.Unpublish(ctx, apex); err != nil {
		t.Fatalf("Unpublish at the apex: %v", err)
	}
	if got := z.txt(t, "example.com"); len(got) != 0 {
		t.Fatalf("TXT at the apex after Unpublish = %q", got)
	}
	cname := dcv.Record{Domain: "example.com", Name: "x1y2z3.example.com", Type: "CNAME", Value: "dcv.digicert.example"}
	if err := p.Publish(ctx, cname); err != nil {
		t.Fatalf("Publish CNAME: %v", err)
	}
	if got := cnameTarget(query(t, z.dns.Addr(), "udp", cname.Name, dns.TypeCNAME)); got != "dcv.digicert.example." {
		t.Fatalf("CNAME target = %q", got)
	}
	if err := p.Publish(ctx, cname); err != nil {
		t.Fatalf("second Publish CNAME: %v", err)
	}
	if n := len(z.find(cname.Name, "CNAME")); n != 1 {
		t.Errorf("%d CNAME records after a repeated Publish", n)
	}
	if err := p.Unpublish(ctx, cname); err != nil {
		t.Fatalf("Unpublish CNAME: %v", err)
	}
	if m := query(t, z.dns.Addr(), "udp", cname.Name, dns.TypeCNAME); len(m.Answer) != 0 {
		t.Fatalf("CNAME still answered after Unpublish: %v", m.Answer)
	}

	// A name outside the zone is refused before any call.
	if err := p.Publish(ctx, dcv.Record{Domain: "other.org", Name: "_dnsauth.other.org", Type: "TXT", Value: "v"}); err == nil {
		t.Error("Publish outside the configured zone succeeded")
	}
}

// checkRefused checks that a Publisher with a wrong credential fails with
// a readable error that does not show the secret.
func checkRefused(t *testing.T, p dcv.Publisher, secret string, wants ...string) {
	t.Helper()
	err := p.Publish(context.Background(), dcv.Record{Domain: "example.com", Name: "_dnsauth.example.com", Type: "TXT", Value: "v"})
	if err == nil {
		t.Fatal("Publish with a wrong credential succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the secret: %v", err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	t.Logf("wrong credential: %v", err)
}
