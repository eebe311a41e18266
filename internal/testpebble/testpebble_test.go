package testpebble

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/validation/validationtest"
)

// TestIssueRevoke drives one Pebble through a whole dns-01 issuance with
// golang.org/x/crypto/acme and checks what the helpers report about it.
func TestIssueRevoke(t *testing.T) {
	dns := validationtest.NewDNSServer(t)
	p := Start(t, Options{DNS: dns.Addr(), AlternateRoots: 1})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &acme.Client{Key: key, DirectoryURL: p.DirURL(), HTTPClient: p.HTTPClient()}
	dir, err := c.Discover(ctx)
	if err != nil {
		t.Fatalf("directory at %s with the minica root trusted: %v", p.DirURL(), err)
	}
	if dir.ExternalAccountRequired {
		t.Error("EAB required without EABKeys")
	}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	name := "www.testpebble.test"
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range order.AuthzURLs {
		authz, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range authz.Challenges {
			if ch.Type != "dns-01" {
				continue
			}
			rec, _ := c.DNS01ChallengeRecord(ch.Token)
			dns.AddTXT("_acme-challenge."+name+".", rec)
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("authorization (Pebble resolving through %s): %v", dns.Addr(), err)
		}
	}
	if _, err := c.WaitOrder(ctx, order.URI); err != nil {
		t.Fatal(err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, certKey)
	// CreateCertFromOrder, not CreateOrderCert: Pebble's finalize response
	// has no Location header to find the order by.
	der, _, err := c.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		ic, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}

	root0, err := p.Root(0)
	if err != nil {
		t.Fatal(err)
	}
	only0 := x509.NewCertPool()
	only0.AddCert(root0)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: only0, Intermediates: inter}); err != nil {
		t.Errorf("default chain does not verify to Root(0): %v", err)
	}
	if _, err := p.Root(1); err != nil {
		t.Errorf("AlternateRoots 1 but Root(1): %v", err)
	}
	if _, err := p.Root(2); err == nil {
		t.Error("Root(2) exists with AlternateRoots 1")
	}
	bundle, err := p.RootsPEM()
	if err != nil || strings.Count(string(bundle), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("RootsPEM: %v, %d certificates", err, strings.Count(string(bundle), "BEGIN CERTIFICATE"))
	}
	if _, err := p.IntermediatePEM(0); err != nil {
		t.Error(err)
	}

	st, err := p.CertStatus(leaf.SerialNumber)
	if err != nil || st.Status != "Valid" || st.Revoked() {
		t.Fatalf("CertStatus before revoking: %+v %v", st, err)
	}
	if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	st, err = p.CertStatus(leaf.SerialNumber)
	if err != nil || !st.Revoked() || st.Reason == nil || *st.Reason != uint(acme.CRLReasonSuperseded) {
		t.Fatalf("CertStatus after revoking: %+v %v", st, err)
	}
	if _, err := p.CertStatus(big.NewInt(12345)); !errors.Is(err, ErrNotFound) {
		t.Errorf("CertStatus of an unknown serial: %v, want ErrNotFound", err)
	}
	if !strings.Contains(p.Log(), "Pebble") {
		t.Errorf("Log() holds no Pebble output: %q", p.Log())
	}
}

// TestOptions checks EAB, profiles and the refusal to run without a DNS server.
func TestOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without DNS or AlwaysValid succeeded")
	}
	p := Start(t, Options{
		AlwaysValid: true,
		EABKeys:     map[string]string{"kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"},
		Profiles:    map[string]Profile{"default": {Description: "one day", Validity: 24 * time.Hour}, "tiny": {Description: "an hour", Validity: time.Hour}},
	})
	resp, err := p.HTTPClient().Get(p.DirURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir struct {
		Meta struct {
			ExternalAccountRequired bool
			Profiles                map[string]string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatal(err)
	}
	if !dir.Meta.ExternalAccountRequired || dir.Meta.Profiles["tiny"] != "an hour" || len(dir.Meta.Profiles) != 2 {
		t.Errorf("directory meta %+v", dir.Meta)
	}
}

// TestStopAndShared checks that Stop ends the process and removes its
// files, and that Shared starts one Pebble for every caller.
func TestStopAndShared(t *testing.T) {
	var s Shared
	a := s.Start(t, Options{AlwaysValid: true})
	b := s.Start(t, Options{AlwaysValid: true, AlternateRoots: 3})
	if a != b {
		t.Fatal("Shared started two Pebbles")
	}
	dir := a.workDir
	s.Stop()
	s.Stop()
	select {
	case <-a.Exited():
	default:
		t.Fatal("process still running after Stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("working directory %s left behind: %v", dir, err)
	}
	if _, err := a.HTTPClient().Get(a.DirURL()); err == nil {
		t.Error("directory still answers after Stop")
	}
}
