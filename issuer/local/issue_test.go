package local

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

func newCSR(t testing.TB, key crypto.Signer, cn string) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func ecKey(t testing.TB, curve elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t testing.TB, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// parseChain splits a PEM chain into certificates.
func parseChain(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(data)) != 0 {
		t.Fatalf("trailing data after chain: %q", data)
	}
	return certs
}

// verify checks that chain (leaf first) leads to root, for server auth.
func verify(t *testing.T, chain []*x509.Certificate, root *x509.Certificate) error {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inters.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inters,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func TestSubmit(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{})
	for _, tc := range []struct {
		name  string
		key   crypto.Signer
		isRSA bool
	}{
		{"ecdsa-p256", ecKey(t, elliptic.P256()), false},
		{"ecdsa-p384", ecKey(t, elliptic.P384()), false},
		{"rsa-2048", rsaKey(t, 2048), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := []string{"Www.Example.COM", "a.example", "*.b.example", "xn--bcher-kva.example"}
			ips := []string{"2001:db8::1", "192.0.2.7"}
			nb := time.Now().Add(-30 * time.Minute).Truncate(time.Second).UTC()
			na := nb.Add(47*time.Hour + 13*time.Second)
			res, err := ca.Submit(t.Context(), issuer.Request{
				OrderID: "o1", CSR: newCSR(t, tc.key, "ignored.example"),
				DNSNames: dns, IPs: ips, NotBefore: nb, NotAfter: na,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ticket != "" || res.Alternates != nil {
				t.Errorf("Ticket %q, Alternates %d", res.Ticket, len(res.Alternates))
			}
			chain := parseChain(t, res.Chain)
			if len(chain) != 2 {
				t.Fatalf("chain has %d certificates, want leaf + intermediate", len(chain))
			}
			leaf := chain[0]
			if !bytes.Equal(leaf.Raw, res.Leaf.Raw) || !bytes.Equal(chain[1].Raw, ca.Intermediate().Raw) {
				t.Fatal("chain is not Leaf + intermediate")
			}
			if err := verify(t, chain, ca.Root()); err != nil {
				t.Fatalf("chain does not verify to root: %v", err)
			}
			if !slices.Equal(leaf.DNSNames, dns) {
				t.Errorf("DNSNames = %q, want %q", leaf.DNSNames, dns)
			}
			var gotIPs []string
			for _, ip := range leaf.IPAddresses {
				gotIPs = append(gotIPs, ip.String())
			}
			if !slices.Equal(gotIPs, ips) {
				t.Errorf("IPAddresses = %q, want %q", gotIPs, ips)
			}
			if leaf.Subject.CommonName != "Www.Example.COM" {
				t.Errorf("CN = %q", leaf.Subject.CommonName)
			}
			if !leaf.NotBefore.Equal(nb) || !leaf.NotAfter.Equal(na) {
				t.Errorf("validity %s – %s, want %s – %s", leaf.NotBefore, leaf.NotAfter, nb, na)
			}
			wantUsage := x509.KeyUsageDigitalSignature
			if tc.isRSA {
				wantUsage |= x509.KeyUsageKeyEncipherment
			}
			if leaf.KeyUsage != wantUsage {
				t.Errorf("KeyUsage = %v, want %v", leaf.KeyUsage, wantUsage)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
			}
			if leaf.IsCA || !leaf.BasicConstraintsValid {
				t.Errorf("IsCA = %v", leaf.IsCA)
			}
			if !bytes.Equal(leaf.AuthorityKeyId, ca.Intermediate().SubjectKeyId) {
				t.Errorf("AuthorityKeyId = %x, want %x", leaf.AuthorityKeyId, ca.Intermediate().SubjectKeyId)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() != 128 || len(leaf.SerialNumber.Text(16)) != 32 {
				t.Errorf("serial %s", leaf.SerialNumber.Text(16))
			}
			if !tc.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
				t.Error("leaf does not certify the CSR's key")
			}
		})
	}
}

func TestSubmitWithRSACA(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{KeyType: "rsa"})
	res, err := ca.Submit(t.Context(), issuer.Request{CSR: newCSR(t, ecKey(t, elliptic.P256()), ""), DNSNames: []string{"a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, parseChain(t, res.Chain), ca.Root()); err != nil {
		t.Fatal(err)
	}
}

func TestSubmitDefaults(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{})
	csr := newCSR(t, ecKey(t, elliptic.P256()), "")
	submit := func(req issuer.Request) *x509.Certificate {
		t.Helper()
		req.CSR = csr
		if req.DNSNames == nil && req.IPs == nil {
			req.DNSNames = []string{"a.example"}
		}
		res, err := ca.Submit(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res.Leaf
	}

	before := time.Now().Truncate(time.Second)
	leaf := submit(issuer.Request{})
	if leaf.NotBefore.Before(before) || leaf.NotBefore.After(time.Now()) {
		t.Errorf("NotBefore %s, want now", leaf.NotBefore)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 2160*time.Hour {
		t.Errorf("default validity %v, want 2160h", d)
	}
	if d := submit(issuer.Request{Validity: 160 * time.Hour}); d.NotAfter.Sub(d.NotBefore) != 160*time.Hour {
		t.Errorf("validity %v, want 160h", d.NotAfter.Sub(d.NotBefore))
	}
	nb := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	if l := submit(issuer.Request{NotBefore: nb, Validity: time.Hour}); !l.NotBefore.Equal(nb) || !l.NotAfter.Equal(nb.Add(time.Hour)) {
		t.Errorf("validity %s – %s", l.NotBefore, l.NotAfter)
	}

	long := strings.Repeat("a", 60) + ".example.com" // 72 characters
	leaf = submit(issuer.Request{DNSNames: []string{long, "b.example"}})
	if leaf.Subject.CommonName != "" || leaf.DNSNames[0] != long {
		t.Errorf("CN = %q, DNSNames = %q", leaf.Subject.CommonName, leaf.DNSNames)
	}

	leaf = submit(issuer.Request{IPs: []string{"10.1.2.3"}})
	if leaf.Subject.CommonName != "" || len(leaf.DNSNames) != 0 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.1.2.3")) {
		t.Errorf("IP-only leaf: CN %q DNS %q IPs %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal([]int{2, 5, 29, 17}) && !ext.Critical {
			t.Error("SAN extension not critical with an empty subject")
		}
	}
}

func TestSubmitRefuses(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{MaxValidity: 100 * 24 * time.Hour})
	good := newCSR(t, ecKey(t, elliptic.P256()), "")
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	now := time.Now()
	many := make([]string, 101)
	for i := range many {
		many[i] = "n" + strings.Repeat("x", i) + ".example"
	}

	for _, tc := range []struct {
		name string
		ctx  context.Context
		req  issuer.Request
	}{
		{"rsa-1024", nil, issuer.Request{CSR: newCSR(t, rsaKey(t, 1024), ""), DNSNames: []string{"a.example"}}},
		{"ed25519", nil, issuer.Request{CSR: newCSR(t, edKey, ""), DNSNames: []string{"a.example"}}},
		{"p-521", nil, issuer.Request{CSR: newCSR(t, ecKey(t, elliptic.P521()), ""), DNSNames: []string{"a.example"}}},
		{"no csr", nil, issuer.Request{DNSNames: []string{"a.example"}}},
		{"no names", nil, issuer.Request{CSR: good}},
		{"too many names", nil, issuer.Request{CSR: good, DNSNames: many}},
		{"bad ip", nil, issuer.Request{CSR: good, IPs: []string{"999.1.1.1"}}},
		{"non-ascii dns", nil, issuer.Request{CSR: good, DNSNames: []string{"bücher.example"}}},
		{"notAfter before notBefore", nil, issuer.Request{CSR: good, DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(-time.Hour)}},
		{"negative validity", nil, issuer.Request{CSR: good, DNSNames: []string{"a.example"}, Validity: -time.Hour}},
		{"over MaxValidity", nil, issuer.Request{CSR: good, DNSNames: []string{"a.example"}, Validity: 101 * 24 * time.Hour}},
		{"canceled", canceled, issuer.Request{CSR: good, DNSNames: []string{"a.example"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			res, err := ca.Submit(ctx, tc.req)
			if err == nil {
				t.Fatalf("Submit succeeded: %s", res.Leaf.Subject)
			}
			if !strings.HasPrefix(err.Error(), "local ca: ") {
				t.Errorf("error lacks context: %v", err)
			}
			// A refusal is final; only the canceled request may be retried.
			if want := tc.ctx == nil; issuer.IsPermanent(err) != want {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !want, want)
			}
		})
	}

	// Past the intermediate's end the leaf could never verify.
	unlimited := openCA(t, t.TempDir(), Options{})
	if _, err := unlimited.Submit(t.Context(), issuer.Request{CSR: good, DNSNames: []string{"a.example"}, Validity: 6 * 365 * 24 * time.Hour}); err == nil {
		t.Error("Submit signed a leaf outliving the intermediate")
	}
}

func TestAlternateChain(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{AlternateChain: true})
	res, err := ca.Submit(t.Context(), issuer.Request{CSR: newCSR(t, ecKey(t, elliptic.P256()), ""), DNSNames: []string{"a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alternates) != 1 {
		t.Fatalf("%d alternates, want 1", len(res.Alternates))
	}
	primary, alt := parseChain(t, res.Chain), parseChain(t, res.Alternates[0])
	if len(alt) != 2 || !bytes.Equal(alt[0].Raw, primary[0].Raw) {
		t.Fatal("alternate chain does not start with the same leaf")
	}
	if bytes.Equal(alt[1].Raw, primary[1].Raw) {
		t.Fatal("alternate chain repeats the primary intermediate")
	}
	if err := verify(t, alt, ca.AlternateRoot()); err != nil {
		t.Fatalf("alternate chain does not verify to the alternate root: %v", err)
	}
	if err := verify(t, alt, ca.Root()); err == nil {
		t.Fatal("alternate chain verifies to the primary root")
	}
	if err := verify(t, primary, ca.Root()); err != nil {
		t.Fatalf("primary chain: %v", err)
	}
}

func TestPollRevokeDescribe(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{MaxValidity: 398 * 24 * time.Hour, CAAIdentities: []string{"ca.example"}})
	if _, err := ca.Poll(t.Context(), "x"); err == nil {
		t.Error("Poll succeeded")
	}
	if err := ca.Revoke(t.Context(), ca.Intermediate(), 1); err != nil {
		t.Errorf("Revoke: %v", err)
	}
	p := ca.Describe()
	if !p.Wildcard || !p.IP || p.MaxNames != 100 || p.MaxValidity != 398*24*time.Hour || !slices.Equal(p.CAAIdentities, []string{"ca.example"}) {
		t.Errorf("Describe = %+v", p)
	}
	p.CAAIdentities[0] = "changed"
	if ca.Describe().CAAIdentities[0] != "ca.example" {
		t.Error("Describe shares its slice")
	}
	if d := openCA(t, t.TempDir(), Options{}).Describe(); d.MaxValidity != 0 || d.CAAIdentities != nil {
		t.Errorf("default Describe = %+v", d)
	}
}

func TestServerCertificate(t *testing.T) {
	ca := openCA(t, t.TempDir(), Options{})
	cert, err := ca.ServerCertificate(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Intermediate().Raw) {
		t.Fatal("chain is not leaf + intermediate")
	}
	if d := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore); d != time.Hour {
		t.Errorf("validity %v", d)
	}
	other, err := ca.ServerCertificate([]string{"gw.example"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(cert.Leaf.PublicKey) {
		t.Error("two calls share a key")
	}
	if !slices.Equal(other.Leaf.DNSNames, []string{"gw.example"}) {
		t.Errorf("DNSNames = %q", other.Leaf.DNSNames)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		t.Run(name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			defer s.Close()
			server := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
			done := make(chan error, 1)
			go func() { done <- server.Handshake() }()
			client := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: name})
			if err := client.Handshake(); err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
		})
	}
}

func BenchmarkSubmit(b *testing.B) {
	ca := openCA(b, b.TempDir(), Options{})
	for _, bc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"ecdsa-p256", ecKey(b, elliptic.P256())},
		{"rsa-2048", rsaKey(b, 2048)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := issuer.Request{CSR: newCSR(b, bc.key, ""), DNSNames: []string{"a.example", "www.a.example"}}
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ca.Submit(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
