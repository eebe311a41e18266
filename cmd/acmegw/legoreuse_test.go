package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"

	"github.com/acmegw/acmegw/internal/testredis"
)

// TestLegoGivesUpAndReruns is the "client gave up on a slow brand" story
// with lego on Redis: lego waits 2 s for a brand that takes 8 s and fails;
// run again later with the same account and CSR, it is handed the same
// order and collects the certificate, which was issued only once.
func TestLegoGivesUpAndReruns(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "acmegw.yaml")
	err := os.WriteFile(cfg, []byte(`default_profile: slow
profiles:
  slow: {brand: review, description: "issued 8 s after finalize"}
brands:
  review: {type: manual, issue_after: 8s}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{RedisURL: testredis.Start(t), Args: []string{"--config", cfg}})
	client, _ := legoNew(t, gw, certcrypto.EC256, func(c *lego.Config) { c.Certificate.Timeout = 2 * time.Second })
	legoDNS01(t, client, gw)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"slow.e2e.test"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)

	if _, err := client.Certificate.ObtainForCSR(certificate.ObtainForCSRRequest{CSR: csr, Bundle: true}); err == nil {
		t.Fatal("lego got a certificate within 2 s from a brand that takes 8 s")
	}
	time.Sleep(7 * time.Second)

	// The same account runs again; lego keeps no order state between runs.
	res, err := client.Certificate.ObtainForCSR(certificate.ObtainForCSRRequest{CSR: csr, Bundle: true})
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, gw.Log())
	}
	leaf := legoCheckChain(t, gw, res, "slow.e2e.test")
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("the certificate is not for the re-sent CSR's key")
	}
	log := gw.Log()
	if n := strings.Count(log, `msg="order created"`); n != 1 {
		t.Errorf("%d orders created, want 1 (the re-run must get the first order back)", n)
	}
	if !strings.Contains(log, `msg="order reused"`) {
		t.Error("the gateway log does not show the order being reused")
	}
}
