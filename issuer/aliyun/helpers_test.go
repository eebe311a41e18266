package aliyun

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/aliyun/aliyuntest"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// dnsPublisher is a dcv.Publisher that writes TXT records into the test's
// DNS server. With a delegation zone it plays the "delegated" method: the
// domain owner's _dnsauth.<domain> is a CNAME to <domain>.<zone>, and the
// record is served there.
type dnsPublisher struct {
	dns  *validationtest.DNSServer
	zone string

	mu          sync.Mutex
	published   []dcv.Record
	unpublished []dcv.Record
	live        map[string]dcv.Record
	failPublish error
}

func newDNSPublisher(dns *validationtest.DNSServer, zone string) *dnsPublisher {
	return &dnsPublisher{dns: dns, zone: zone, live: map[string]dcv.Record{}}
}

func (p *dnsPublisher) target(r dcv.Record) string {
	if p.zone != "" {
		return r.Domain + "." + p.zone
	}
	return r.Name
}

func (p *dnsPublisher) Publish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failPublish != nil {
		return p.failPublish
	}
	if r.Type != "TXT" {
		return nil
	}
	key := p.target(r) + "|" + r.Value
	if _, dup := p.live[key]; !dup {
		p.dns.AddTXT(p.target(r), r.Value)
		p.live[key] = r
	}
	p.published = append(p.published, r)
	return nil
}

func (p *dnsPublisher) Unpublish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dns.RemoveTXT(p.target(r), r.Value)
	delete(p.live, p.target(r)+"|"+r.Value)
	p.unpublished = append(p.unpublished, r)
	return nil
}

func (p *dnsPublisher) Method() string {
	if p.zone != "" {
		return "delegated"
	}
	return "dns-provider"
}

func (p *dnsPublisher) snapshot() (published, unpublished []dcv.Record, live int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]dcv.Record(nil), p.published...), append([]dcv.Record(nil), p.unpublished...), len(p.live)
}

// env is one brand wired to a fake CAS whose DCV check asks a loopback DNS
// server that a test publisher writes into.
type env struct {
	fake *aliyuntest.Server
	dns  *validationtest.DNSServer
	pub  *dnsPublisher
	cfg  Config
	is   *Issuer
}

func newEnv(t *testing.T, product string, tweak func(*Config)) *env {
	t.Helper()
	dns := validationtest.NewDNSServer(t)
	fake := aliyuntest.NewServer(t, aliyuntest.Options{Resolver: dns.Addr()})
	pub := newDNSPublisher(dns, "")
	cfg := Config{
		AccessKeyID:     aliyuntest.DefaultAccessKeyID,
		AccessKeySecret: aliyuntest.DefaultAccessKeySecret,
		Endpoint:        fake.URL(),
		ProductCode:     product,
		Username:        "Tom",
		Phone:           "1390000****",
		Email:           "username@example.com",
		Publisher:       pub,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	is, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, dns: dns, pub: pub, cfg: cfg, is: is}
}

// restart is a new Issuer with the same configuration, as another
// instance or the same one after a restart would have: only the ticket
// carries state.
func (e *env) restart(t *testing.T) *Issuer {
	t.Helper()
	is, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// pollStep is one Poll's outcome, for assertions on the walk.
type pollStep struct {
	state      string // the fake's state after the poll
	retryAfter time.Duration
}

// pollUntilDone polls like the issuance job until a chain or an error,
// recording the fake's state after each poll.
func (e *env) pollUntilDone(t *testing.T, is *Issuer, ticket string, maxPolls int) (issuer.Result, []pollStep, error) {
	t.Helper()
	id := ticketOrder(t, ticket)
	var steps []pollStep
	for range maxPolls {
		res, err := is.Poll(context.Background(), ticket)
		o, _ := e.fake.Order(id)
		steps = append(steps, pollStep{state: o.State, retryAfter: res.RetryAfter})
		if err != nil || len(res.Chain) > 0 {
			return res, steps, err
		}
		if res.Ticket == "" {
			t.Fatalf("Poll returned neither chain, ticket nor error")
		}
		ticket = res.Ticket
	}
	t.Fatalf("not done after %d polls: %v", maxPolls, steps)
	return issuer.Result{}, nil, nil
}

func ticketOrder(t *testing.T, ticket string) int64 {
	t.Helper()
	tk, err := parseTicket(ticket)
	if err != nil {
		t.Fatalf("parseTicket: %v", err)
	}
	return tk.OrderID
}

func ecKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCSR makes a CSR with common name cn and SANs names (cn when none).
func newCSR(t *testing.T, key crypto.Signer, cn string, names ...string) *x509.CertificateRequest {
	t.Helper()
	if len(names) == 0 && cn != "" {
		names = []string{cn}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: names,
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

func request(t *testing.T, key crypto.Signer, names ...string) issuer.Request {
	t.Helper()
	return issuer.Request{OrderID: "order-" + strings.ReplaceAll(names[0], "*", "star"), CSR: newCSR(t, key, names[0], names...), DNSNames: names}
}

// verifyChain checks that chain is leaf first, signed up to the fake's
// root, for names and for key.
func verifyChain(t *testing.T, fake *aliyuntest.Server, res issuer.Result, key crypto.Signer, names ...string) {
	t.Helper()
	certs, err := parseChain(string(res.Chain))
	if err != nil {
		t.Fatalf("chain: %v", err)
	}
	if res.Leaf == nil || !res.Leaf.Equal(certs[0]) {
		t.Fatalf("Result.Leaf is not the chain's first certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := res.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: fake.Roots(), Intermediates: inter}); err != nil {
			t.Errorf("leaf does not verify for %s: %v", n, err)
		}
	}
	if pk, ok := res.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(key.Public()) {
		t.Errorf("leaf is not for the CSR's key")
	}
}
