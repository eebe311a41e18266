package acmeup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/challenge/dns01"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// txtSolver is a challenge.Provider that writes dns-01 records straight into
// the test DNS server Pebble resolves through.
type txtSolver struct {
	dns       *validationtest.DNSServer
	presented atomic.Int32
	cleaned   atomic.Int32
	block     chan struct{} // if set, Present waits for it to close
}

func (s *txtSolver) Present(domain, token, keyAuth string) error {
	if s.block != nil {
		<-s.block
		return errors.New("solver released")
	}
	info := dns01.GetChallengeInfo(domain, keyAuth)
	s.dns.AddTXT(info.EffectiveFQDN, info.Value)
	s.presented.Add(1)
	return nil
}

func (s *txtSolver) CleanUp(domain, token, keyAuth string) error {
	info := dns01.GetChallengeInfo(domain, keyAuth)
	s.dns.RemoveTXT(info.EffectiveFQDN, info.Value)
	s.cleaned.Add(1)
	return nil
}

// Timeout keeps lego's propagation polling short; the record is there at
// once.
func (s *txtSolver) Timeout() (timeout, interval time.Duration) {
	return 10 * time.Second, 50 * time.Millisecond
}

var nameSeq atomic.Int64

// uniqueName returns a DNS name no other test orders, so Pebble has no valid
// authorization to reuse for it and the solver really runs.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d.acmeup.test", prefix, nameSeq.Add(1))
}

// newCSR makes a P-256 CSR with the given CN (may be empty) and DNS SANs.
func newCSR(t *testing.T, cn string, sans ...string) *x509.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: cn},
		DNSNames: sans,
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

// testConfig is a Config for the shared Pebble with the given solver.
func testConfig(p *pebble, dns *validationtest.DNSServer, solver *txtSolver) Config {
	cfg := Config{
		Directory:              p.Directory,
		Email:                  "ops@acmeup.test",
		DNSResolvers:           []string{dns.Addr()},
		SkipAuthoritativeCheck: true,
		CACertificates:         p.caFile,
		CAAIdentities:          []string{"pebble.letsencrypt.org"},
	}
	if solver != nil {
		cfg.Solver = solver
	}
	return cfg
}

func mustNew(t *testing.T, name string, cfg Config) *Brand {
	t.Helper()
	b, err := New(name, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// verifyChain checks that chain is clean PEM, leaf first, naming exactly
// names, and verifies up to root using only the intermediates in the chain.
func verifyChain(t *testing.T, chain []byte, leaf *x509.Certificate, root *x509.Certificate, names []string) {
	t.Helper()
	var certs []*x509.Certificate
	for rest := chain; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			if len(strings.TrimSpace(string(rest))) != 0 {
				t.Fatalf("chain has trailing garbage: %q", rest)
			}
			break
		}
		if blk.Type != "CERTIFICATE" {
			t.Fatalf("chain has a %s block", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediates", len(certs))
	}
	if leaf != nil && !certs[0].Equal(leaf) {
		t.Fatal("Result.Leaf is not the first certificate of Result.Chain")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		t.Fatalf("chain does not verify to Pebble's root: %v", err)
	}
	got := slices.Clone(certs[0].DNSNames)
	want := slices.Clone(names)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("leaf names %v, want %v", got, want)
	}
}

func TestIssueTwoNames(t *testing.T) {
	p, dns := shared(t)
	p.dumpLog(t)
	solver := &txtSolver{dns: dns}
	b := mustNew(t, "pebble", testConfig(p, dns, solver))

	a, c := uniqueName("a"), uniqueName("b")
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	res, err := b.Submit(ctxFor(t, 2*time.Minute), issuer.Request{
		OrderID:  "o1",
		CSR:      newCSR(t, a, a, c),
		DNSNames: []string{a, c},
		NotAfter: notAfter,
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res.Ticket != "" || res.Leaf == nil {
		t.Fatalf("want an issued chain, got ticket %q leaf %v", res.Ticket, res.Leaf)
	}
	verifyChain(t, res.Chain, res.Leaf, p.root(t, 0), []string{a, c})
	if d := res.Leaf.NotAfter.Sub(notAfter); d < -time.Second || d > time.Second {
		t.Errorf("NotAfter %s, asked for %s", res.Leaf.NotAfter, notAfter)
	}
	if n := solver.presented.Load(); n != 2 {
		t.Errorf("solver presented %d records, want 2", n)
	}
	if n := solver.cleaned.Load(); n != 2 {
		t.Errorf("solver cleaned %d records, want 2", n)
	}

	// PEBBLE_ALTERNATE_ROOTS=1: one more chain for the same leaf, to root 1.
	if len(res.Alternates) != 1 {
		t.Fatalf("got %d alternate chains, want 1", len(res.Alternates))
	}
	verifyChain(t, res.Alternates[0], res.Leaf, p.root(t, 1), []string{a, c})
}

// TestIssueWildcardHTTPReq goes through the by-name provider path: lego's
// "httpreq" provider, configured from its environment variables, posts to a
// test endpoint that writes the TXT records into the DNS server. The order
// holds a wildcard and its base name, two authorizations whose records share
// one name. It also asks for the upstream profile "shortlived".
func TestIssueWildcardHTTPReq(t *testing.T) {
	p, dns := shared(t)
	p.dumpLog(t)

	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ FQDN, Value string }
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || msg.FQDN == "" || msg.Value == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/present":
			dns.AddTXT(msg.FQDN, msg.Value)
		case "/cleanup":
			dns.RemoveTXT(msg.FQDN, msg.Value)
		default:
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		calls[r.URL.Path]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HTTPREQ_ENDPOINT", srv.URL)
	t.Setenv("HTTPREQ_POLLING_INTERVAL", "1")
	t.Setenv("HTTPREQ_PROPAGATION_TIMEOUT", "30")

	cfg := testConfig(p, dns, nil)
	cfg.DNSProvider = "httpreq"
	cfg.Profile = "shortlived"
	b := mustNew(t, "pebble-httpreq", cfg)

	base := uniqueName("w")
	names := []string{"*." + base, base}
	res, err := b.Submit(ctxFor(t, 2*time.Minute), issuer.Request{
		OrderID:  "o-wild",
		CSR:      newCSR(t, "", names...),
		DNSNames: names,
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	verifyChain(t, res.Chain, res.Leaf, p.root(t, 0), names)
	if life := res.Leaf.NotAfter.Sub(res.Leaf.NotBefore); life > 6*24*time.Hour || life < 6*24*time.Hour-time.Minute {
		t.Errorf("lifetime %s, want the shortlived profile's 6 days", life)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["/present"] != 2 || calls["/cleanup"] != 2 {
		t.Errorf("httpreq calls %v, want 2 present and 2 cleanup", calls)
	}
}

// TestAccountReusedAcrossInstances shows a second Brand on the same KeyDir
// uses the same upstream account: Pebble reuses the first brand's valid
// authorizations only for the account that earned them, so the second brand
// issues with no solver at all, and a brand with another KeyDir cannot.
func TestAccountReusedAcrossInstances(t *testing.T) {
	p, dns := shared(t)
	p.dumpLog(t)
	keyDir := filepath.Join(t.TempDir(), "acmeup", "pebble")

	solver := &txtSolver{dns: dns}
	cfg := testConfig(p, dns, solver)
	cfg.KeyDir = keyDir
	first := mustNew(t, "pebble", cfg)
	name := uniqueName("reuse")
	req := func(id string) issuer.Request {
		return issuer.Request{OrderID: id, CSR: newCSR(t, name, name), DNSNames: []string{name}}
	}
	if _, err := first.Submit(ctxFor(t, 2*time.Minute), req("o1")); err != nil {
		t.Fatalf("first Submit: %v", err)
	}
	if solver.presented.Load() != 1 {
		t.Fatalf("first brand presented %d records, want 1", solver.presented.Load())
	}

	path := filepath.Join(keyDir, "account.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("account.json mode %v, want 0600", fi.Mode().Perm())
	}
	before, err := readAccount(path)
	if err != nil {
		t.Fatal(err)
	}
	if before.Registration == nil || !strings.HasPrefix(before.Registration.URI, "https://127.0.0.1:") {
		t.Fatalf("no registration persisted: %+v", before.Registration)
	}

	// A restart: a new Brand, same KeyDir, and no way to solve challenges.
	cfg2 := testConfig(p, dns, nil)
	cfg2.KeyDir = keyDir
	cfg2.PreValidated = true
	second := mustNew(t, "pebble", cfg2)
	res, err := second.Submit(ctxFor(t, 2*time.Minute), req("o2"))
	if err != nil {
		t.Fatalf("second Submit on the persisted account: %v", err)
	}
	verifyChain(t, res.Chain, res.Leaf, p.root(t, 0), []string{name})
	after, err := readAccount(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Registration.URI != before.Registration.URI || after.Key != before.Key {
		t.Errorf("account changed: %s → %s", before.Registration.URI, after.Registration.URI)
	}

	// Control: another account has no valid authorization to reuse.
	cfg3 := testConfig(p, dns, nil)
	cfg3.KeyDir = filepath.Join(t.TempDir(), "other")
	cfg3.PreValidated = true
	other := mustNew(t, "pebble-other", cfg3)
	if _, err := other.Submit(ctxFor(t, time.Minute), req("o3")); err == nil {
		t.Fatal("a different account issued without solving: the reuse above proves nothing")
	}
	otherAcct, err := readAccount(filepath.Join(cfg3.KeyDir, "account.json"))
	if err != nil {
		t.Fatal(err)
	}
	if otherAcct.Registration == nil || otherAcct.Registration.URI == before.Registration.URI {
		t.Errorf("other brand's account %+v should differ from %s", otherAcct.Registration, before.Registration.URI)
	}
}

// TestConcurrentFirstUse starts several issuances on a fresh brand at once:
// they must share one lazily registered account.
func TestConcurrentFirstUse(t *testing.T) {
	p, dns := shared(t)
	p.dumpLog(t)
	cfg := testConfig(p, dns, &txtSolver{dns: dns})
	cfg.KeyDir = t.TempDir()
	b := mustNew(t, "pebble", cfg)

	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := uniqueName("conc")
			_, errs[i] = b.Submit(ctxFor(t, 2*time.Minute), issuer.Request{
				OrderID: fmt.Sprint(i), CSR: newCSR(t, name, name), DNSNames: []string{name},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Submit %d: %v", i, err)
		}
	}
	st, err := readAccount(filepath.Join(cfg.KeyDir, "account.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, uri, _ := b.account(context.Background())
	if st.Registration == nil || st.Registration.URI != uri {
		t.Errorf("persisted account %+v, in use %s", st.Registration, uri)
	}
}

func TestEAB(t *testing.T) {
	_, dns := shared(t)
	const (
		kid  = "kid-1"
		hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	)
	p, err := startPebble(dns.Addr(), pebbleOptions{eabKeys: map[string]string{kid: hmac}}, t.Cleanup)
	if err != nil {
		t.Fatalf("starting EAB Pebble: %v", err)
	}
	p.dumpLog(t)

	t.Run("bound", func(t *testing.T) {
		cfg := testConfig(p, dns, &txtSolver{dns: dns})
		cfg.EAB = &EAB{KID: kid, HMAC: hmac}
		cfg.KeyDir = t.TempDir()
		b := mustNew(t, "pebble-eab", cfg)
		name := uniqueName("eab")
		res, err := b.Submit(ctxFor(t, 2*time.Minute), issuer.Request{
			OrderID: "o-eab", CSR: newCSR(t, name, name), DNSNames: []string{name},
		})
		if err != nil {
			t.Fatalf("Submit with EAB: %v", err)
		}
		verifyChain(t, res.Chain, res.Leaf, p.root(t, 0), []string{name})
	})

	t.Run("missing", func(t *testing.T) {
		b := mustNew(t, "pebble-eab", testConfig(p, dns, &txtSolver{dns: dns}))
		name := uniqueName("noeab")
		_, err := b.Submit(ctxFor(t, time.Minute), issuer.Request{
			OrderID: "o", CSR: newCSR(t, name, name), DNSNames: []string{name},
		})
		var u *UpstreamError
		if !errors.As(err, &u) || u.Type != problemNS+"externalAccountRequired" {
			t.Fatalf("want externalAccountRequired, got %v", err)
		}
	})

	t.Run("wrong hmac", func(t *testing.T) {
		// A valid base64url key that is not the one Pebble holds.
		wrong := "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH"
		cfg := testConfig(p, dns, &txtSolver{dns: dns})
		cfg.EAB = &EAB{KID: kid, HMAC: wrong}
		b := mustNew(t, "pebble-eab", cfg)
		name := uniqueName("badeab")
		_, err := b.Submit(ctxFor(t, time.Minute), issuer.Request{
			OrderID: "o", CSR: newCSR(t, name, name), DNSNames: []string{name},
		})
		if err == nil {
			t.Fatal("registration with a wrong EAB key succeeded")
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), hmac) {
			t.Fatalf("error reveals the EAB key: %v", err)
		}
		t.Logf("wrong EAB key: %v", err)
	})
}

func TestRevoke(t *testing.T) {
	p, dns := shared(t)
	p.dumpLog(t)
	b := mustNew(t, "pebble", testConfig(p, dns, &txtSolver{dns: dns}))
	name := uniqueName("rev")
	res, err := b.Submit(ctxFor(t, 2*time.Minute), issuer.Request{
		OrderID: "o", CSR: newCSR(t, name, name), DNSNames: []string{name},
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	serial := res.Leaf.SerialNumber.Text(16)
	if st := p.certStatus(t, serial); st.Status != "Valid" {
		t.Fatalf("before revoking, Pebble says %q", st.Status)
	}
	const superseded = 4
	if err := b.Revoke(ctxFor(t, time.Minute), res.Leaf, superseded); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	st := p.certStatus(t, serial)
	if st.Status != "Revoked" || st.Reason == nil || *st.Reason != superseded {
		t.Fatalf("Pebble says %+v, want Revoked with reason 4", st)
	}
	// Pebble answers alreadyRevoked; a retried revocation job must converge.
	if err := b.Revoke(ctxFor(t, time.Minute), res.Leaf, superseded); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if err := b.Revoke(ctxFor(t, time.Minute), res.Leaf, 7); !errors.Is(err, ErrRefused) {
		t.Fatalf("reason 7 (unused in RFC 5280): got %v", err)
	}
}

func TestUpstreamRejections(t *testing.T) {
	p, dns := shared(t)
	p.dumpLog(t)
	solver := &txtSolver{dns: dns}
	b := mustNew(t, "pebble", testConfig(p, dns, solver))

	t.Run("blocked name", func(t *testing.T) {
		name := "www." + blockedDomain
		_, err := b.Submit(ctxFor(t, time.Minute), issuer.Request{
			OrderID: "o-blocked", CSR: newCSR(t, name, name), DNSNames: []string{name},
		})
		var u *UpstreamError
		if !errors.As(err, &u) {
			t.Fatalf("want *UpstreamError, got %T %v", err, err)
		}
		if u.Type != problemNS+"rejectedIdentifier" || !u.Permanent || !IsPermanent(err) {
			t.Errorf("got type %s permanent %v", u.Type, u.Permanent)
		}
		if !strings.Contains(u.Detail, name) || !strings.Contains(u.Detail, "forbidden by policy") {
			t.Errorf("detail %q does not explain", u.Detail)
		}
		if !strings.HasPrefix(err.Error(), "upstream pebble: order o-blocked: rejectedIdentifier: ") {
			t.Errorf("error %q lacks context", err)
		}
	})

	t.Run("CN missing from SANs", func(t *testing.T) {
		// The gateway counts the CN as a name; Pebble compares only SANs
		// and refuses at finalize, after the challenges were solved.
		cn, san := uniqueName("cn"), uniqueName("san")
		_, err := b.Submit(ctxFor(t, time.Minute), issuer.Request{
			OrderID: "o-cn", CSR: newCSR(t, cn, san), DNSNames: []string{cn, san},
		})
		var u *UpstreamError
		if !errors.As(err, &u) {
			t.Fatalf("want *UpstreamError, got %T %v", err, err)
		}
		if u.Type != problemNS+"unauthorized" || !u.Permanent || u.Status != http.StatusForbidden {
			t.Errorf("got %+v", u)
		}
		if !strings.Contains(u.Detail, "different number of DNSnames") {
			t.Errorf("detail %q", u.Detail)
		}
	})

	t.Run("CSR names differ from the order", func(t *testing.T) {
		before := solver.presented.Load()
		a, other := uniqueName("x"), uniqueName("y")
		_, err := b.Submit(ctxFor(t, time.Minute), issuer.Request{
			OrderID: "o-x", CSR: newCSR(t, a, a, other), DNSNames: []string{a},
		})
		if !errors.Is(err, ErrRefused) || !IsPermanent(err) {
			t.Fatalf("want ErrRefused, got %v", err)
		}
		if solver.presented.Load() != before {
			t.Fatal("the solver ran for a name the gateway never validated")
		}
	})
}

// nopSolver is a solver that is never reached.
type nopSolver struct{}

func (nopSolver) Present(domain, token, keyAuth string) error { return errors.New("nopSolver") }
func (nopSolver) CleanUp(domain, token, keyAuth string) error { return nil }

func TestSubmitHonoursContext(t *testing.T) {
	p, dns := shared(t)
	solver := &txtSolver{dns: dns, block: make(chan struct{})}
	t.Cleanup(func() { close(solver.block) })
	b := mustNew(t, "pebble", testConfig(p, dns, solver))
	// Register first, so the deadline falls while the solver hangs.
	if _, _, err := b.account(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	name := uniqueName("ctx")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Submit(ctx, issuer.Request{OrderID: "o", CSR: newCSR(t, name, name), DNSNames: []string{name}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Submit took %s after its context ended", took)
	}
	if IsPermanent(err) {
		t.Error("a timeout is not a permanent rejection")
	}
}

func TestWithoutUpstream(t *testing.T) {
	good := Config{Directory: "https://acme.invalid/directory", PreValidated: true}

	t.Run("New validates", func(t *testing.T) {
		secret := "c2VjcmV0IGhtYWMga2V5IGZvciB0ZXN0cw!!" // not base64url
		for name, cfg := range map[string]Config{
			"http directory": {Directory: "http://acme.invalid/dir", PreValidated: true},
			"no solver":      {Directory: good.Directory},
			"eab half":       {Directory: good.Directory, PreValidated: true, EAB: &EAB{KID: "k"}},
			"eab bad hmac":   {Directory: good.Directory, PreValidated: true, EAB: &EAB{KID: "k", HMAC: secret}},
			"unknown dns":    {Directory: good.Directory, DNSProvider: "no-such-provider"},
			"missing ca":     {Directory: good.Directory, PreValidated: true, CACertificates: "/nonexistent.pem"},
		} {
			_, err := New("x", cfg)
			if err == nil {
				t.Errorf("%s: New accepted %+v", name, cfg)
				continue
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("%s: error reveals the HMAC: %v", name, err)
			}
		}
		if _, err := New("", good); err == nil {
			t.Error("empty brand name accepted")
		}
	})

	t.Run("Describe", func(t *testing.T) {
		cfg := good
		cfg.CAAIdentities = []string{"letsencrypt.org"}
		cfg.MaxValidity = 90 * 24 * time.Hour
		d := mustNew(t, "le", cfg).Describe()
		want := issuer.Product{Wildcard: true, IP: true, MaxNames: 100, MaxValidity: 90 * 24 * time.Hour, CAAIdentities: []string{"letsencrypt.org"}}
		if d.Wildcard != want.Wildcard || d.IP != want.IP || d.MaxNames != want.MaxNames ||
			d.MaxValidity != want.MaxValidity || !slices.Equal(d.CAAIdentities, want.CAAIdentities) {
			t.Errorf("Describe = %+v, want %+v", d, want)
		}
		withSolver := Config{Directory: good.Directory, Solver: nopSolver{}}
		if d := mustNew(t, "le", withSolver).Describe(); d.IP || !d.Wildcard {
			t.Errorf("dns-01 only brand: Describe = %+v, want wildcard and no IP", d)
		}
	})

	t.Run("Poll", func(t *testing.T) {
		_, err := mustNew(t, "le", good).Poll(context.Background(), "t-1")
		if err == nil || !strings.Contains(err.Error(), "synchronously") {
			t.Errorf("Poll: %v", err)
		}
	})

	t.Run("IP needs pre-validation", func(t *testing.T) {
		b := mustNew(t, "le", Config{Directory: good.Directory, Solver: nopSolver{}})
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(192, 0, 2, 1)}}, key)
		csr, _ := x509.ParseCertificateRequest(der)
		_, err := b.Submit(context.Background(), issuer.Request{OrderID: "o", CSR: csr, IPs: []string{"192.0.2.1"}})
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("want ErrRefused, got %v", err)
		}
	})

	t.Run("cancelled before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := mustNew(t, "le", good).Submit(ctx, issuer.Request{OrderID: "o"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}
