package main

// End-to-end tests that drive the real acmegw binary with the lego library
// (github.com/go-acme/lego/v4), the client behind Traefik and many others.
// Where lego has no API for an ACME operation (key rollover, account
// deactivation, revocation signed by the certificate key) the tests use
// golang.org/x/crypto/acme, the client cert-manager forked.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
	"github.com/go-acme/lego/v4/lego"
	legolog "github.com/go-acme/lego/v4/log"
	"github.com/go-acme/lego/v4/registration"
	"github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/internal/testlog"
	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/validation/validationtest"
)

var legoLogOnce sync.Once

// legoQuiet silences lego's global logger unless ACMEGW_LEGO_LOG=1: its
// solvers log from their own goroutines, which must not outlive a test's t.
func legoQuiet() {
	legoLogOnce.Do(func() {
		if os.Getenv("ACMEGW_LEGO_LOG") != "1" {
			legolog.Logger = stdlog.New(io.Discard, "", 0)
		}
	})
}

// legoCaptureLog sends lego's log to a buffer until the test ends.
func legoCaptureLog(t testing.TB) *testlog.Buffer {
	legoQuiet()
	buf := &testlog.Buffer{}
	saved := legolog.Logger
	legolog.Logger = stdlog.New(buf, "", 0)
	t.Cleanup(func() { legolog.Logger = saved })
	return buf
}

// legoUser implements registration.User.
type legoUser struct {
	email string
	key   crypto.PrivateKey
	reg   *registration.Resource
}

func (u *legoUser) GetEmail() string                        { return u.email }
func (u *legoUser) GetRegistration() *registration.Resource { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

func legoECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// legoClient builds a lego client for gw whose account key is key (a fresh
// P-256 key if nil). With register it registers a new account; otherwise the
// caller registers, resolves or sets user.reg itself.
func legoClient(t testing.TB, gw *gateway, key crypto.Signer, keyType certcrypto.KeyType, register bool, tweaks ...func(*lego.Config)) (*lego.Client, *legoUser) {
	t.Helper()
	legoQuiet()
	if key == nil {
		key = legoECKey(t, elliptic.P256())
	}
	user := &legoUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = gw.DirURL
	cfg.HTTPClient = gw.HTTPClient(t)
	cfg.UserAgent = "acmegw-e2e"
	cfg.Certificate.KeyType = keyType
	cfg.Certificate.Timeout = 30 * time.Second
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego.NewClient: %v", err)
	}
	if register {
		reg, err := client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
		if err != nil {
			t.Fatalf("lego register: %v", err)
		}
		if !strings.HasPrefix(reg.URI, gw.BaseURL()+"/") || reg.Body.Status != "valid" {
			t.Fatalf("lego register: account %q status %q", reg.URI, reg.Body.Status)
		}
		user.reg = reg
	}
	return client, user
}

// legoNew is legoClient with a fresh registered account and the given
// certificate key type.
func legoNew(t testing.TB, gw *gateway, keyType certcrypto.KeyType, tweaks ...func(*lego.Config)) (*lego.Client, *legoUser) {
	t.Helper()
	return legoClient(t, gw, nil, keyType, true, tweaks...)
}

func legoHTTP01(t testing.TB, c *lego.Client, gw *gateway) {
	t.Helper()
	if err := c.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(gw.HTTPPort))); err != nil {
		t.Fatal(err)
	}
}

func legoTLSALPN01(t testing.TB, c *lego.Client, gw *gateway) {
	t.Helper()
	if err := c.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(gw.TLSALPNPort))); err != nil {
		t.Fatal(err)
	}
}

// legoDNS01 answers dns-01 by writing TXT records into the gateway's DNS
// server. lego's own propagation check asks that same server (its recursive
// resolver list is a package global, so these tests never run in parallel).
func legoDNS01(t testing.TB, c *lego.Client, gw *gateway) *legoDNSProvider {
	t.Helper()
	p := &legoDNSProvider{dns: gw.DNS, live: map[string]int{}, peak: map[string]int{}}
	err := c.Challenge.SetDNS01Provider(p,
		dns01.AddRecursiveNameservers([]string{gw.DNS.Addr()}),
		dns01.AddDNSTimeout(5*time.Second),
		dns01.RecursiveNSsPropagationRequirement(),
		dns01.DisableAuthoritativeNssPropagationRequirement(),
	)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// legoDNSProvider is a challenge.Provider (and challenge.ProviderTimeout)
// that keeps count of how many TXT values each name held at once.
type legoDNSProvider struct {
	dns  *validationtest.DNSServer
	mu   sync.Mutex
	live map[string]int
	peak map[string]int
}

func (p *legoDNSProvider) Present(domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(domain, keyAuth)
	p.dns.AddTXT(info.EffectiveFQDN, info.Value)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live[info.EffectiveFQDN]++
	p.peak[info.EffectiveFQDN] = max(p.peak[info.EffectiveFQDN], p.live[info.EffectiveFQDN])
	return nil
}

func (p *legoDNSProvider) CleanUp(domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(domain, keyAuth)
	p.dns.RemoveTXT(info.EffectiveFQDN, info.Value)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live[info.EffectiveFQDN]--
	return nil
}

// Timeout keeps lego's propagation polling fast (the default waits 2 s first).
func (p *legoDNSProvider) Timeout() (timeout, interval time.Duration) {
	return 10 * time.Second, 50 * time.Millisecond
}

func (p *legoDNSProvider) counts(fqdn string) (live, peak int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live[fqdn], p.peak[fqdn]
}

// legoSlowHTTP01 is an http-01 challenge.Provider that answers only after delay.
type legoSlowHTTP01 struct {
	addr  string
	delay time.Duration
	srv   *http.Server
}

func (p *legoSlowHTTP01) Present(_, token, keyAuth string) error {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	path := http01.ChallengePath(token)
	p.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		select {
		case <-time.After(p.delay):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, keyAuth)
	})}
	go func() { _ = p.srv.Serve(l) }()
	return nil
}

func (p *legoSlowHTTP01) CleanUp(_, _, _ string) error { return p.srv.Close() }

// legoTopIssuer is the issuer CN of the last certificate of a bundle, which is
// what lego's PreferredChain matches.
func legoTopIssuer(t testing.TB, res *certificate.Resource) string {
	t.Helper()
	certs, err := certcrypto.ParsePEMBundle(res.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return certs[len(certs)-1].Issuer.CommonName
}

// legoObtain runs lego's Obtain with a bundled chain and fails the test on error.
func legoObtain(t testing.TB, c *lego.Client, req certificate.ObtainRequest) *certificate.Resource {
	t.Helper()
	req.Bundle = true
	res, err := c.Certificate.Obtain(req)
	if err != nil {
		t.Fatalf("lego Obtain %v: %v", req.Domains, err)
	}
	return res
}

// legoCheckChain parses the bundle lego returned, verifies it up to the
// gateway's root for server auth, checks the leaf's SANs are exactly
// wantNames (DNS names and IP addresses) and that the leaf's key is the
// private key lego reports. It returns the leaf.
func legoCheckChain(t testing.TB, gw *gateway, res *certificate.Resource, wantNames ...string) *x509.Certificate {
	t.Helper()
	return legoCheckChainAt(t, gw, res, time.Time{}, wantNames...)
}

// legoCheckChainAt is legoCheckChain verifying the chain at the given time (zero: now).
func legoCheckChainAt(t testing.TB, gw *gateway, res *certificate.Resource, at time.Time, wantNames ...string) *x509.Certificate {
	t.Helper()
	certs, err := certcrypto.ParsePEMBundle(res.Certificate)
	if err != nil {
		t.Fatalf("parsing certificate bundle: %v", err)
	}
	if len(certs) < 2 {
		t.Fatalf("bundle has %d certificates, want the leaf and its intermediate", len(certs))
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: gw.RootPool(t), Intermediates: inter, CurrentTime: at}); err != nil {
		t.Fatalf("chain does not verify to the gateway's root: %v", err)
	}
	got := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		got = append(got, ip.String())
	}
	want := slices.Clone(wantNames)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("leaf SANs %v, want %v", got, want)
	}
	for _, name := range wantNames {
		host := name
		if strings.HasPrefix(name, "*.") {
			host = "x" + name[1:]
		}
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("leaf is not valid for %s: %v", host, err)
		}
	}
	if len(res.PrivateKey) > 0 {
		key, err := certcrypto.ParsePEMPrivateKey(res.PrivateKey)
		if err != nil {
			t.Fatalf("parsing lego's private key: %v", err)
		}
		if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(crypto.Signer).Public()) {
			t.Fatal("leaf's public key is not the key lego generated")
		}
	}
	if res.CertURL == "" || !strings.HasPrefix(res.CertURL, gw.BaseURL()+"/") {
		t.Errorf("certificate URL %q is not on the gateway", res.CertURL)
	}
	return leaf
}

// legoProblem is the ACME error type of a lego error, "" if it has none.
func legoProblem(err error) string {
	var pd *acme.ProblemDetails
	if errors.As(err, &pd) {
		return strings.TrimPrefix(pd.Type, "urn:ietf:params:acme:error:")
	}
	return ""
}

// legoXClient is a golang.org/x/crypto/acme client for gw (key may be nil
// for requests signed with a per-call key).
func legoXClient(t testing.TB, gw *gateway, key crypto.Signer, accountURL string) *xacme.Client {
	return &xacme.Client{
		Key:          key,
		KID:          xacme.KeyID(accountURL),
		DirectoryURL: gw.DirURL,
		HTTPClient:   gw.HTTPClient(t),
		UserAgent:    "acmegw-e2e",
	}
}

func legoXProblem(err error) string {
	var e *xacme.Error
	if errors.As(err, &e) {
		return strings.TrimPrefix(e.ProblemType, "urn:ietf:params:acme:error:")
	}
	return ""
}

func legoLeafDER(t testing.TB, res *certificate.Resource) []byte {
	t.Helper()
	block, _ := pem.Decode(res.Certificate)
	if block == nil {
		t.Fatal("no PEM block in certificate")
	}
	return block.Bytes
}

func TestLego(t *testing.T) {
	forEachStore(t, func(t *testing.T, gw *gateway) {
		t.Run("http-01", func(t *testing.T) {
			gw.DNS.AddA("www.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"www.e2e.test"}})
			leaf := legoCheckChain(t, gw, res, "www.e2e.test")
			if leaf.Subject.CommonName != "www.e2e.test" {
				t.Errorf("leaf CN %q, want www.e2e.test", leaf.Subject.CommonName)
			}
			if res.Domain != "www.e2e.test" {
				t.Errorf("resource domain %q", res.Domain)
			}
		})

		t.Run("no common name", func(t *testing.T) {
			// lego leaves the CN out when asked to, and for names over 64
			// characters; the SANs alone must do.
			long := strings.Repeat("l", 60) + ".long.e2e.test"
			gw.DNS.AddA(long+".", "127.0.0.1")
			gw.DNS.AddA("nocn.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{long}})
			leaf := legoCheckChain(t, gw, res, long)
			if leaf.Subject.CommonName != "" {
				t.Errorf("leaf CN %q for a %d-character name", leaf.Subject.CommonName, len(long))
			}
			c, _ = legoNew(t, gw, certcrypto.EC256, func(cfg *lego.Config) { cfg.Certificate.DisableCommonName = true })
			legoHTTP01(t, c, gw)
			res = legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"nocn.e2e.test"}})
			legoCheckChain(t, gw, res, "nocn.e2e.test")
		})

		t.Run("dns-01", func(t *testing.T) {
			c, _ := legoNew(t, gw, certcrypto.EC256)
			p := legoDNS01(t, c, gw)
			// No A record: dns-01 must not need the name to resolve.
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"dns.e2e.test"}})
			legoCheckChain(t, gw, res, "dns.e2e.test")
			if live, peak := p.counts("_acme-challenge.dns.e2e.test."); live != 0 || peak != 1 {
				t.Errorf("TXT records at _acme-challenge.dns.e2e.test.: %d left, %d at most; want 0 and 1", live, peak)
			}
		})

		t.Run("tls-alpn-01", func(t *testing.T) {
			gw.DNS.AddA("alpn.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoTLSALPN01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"alpn.e2e.test"}})
			legoCheckChain(t, gw, res, "alpn.e2e.test")
		})

		t.Run("wildcard", func(t *testing.T) {
			c, _ := legoNew(t, gw, certcrypto.EC256)
			p := legoDNS01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"*.wild.e2e.test", "wild.e2e.test"}})
			leaf := legoCheckChain(t, gw, res, "*.wild.e2e.test", "wild.e2e.test")
			if leaf.Subject.CommonName != "*.wild.e2e.test" {
				t.Errorf("leaf CN %q, want *.wild.e2e.test", leaf.Subject.CommonName)
			}
			// Both authorizations live at the same name: the gateway had to
			// find its value among two TXT records.
			if live, peak := p.counts("_acme-challenge.wild.e2e.test."); live != 0 || peak != 2 {
				t.Errorf("TXT records at _acme-challenge.wild.e2e.test.: %d left, %d at most; want 0 and 2", live, peak)
			}
		})

		t.Run("wildcard needs dns-01", func(t *testing.T) {
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			_, err := c.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"*.nodns.e2e.test"}})
			if err == nil || !strings.Contains(err.Error(), "could not determine solvers") {
				t.Fatalf("wildcard with only an http-01 solver: %v; want lego to find no solver (dns-01 only)", err)
			}
		})

		t.Run("ip", func(t *testing.T) {
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"127.0.0.1"}})
			leaf := legoCheckChain(t, gw, res, "127.0.0.1")
			if len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
				t.Fatalf("leaf SANs: DNS %v, IP %v; want only IP 127.0.0.1", leaf.DNSNames, leaf.IPAddresses)
			}
			// A name and an address in one order.
			gw.DNS.AddA("mixed.e2e.test.", "127.0.0.1")
			res = legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"mixed.e2e.test", "127.0.0.1"}})
			legoCheckChain(t, gw, res, "mixed.e2e.test", "127.0.0.1")
		})

		t.Run("multi-name and key types", func(t *testing.T) {
			for _, kt := range []struct {
				keyType certcrypto.KeyType
				check   func(pub crypto.PublicKey) bool
			}{
				{certcrypto.RSA2048, func(pub crypto.PublicKey) bool {
					k, ok := pub.(*rsa.PublicKey)
					return ok && k.N.BitLen() == 2048
				}},
				{certcrypto.RSA3072, func(pub crypto.PublicKey) bool {
					k, ok := pub.(*rsa.PublicKey)
					return ok && k.N.BitLen() == 3072
				}},
				{certcrypto.EC256, func(pub crypto.PublicKey) bool {
					k, ok := pub.(*ecdsa.PublicKey)
					return ok && k.Curve == elliptic.P256()
				}},
				{certcrypto.EC384, func(pub crypto.PublicKey) bool {
					k, ok := pub.(*ecdsa.PublicKey)
					return ok && k.Curve == elliptic.P384()
				}},
			} {
				t.Run(string(kt.keyType), func(t *testing.T) {
					prefix := strings.ToLower(string(kt.keyType))
					names := []string{prefix + ".multi.e2e.test", "a." + prefix + ".multi.e2e.test", "b." + prefix + ".multi.e2e.test"}
					for _, n := range names {
						gw.DNS.AddA(n+".", "127.0.0.1")
					}
					c, _ := legoNew(t, gw, kt.keyType)
					legoHTTP01(t, c, gw)
					res := legoObtain(t, c, certificate.ObtainRequest{Domains: names})
					leaf := legoCheckChain(t, gw, res, names...)
					if !kt.check(leaf.PublicKey) {
						t.Fatalf("leaf key %T is not %s", leaf.PublicKey, kt.keyType)
					}
				})
			}
		})

		t.Run("csr", func(t *testing.T) {
			gw.DNS.AddA("csr.e2e.test.", "127.0.0.1")
			gw.DNS.AddA("alt.csr.e2e.test.", "127.0.0.1")
			certKey := legoECKey(t, elliptic.P384())
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
				Subject:  pkix.Name{CommonName: "csr.e2e.test"},
				DNSNames: []string{"csr.e2e.test", "alt.csr.e2e.test"},
			}, certKey)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			res, err := c.Certificate.ObtainForCSR(certificate.ObtainForCSRRequest{CSR: csr, Bundle: true})
			if err != nil {
				t.Fatalf("ObtainForCSR: %v", err)
			}
			leaf := legoCheckChain(t, gw, res, "csr.e2e.test", "alt.csr.e2e.test")
			if !certKey.PublicKey.Equal(leaf.PublicKey) {
				t.Fatal("leaf does not carry the CSR's key")
			}
			if len(res.CSR) == 0 {
				t.Fatal("lego kept no CSR for renewal")
			}
			// Renewing a CSR-based resource orders again with the same CSR.
			renewed, err := c.Certificate.RenewWithOptions(*res, &certificate.RenewOptions{Bundle: true})
			if err != nil {
				t.Fatalf("renewing from the CSR: %v", err)
			}
			leaf2 := legoCheckChain(t, gw, renewed, "csr.e2e.test", "alt.csr.e2e.test")
			if leaf2.SerialNumber.Cmp(leaf.SerialNumber) == 0 || !certKey.PublicKey.Equal(leaf2.PublicKey) {
				t.Fatal("CSR renewal: want a new serial for the same key")
			}
		})

		t.Run("revoke", func(t *testing.T) {
			gw.DNS.AddA("revoke.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)

			// By the account key, with a reason; again → alreadyRevoked.
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"revoke.e2e.test"}})
			caReason := acme.CRLReasonCACompromise
			if err := c.Certificate.RevokeWithReason(res.Certificate, &caReason); legoProblem(err) != "badRevocationReason" {
				t.Fatalf("revocation with reason cACompromise: %v; want badRevocationReason", err)
			}
			reason := acme.CRLReasonSuperseded
			if err := c.Certificate.RevokeWithReason(res.Certificate, &reason); err != nil {
				t.Fatalf("revoke by account key: %v", err)
			}
			err := c.Certificate.Revoke(res.Certificate)
			if legoProblem(err) != "alreadyRevoked" {
				t.Fatalf("second revocation: %v; want alreadyRevoked", err)
			}
			// ARI tells lego to replace a revoked certificate at once.
			revoked, err := certcrypto.ParsePEMCertificate(res.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: revoked})
			if err != nil {
				t.Fatalf("GetRenewalInfo for a revoked certificate: %v", err)
			}
			if at := info.ShouldRenewAt(time.Now(), 0); at == nil || time.Until(*at) > 0 {
				t.Errorf("revoked certificate: window %s – %s, lego would renew at %v; want now", info.SuggestedWindow.Start, info.SuggestedWindow.End, at)
			}

			// Another account may not revoke it, and a key that is not the
			// certificate's may not either.
			res2 := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"revoke.e2e.test"}})
			other, _ := legoNew(t, gw, certcrypto.EC256)
			if err := other.Certificate.Revoke(res2.Certificate); legoProblem(err) != "unauthorized" {
				t.Fatalf("revocation by an unrelated account: %v; want unauthorized", err)
			}
			der := legoLeafDER(t, res2)
			xc := legoXClient(t, gw, nil, "")
			ctx := context.Background()
			if err := xc.RevokeCert(ctx, legoECKey(t, elliptic.P256()), der, xacme.CRLReasonKeyCompromise); legoXProblem(err) != "unauthorized" {
				t.Fatalf("revocation signed by a stranger's key: %v; want unauthorized", err)
			}

			// By the certificate's own key (JWS with "jwk").
			key, err := certcrypto.ParsePEMPrivateKey(res2.PrivateKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := xc.RevokeCert(ctx, key.(crypto.Signer), der, xacme.CRLReasonKeyCompromise); err != nil {
				t.Fatalf("revoke by certificate key: %v", err)
			}
			// x/crypto hides alreadyRevoked; lego shows that it took effect.
			if err := c.Certificate.Revoke(res2.Certificate); legoProblem(err) != "alreadyRevoked" {
				t.Fatalf("revocation after the certificate key revoked it: %v; want alreadyRevoked", err)
			}
		})

		t.Run("key rollover", func(t *testing.T) {
			gw.DNS.AddA("rollover.e2e.test.", "127.0.0.1")
			oldKey := legoECKey(t, elliptic.P256())
			c, user := legoClient(t, gw, oldKey, certcrypto.EC256, true)
			legoHTTP01(t, c, gw)
			ctx := context.Background()

			// lego v4 has no keyChange API; cert-manager's client does.
			// From ES256 to RS256, the only algorithm some clients speak.
			newKey, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			if err := legoXClient(t, gw, oldKey, user.reg.URI).AccountKeyRollover(ctx, newKey); err != nil {
				t.Fatalf("AccountKeyRollover: %v", err)
			}

			// The old key no longer finds an account, nor signs for one.
			if _, err := legoXClient(t, gw, oldKey, "").GetReg(ctx, ""); !errors.Is(err, xacme.ErrNoAccount) {
				t.Fatalf("old key, onlyReturnExisting: %v; want accountDoesNotExist", err)
			}
			_, err = c.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"rollover.e2e.test"}})
			var pd *acme.ProblemDetails
			if !errors.As(err, &pd) || pd.HTTPStatus < 400 || pd.HTTPStatus >= 500 {
				t.Fatalf("new order signed by the old key: %v; want a 4xx problem", err)
			}

			// The new key finds the same account and orders with it.
			acct, err := legoXClient(t, gw, newKey, "").GetReg(ctx, "")
			if err != nil || acct.URI != user.reg.URI {
				t.Fatalf("new key, onlyReturnExisting: %v, %+v; want account %s", err, acct, user.reg.URI)
			}
			c2, user2 := legoClient(t, gw, newKey, certcrypto.EC256, false)
			reg, err := c2.Registration.ResolveAccountByKey()
			if err != nil || reg.URI != user.reg.URI || reg.Body.Status != "valid" {
				t.Fatalf("lego resolving the account by the new key: %v, %+v; want valid account %s", err, reg, user.reg.URI)
			}
			user2.reg = reg
			if reg, err = c2.Registration.QueryRegistration(); err != nil || reg.Body.Status != "valid" {
				t.Fatalf("lego querying the account with the new key: %v", err)
			}
			legoHTTP01(t, c2, gw)
			res := legoObtain(t, c2, certificate.ObtainRequest{Domains: []string{"rollover.e2e.test"}})
			legoCheckChain(t, gw, res, "rollover.e2e.test")
		})

		t.Run("renewal", func(t *testing.T) {
			gw.DNS.AddA("renew.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"renew.e2e.test"}})
			first := legoCheckChain(t, gw, res, "renew.e2e.test")
			renewed, err := c.Certificate.RenewWithOptions(*res, &certificate.RenewOptions{Bundle: true})
			if err != nil {
				t.Fatalf("RenewWithOptions: %v", err)
			}
			second := legoCheckChain(t, gw, renewed, "renew.e2e.test")
			if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
				t.Fatalf("renewal returned the same serial %x", first.SerialNumber)
			}
			if renewed.CertURL == res.CertURL {
				t.Errorf("renewal returned the same certificate URL %s", res.CertURL)
			}
			if !first.PublicKey.(*ecdsa.PublicKey).Equal(second.PublicKey) {
				t.Error("renewal did not keep the private key lego passed on")
			}

			// ARI (RFC 9773), as "lego renew" uses it: the window lies
			// inside the certificate's life, and the new order names the
			// certificate it replaces.
			info, err := c.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: second})
			if err != nil {
				t.Fatalf("GetRenewalInfo: %v", err)
			}
			w := info.SuggestedWindow
			if !w.Start.After(second.NotBefore) || !w.End.After(w.Start) || !w.End.Before(second.NotAfter) || info.RetryAfter <= 0 {
				t.Fatalf("renewal window %s – %s (retry after %s) for a certificate valid %s – %s", w.Start, w.End, info.RetryAfter, second.NotBefore, second.NotAfter)
			}
			if at := info.ShouldRenewAt(time.Now(), time.Hour); at != nil {
				t.Errorf("a fresh certificate should not be renewed yet, lego would renew at %s", at)
			}
			certID, err := certificate.MakeARICertID(second)
			if err != nil {
				t.Fatal(err)
			}
			third := legoCheckChain(t, gw, legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"renew.e2e.test"}, ReplacesCertID: certID}), "renew.e2e.test")
			// Replacing it a second time is refused with alreadyReplaced;
			// lego then orders again without "replaces".
			fourth := legoCheckChain(t, gw, legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"renew.e2e.test"}, ReplacesCertID: certID}), "renew.e2e.test")
			if third.SerialNumber.Cmp(second.SerialNumber) == 0 || fourth.SerialNumber.Cmp(third.SerialNumber) == 0 {
				t.Fatal("orders replacing a certificate returned an old serial")
			}
			if !strings.Contains(gw.Log(), "alreadyReplaced") {
				t.Error("the second replacement of the same certificate was not refused with alreadyReplaced")
			}
		})

		t.Run("deactivate authorizations", func(t *testing.T) {
			// lego reports a failed authorization deactivation only in its log.
			gw.DNS.AddA("relinquish.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			log := legoCaptureLog(t)
			legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"relinquish.e2e.test"}, AlwaysDeactivateAuthorizations: true})
			if out := log.String(); !strings.Contains(out, "Deactivating auth") || strings.Contains(out, "Unable to") {
				t.Fatalf("lego's log of deactivating the authorization:\n%s", out)
			}
		})

		t.Run("profile", func(t *testing.T) {
			gw.DNS.AddA("short.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"short.e2e.test"}, Profile: "shortlived"})
			leaf := legoCheckChain(t, gw, res, "short.e2e.test")
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 160*time.Hour-time.Minute || got > 160*time.Hour+time.Minute {
				t.Fatalf("shortlived leaf is valid for %s, want about 160h", got)
			}
			_, err := c.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"short.e2e.test"}, Profile: "no-such-profile"})
			if legoProblem(err) != "invalidProfile" {
				t.Fatalf("unknown profile: %v; want invalidProfile", err)
			}
		})

		t.Run("notBefore notAfter", func(t *testing.T) {
			gw.DNS.AddA("validity.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			notBefore := time.Now().Add(time.Hour).Truncate(time.Second)
			notAfter := notBefore.Add(72 * time.Hour)
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"validity.e2e.test"}, NotBefore: notBefore, NotAfter: notAfter})
			leaf := legoCheckChainAt(t, gw, res, notBefore.Add(time.Minute), "validity.e2e.test")
			if d := leaf.NotBefore.Sub(notBefore).Abs(); d > time.Second {
				t.Errorf("leaf NotBefore %s, requested %s", leaf.NotBefore, notBefore)
			}
			if d := leaf.NotAfter.Sub(notAfter).Abs(); d > time.Second {
				t.Errorf("leaf NotAfter %s, requested %s", leaf.NotAfter, notAfter)
			}
		})

		t.Run("slow http-01", func(t *testing.T) {
			// The validation outlasts the 3 s the challenge POST waits, so
			// lego sees "processing" and polls the authorization it finds in
			// the challenge's Link rel="up", as Retry-After tells it.
			gw.DNS.AddA("slow.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, gw, certcrypto.EC256)
			slow := &legoSlowHTTP01{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(gw.HTTPPort)), delay: 3500 * time.Millisecond}
			if err := c.Challenge.SetHTTP01Provider(slow); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"slow.e2e.test"}})
			legoCheckChain(t, gw, res, "slow.e2e.test")
			if took := time.Since(start); took < slow.delay {
				t.Fatalf("issued after %s, before the solver answered (%s)", took, slow.delay)
			}
		})

		t.Run("failed validation", func(t *testing.T) {
			c, _ := legoNew(t, gw, certcrypto.EC256)
			legoHTTP01(t, c, gw)
			// No A record yet: the gateway cannot reach the name.
			_, err := c.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"late.e2e.test"}})
			if typ := legoProblem(err); typ != "dns" {
				t.Fatalf("http-01 for a name that does not resolve: %v; want a dns problem", err)
			}
			// Once it resolves, a new order succeeds.
			gw.DNS.AddA("late.e2e.test.", "127.0.0.1")
			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"late.e2e.test"}})
			legoCheckChain(t, gw, res, "late.e2e.test")
		})

		t.Run("preferred chain", func(t *testing.T) {
			cfg := t.TempDir() + "/acmegw.yaml"
			if err := os.WriteFile(cfg, []byte("ca:\n  alternate_chain: true\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			alt := startGateway(t, gatewayOptions{RedisURL: gw.RedisURL, DNS: gw.DNS, Args: []string{"--config", cfg}})
			altPEM, err := os.ReadFile(alt.DataDir + "/root-alt.pem")
			if err != nil {
				t.Fatalf("alternate root: %v", err)
			}
			altRoots, err := certcrypto.ParsePEMBundle(altPEM)
			if err != nil {
				t.Fatal(err)
			}
			altRoot := altRoots[0]
			gw.DNS.AddA("chain.e2e.test.", "127.0.0.1")
			c, _ := legoNew(t, alt, certcrypto.EC256)
			legoHTTP01(t, c, alt)

			res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"chain.e2e.test"}})
			legoCheckChain(t, alt, res, "chain.e2e.test")
			if top := legoTopIssuer(t, res); top == altRoot.Subject.CommonName {
				t.Fatalf("default chain leads to the alternate root %q", top)
			}

			res = legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"chain.e2e.test"}, PreferredChain: altRoot.Subject.CommonName})
			if top := legoTopIssuer(t, res); top != altRoot.Subject.CommonName {
				t.Fatalf("preferred chain leads to %q, want the alternate root %q", top, altRoot.Subject.CommonName)
			}
			if !strings.HasSuffix(res.CertURL, "/1") {
				t.Errorf("alternate chain URL %q", res.CertURL)
			}
			certs, _ := certcrypto.ParsePEMBundle(res.Certificate)
			pool := x509.NewCertPool()
			pool.AddCert(altRoot)
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
				t.Fatalf("alternate chain does not verify to the alternate root: %v", err)
			}
		})

		t.Run("account", func(t *testing.T) {
			key := legoECKey(t, elliptic.P256())
			c, user := legoClient(t, gw, key, certcrypto.EC256, false)
			user.email = "ops@e2e.test"
			reg, err := c.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			user.reg = reg
			if !slices.Equal(reg.Body.Contact, []string{"mailto:ops@e2e.test"}) || reg.Body.Status != "valid" || reg.Body.Orders == "" {
				t.Fatalf("new account %+v", reg.Body)
			}

			// Registering the same key again finds the same account.
			again, _ := legoClient(t, gw, key, certcrypto.EC256, false)
			if reg2, err := again.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil || reg2.URI != reg.URI {
				t.Fatalf("registering the key again: %v, %+v; want account %s", err, reg2, reg.URI)
			}

			user.email = "sec@e2e.test"
			if _, err := c.Registration.UpdateRegistration(registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
				t.Fatalf("update contact: %v", err)
			}
			got, err := c.Registration.QueryRegistration()
			if err != nil || !slices.Equal(got.Body.Contact, []string{"mailto:sec@e2e.test"}) {
				t.Fatalf("account after contact update: %v, %+v", err, got)
			}
			user.email = "not an address"
			if _, err := c.Registration.UpdateRegistration(registration.RegisterOptions{}); legoProblem(err) != "invalidContact" {
				t.Fatalf("bad contact: %v; want invalidContact", err)
			}

			// lego's own deactivation ("lego account delete" semantics).
			if err := c.Registration.DeleteRegistration(); err != nil {
				t.Fatalf("DeleteRegistration: %v", err)
			}
			if _, err := c.Registration.QueryRegistration(); legoProblem(err) != "unauthorized" {
				t.Fatalf("query a deactivated account: %v; want unauthorized", err)
			}
		})

		t.Run("account deactivation", func(t *testing.T) {
			gw.DNS.AddA("deactivate.e2e.test.", "127.0.0.1")
			key := legoECKey(t, elliptic.P256())
			c, user := legoClient(t, gw, key, certcrypto.EC256, true)
			legoHTTP01(t, c, gw)
			ctx := context.Background()
			if err := legoXClient(t, gw, key, user.reg.URI).DeactivateReg(ctx); err != nil {
				t.Fatalf("DeactivateReg: %v", err)
			}
			_, err := c.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"deactivate.e2e.test"}})
			if legoProblem(err) != "unauthorized" {
				t.Fatalf("new order by a deactivated account: %v; want unauthorized", err)
			}
			// A client that lost the account URL tries to find it, or to register again.
			fresh, _ := legoClient(t, gw, key, certcrypto.EC256, false)
			if _, err := fresh.Registration.ResolveAccountByKey(); legoProblem(err) != "unauthorized" {
				t.Fatalf("newAccount with a deactivated account's key: %v; want unauthorized", err)
			}
			fresh, _ = legoClient(t, gw, key, certcrypto.EC256, false)
			if _, err := fresh.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true}); legoProblem(err) != "unauthorized" {
				t.Fatalf("registering a deactivated account's key again: %v; want unauthorized", err)
			}
		})
	})
}

// TestLegoNoncesAcrossRestart restarts the gateway on the same Redis and data
// directory: a nonce handed out before the restart is redeemed after it, and
// a certificate ordered before it is downloaded after it.
func TestLegoNoncesAcrossRestart(t *testing.T) {
	redisURL := testredis.Start(t)
	a := startGateway(t, gatewayOptions{RedisURL: redisURL})
	a.DNS.AddA("restart.e2e.test.", "127.0.0.1")
	c, user := legoNew(t, a, certcrypto.EC256)
	legoHTTP01(t, c, a)
	res := legoObtain(t, c, certificate.ObtainRequest{Domains: []string{"restart.e2e.test"}})
	legoCheckChain(t, a, res, "restart.e2e.test")

	nonce := legoFetchNonce(t, a)
	a.Stop()
	b := startGateway(t, gatewayOptions{RedisURL: redisURL, DataDir: a.DataDir, DNS: a.DNS})
	if b.DirURL == a.DirURL {
		t.Fatal("the second instance listens where the first did; the test would prove nothing")
	}

	// The nonce from instance A is good on instance B, once.
	newAccount := b.BaseURL() + "/acme/new-account"
	status, hdr, body := legoPostJWK(t, b, user.key.(crypto.Signer), newAccount, nonce, `{"onlyReturnExisting":true}`)
	wantAccount := b.BaseURL() + strings.TrimPrefix(user.reg.URI, a.BaseURL())
	if status != http.StatusOK || hdr.Get("Location") != wantAccount {
		t.Fatalf("onlyReturnExisting on B with A's nonce: %d Location %q %s; want 200 and %s", status, hdr.Get("Location"), body, wantAccount)
	}
	status, _, body = legoPostJWK(t, b, user.key.(crypto.Signer), newAccount, nonce, `{"onlyReturnExisting":true}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "urn:ietf:params:acme:error:badNonce") {
		t.Fatalf("replaying A's nonce on B: %d %s; want 400 badNonce", status, body)
	}

	// The certificate issued by A downloads from B, for the same account.
	cb, userB := legoClient(t, b, user.key.(crypto.Signer), certcrypto.EC256, false)
	reg, err := cb.Registration.ResolveAccountByKey()
	if err != nil {
		t.Fatalf("resolving the account on B: %v", err)
	}
	userB.reg = reg
	certURL := b.BaseURL() + strings.TrimPrefix(res.CertURL, a.BaseURL())
	got, err := cb.Certificate.Get(certURL, true)
	if err != nil {
		t.Fatalf("downloading A's certificate from B: %v", err)
	}
	if string(got.Certificate) != string(res.Certificate) {
		t.Fatalf("B served a different chain:\n%s\nwant\n%s", got.Certificate, res.Certificate)
	}

	// And B issues on its own with the state A left.
	legoHTTP01(t, cb, b)
	res2 := legoObtain(t, cb, certificate.ObtainRequest{Domains: []string{"restart.e2e.test"}})
	legoCheckChain(t, b, res2, "restart.e2e.test")
}

// legoFetchNonce gets a fresh nonce with HEAD newNonce.
func legoFetchNonce(t testing.TB, gw *gateway) string {
	t.Helper()
	resp, err := gw.HTTPClient(t).Head(gw.BaseURL() + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if resp.StatusCode != http.StatusOK || n == "" {
		t.Fatalf("HEAD newNonce: %d, nonce %q", resp.StatusCode, n)
	}
	return n
}

// legoPostJWK POSTs payload as a flattened JWS carrying key in "jwk", with the
// given nonce, and returns the status, headers and body.
func legoPostJWK(t testing.TB, gw *gateway, key crypto.Signer, url, nonce, payload string) (int, http.Header, string) {
	t.Helper()
	var alg jose.SignatureAlgorithm
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		alg = map[int]jose.SignatureAlgorithm{256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[k.Curve.Params().BitSize]
	case *rsa.PublicKey:
		alg = jose.RS256
	default:
		t.Fatalf("unsupported key %T", k)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, &jose.SignerOptions{
		EmbedJWK:     true,
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": nonce, "url": url},
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := gw.HTTPClient(t).Post(url, "application/jose+json", strings.NewReader(jws.FullSerialize()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}
