package digicert_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
	"github.com/acmegw/acmegw/issuer/digicert"
	"github.com/acmegw/acmegw/issuer/digicert/digicerttest"
	"github.com/acmegw/acmegw/validation"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// newCSR makes a P-256 CSR with common name cn (none when empty) and the
// given SANs.
func newCSR(t testing.TB, cn string, sans ...string) *x509.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: sans}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// request is an issuance request for names, the first being the CSR's CN.
func request(t testing.TB, names ...string) issuer.Request {
	t.Helper()
	return issuer.Request{OrderID: "gw-" + strings.ReplaceAll(names[0], ".", "-"), CSR: newCSR(t, names[0], names...), DNSNames: names}
}

// dnsPublisher publishes DCV records into a loopback DNS server, at a
// delegated name when the domain owner CNAMEd the record there (the
// "delegated" method), else at the record's own name. With hold set it
// accepts records without serving them yet, as a slow DNS provider would.
type dnsPublisher struct {
	srv      *validationtest.DNSServer
	delegate map[string]string // record name -> name in the gateway's zone

	mu          sync.Mutex
	hold        bool
	held        []dcv.Record
	published   []dcv.Record
	unpublished []dcv.Record
	failNext    error
}

func newDNSPublisher(srv *validationtest.DNSServer) *dnsPublisher {
	return &dnsPublisher{srv: srv, delegate: map[string]string{}}
}

// delegateTo sets up a delegation: the owner's CNAME from name to target,
// and the publisher writing at target.
func (p *dnsPublisher) delegateTo(name, target string) {
	p.srv.AddCNAME(name, target)
	p.delegate[name] = target
}

func (p *dnsPublisher) at(r dcv.Record) string {
	if t, ok := p.delegate[r.Name]; ok {
		return t
	}
	return r.Name
}

func (p *dnsPublisher) write(r dcv.Record) {
	switch r.Type {
	case "TXT":
		p.srv.AddTXT(p.at(r), r.Value)
	case "CNAME":
		p.srv.AddCNAME(p.at(r), r.Value)
	}
}

func (p *dnsPublisher) Publish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.failNext; err != nil {
		p.failNext = nil
		return err
	}
	p.published = append(p.published, r)
	if p.hold {
		p.held = append(p.held, r)
		return nil
	}
	p.write(r)
	return nil
}

func (p *dnsPublisher) Unpublish(_ context.Context, r dcv.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpublished = append(p.unpublished, r)
	switch r.Type {
	case "TXT":
		p.srv.RemoveTXT(p.at(r), r.Value)
	case "CNAME":
		p.srv.Remove(p.at(r))
	}
	return nil
}

func (p *dnsPublisher) Method() string { return "delegated" }

// release serves the held records.
func (p *dnsPublisher) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.held {
		p.write(r)
	}
	p.hold, p.held = false, nil
}

func (p *dnsPublisher) calls() (published, unpublished []dcv.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]dcv.Record(nil), p.published...), append([]dcv.Record(nil), p.unpublished...)
}

// newBrand makes a brand talking to fake.
func newBrand(t testing.TB, fake *digicerttest.Server, cfg digicert.Config) *digicert.Brand {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = fake.APIKey()
	}
	cfg.BaseURL = fake.URL()
	b, err := digicert.New("digicert-test", cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// lastOrder is the id of the newest fake order.
func lastOrder(t testing.TB, fake *digicerttest.Server) int {
	t.Helper()
	ids := fake.Orders()
	if len(ids) == 0 {
		t.Fatal("the fake has no order")
	}
	return ids[len(ids)-1]
}

// ticketRecords lists the DCV record names a ticket carries. The ticket's
// form is the brand's business; tests read it only to check that what was
// published is remembered across Polls.
func ticketRecords(t testing.TB, tk string) []string {
	t.Helper()
	var v struct {
		Records []struct {
			Name string `json:"n"`
		} `json:"dcv"`
	}
	if err := json.Unmarshal([]byte(tk), &v); err != nil {
		t.Fatalf("ticket %q: %v", tk, err)
	}
	var out []string
	for _, r := range v.Records {
		out = append(out, r.Name)
	}
	return out
}

// checkChain verifies that res carries a leaf for names, chaining to the
// fake's root through the returned intermediates, without the root itself.
func checkChain(t testing.TB, fake *digicerttest.Server, res issuer.Result, names ...string) {
	t.Helper()
	if len(res.Chain) == 0 || res.Leaf == nil {
		t.Fatalf("no chain in %+v", res)
	}
	if res.Ticket != "" {
		t.Errorf("an issued result carries ticket %q", res.Ticket)
	}
	var certs []*x509.Certificate
	for rest := res.Chain; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediate (no root)", len(certs))
	}
	if !certs[0].Equal(res.Leaf) {
		t.Error("Leaf is not the first certificate of Chain")
	}
	for _, c := range certs {
		if c.Equal(fake.Root()) {
			t.Error("the chain includes the self-signed root")
		}
	}
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	roots := x509.NewCertPool()
	roots.AddCert(fake.Root())
	for _, n := range names {
		if _, err := res.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter,
			CurrentTime: time.Now()}); err != nil {
			t.Errorf("leaf does not verify for %s: %v", n, err)
		}
	}
}

// validationLookup reads the TXT records at name from srv.
func validationLookup(t testing.TB, srv *validationtest.DNSServer, name string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return validation.NewResolver(srv.Addr()).LookupTXT(ctx, name)
}
