package tencent_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/issuer/tencent"
	"github.com/acmegw/acmegw/issuer/tencent/tencenttest"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// dnsPublisher is a dcv.Publisher that writes into a loopback DNS server,
// as the gateway's dns-provider or delegated methods would write into a
// real zone. target maps a record name to where the TXT goes: itself, or
// the delegation target a CNAME points to.
type dnsPublisher struct {
	dns    *validationtest.DNSServer
	target func(name string) string

	mu        sync.Mutex
	published map[string]string // target name → value
	history   []string          // "+name" and "-name", in order
}

func newDNSPublisher(dns *validationtest.DNSServer) *dnsPublisher {
	return &dnsPublisher{dns: dns, target: func(n string) string { return n }, published: map[string]string{}}
}

func (p *dnsPublisher) Publish(_ context.Context, r dcv.Record) error {
	if r.Type != "TXT" {
		return &issuer.Error{Type: "serverInternal", Detail: "test publisher writes TXT only, not " + r.Type}
	}
	name := p.target(r.Name)
	p.dns.AddTXT(name, r.Value)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published[name] = r.Value
	p.history = append(p.history, "+"+r.Name)
	return nil
}

func (p *dnsPublisher) Unpublish(_ context.Context, r dcv.Record) error {
	name := p.target(r.Name)
	p.dns.RemoveTXT(name, r.Value)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.published, name)
	p.history = append(p.history, "-"+r.Name)
	return nil
}

func (p *dnsPublisher) Method() string { return "test-dns" }

// live returns the records currently published.
func (p *dnsPublisher) live() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for k, v := range p.published {
		out[k] = v
	}
	return out
}

// env is a fake Tencent API with a DNS server it checks, and a publisher
// writing into that server.
type env struct {
	fake *tencenttest.Fake
	dns  *validationtest.DNSServer
	pub  *dnsPublisher
}

func newEnv(t *testing.T, opts tencenttest.Options) *env {
	t.Helper()
	dns := validationtest.NewDNSServer(t)
	opts.Resolver = dns.Addr()
	return &env{fake: tencenttest.New(t, opts), dns: dns, pub: newDNSPublisher(dns)}
}

// brand makes a brand for product against the fake; edit adjusts the
// configuration.
func (e *env) brand(t *testing.T, product int64, edit func(*tencent.Config)) *tencent.Brand {
	t.Helper()
	cfg := tencent.Config{
		SecretID:      e.fake.SecretID(),
		SecretKey:     e.fake.SecretKey(),
		Endpoint:      e.fake.URL(),
		ProductID:     product,
		ContactEmail:  "pki@example.com",
		Publisher:     e.pub,
		MaxNames:      100,
		Wildcard:      true,
		CAAIdentities: []string{"trustasia.com"},
		RevokeWait:    5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	b, err := tencent.New("tencent-test", cfg)
	if err != nil {
		t.Fatalf("tencent.New: %v", err)
	}
	return b
}

// newCSR makes an ECDSA P-256 CSR with names[0] as common name and all
// names as SANs.
func newCSR(t *testing.T, names ...string) *x509.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: names[0]},
		DNSNames: names,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func request(t *testing.T, orderID string, names ...string) issuer.Request {
	return issuer.Request{OrderID: orderID, CSR: newCSR(t, names...), DNSNames: names}
}

// pollUntilDone polls like the issuance job (without sleeping: the fake
// moves on every call) until a chain or an error, at most n times; before
// each poll it runs between (nil: nothing).
func pollUntilDone(t *testing.T, b issuer.Issuer, res issuer.Result, n int, between func(i int)) (issuer.Result, error) {
	t.Helper()
	for i := range n {
		if len(res.Chain) > 0 {
			return res, nil
		}
		if res.Ticket == "" {
			t.Fatalf("result has neither a chain nor a ticket: %+v", res)
		}
		if res.RetryAfter <= 0 {
			t.Errorf("poll %d: no RetryAfter", i)
		}
		if between != nil {
			between(i)
		}
		var err error
		if res, err = b.Poll(context.Background(), res.Ticket); err != nil {
			return res, err
		}
	}
	if len(res.Chain) > 0 {
		return res, nil
	}
	t.Fatalf("still pending after %d polls", n)
	return res, nil
}

// certID is the Tencent certificate id of the only certificate the fake
// sold.
func certID(t *testing.T, f *tencenttest.Fake) string {
	t.Helper()
	ids := f.CertificateIDs()
	if len(ids) != 1 {
		t.Fatalf("the fake sold %d certificates (%v), want 1", len(ids), ids)
	}
	return ids[0]
}

// verifyChain checks res against the fake's root and the CSR.
func verifyChain(t *testing.T, f *tencenttest.Fake, res issuer.Result, csr *x509.CertificateRequest, names ...string) {
	t.Helper()
	if res.Leaf == nil {
		t.Fatal("no leaf")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(f.RootPEM())
	inters := x509.NewCertPool()
	rest := res.Chain
	for i := 0; ; i++ {
		c, r := decodeCert(t, rest)
		if c == nil {
			break
		}
		if i == 0 && !c.Equal(res.Leaf) {
			t.Error("the chain does not start with the leaf")
		}
		if i > 0 {
			inters.AddCert(c)
		}
		rest = r
	}
	for _, n := range names {
		if _, err := res.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: n}); err != nil {
			t.Errorf("verifying the leaf for %s: %v", n, err)
		}
	}
	if !res.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Error("the leaf does not carry the CSR's key")
	}
}

// wantError checks that err is an *issuer.Error of typ, permanent or not,
// whose detail contains each of parts.
func wantError(t *testing.T, err error, typ string, permanent bool, parts ...string) *issuer.Error {
	t.Helper()
	ie, ok := issuer.AsError(err)
	if !ok {
		t.Fatalf("error %v is not an *issuer.Error", err)
	}
	if ie.Type != typ || ie.Permanent != permanent {
		t.Errorf("error type %s permanent=%v, want %s permanent=%v (%v)", ie.Type, ie.Permanent, typ, permanent, err)
	}
	if !strings.HasPrefix(ie.Detail, "Tencent Cloud: ") {
		t.Errorf("detail %q does not start with \"Tencent Cloud: \"", ie.Detail)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
	return ie
}
