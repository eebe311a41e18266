package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/internal/testredis"
)

// issueDNS01 obtains a certificate for names with golang.org/x/crypto/acme
// (the client cert-manager forked), answering dns-01 in the gateway's DNS server.
func issueDNS01(t *testing.T, gw *gateway, client *acme.Client, names ...string) *x509.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	for _, u := range order.AuthzURLs {
		authz, err := client.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if authz.Status == acme.StatusValid {
			continue
		}
		var chal *acme.Challenge
		for _, c := range authz.Challenges {
			if c.Type == "dns-01" {
				chal = c
			}
		}
		if chal == nil {
			t.Fatalf("no dns-01 challenge for %s", authz.Identifier.Value)
		}
		rec, err := client.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		gw.DNS.AddTXT("_acme-challenge."+authz.Identifier.Value+".", rec)
		if _, err := client.Accept(ctx, chal); err != nil {
			t.Fatalf("accept: %v", err)
		}
		if _, err := client.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("authorization %s: %v", authz.Identifier.Value, err)
		}
	}
	if _, err := client.WaitOrder(ctx, order.URI); err != nil {
		t.Fatalf("order: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	der, _, err := client.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// newXClient registers a fresh RSA account, as cert-manager does.
func newXClient(t *testing.T, gw *gateway) *acme.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &acme.Client{Key: key, DirectoryURL: gw.DirURL, HTTPClient: gw.HTTPClient(t)}
	if _, err := c.Register(context.Background(), &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	return c
}

type renewalInfo struct {
	SuggestedWindow struct{ Start, End time.Time } `json:"suggestedWindow"`
}

func getRenewalInfo(t *testing.T, gw *gateway, leaf *x509.Certificate) renewalInfo {
	t.Helper()
	serial := leaf.SerialNumber.Bytes()
	if serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	id := base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(serial)
	resp, err := gw.HTTPClient(t).Get(gw.BaseURL() + "/acme/renewal-info/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("renewalInfo: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var ri renewalInfo
	if err := json.NewDecoder(resp.Body).Decode(&ri); err != nil {
		t.Fatal(err)
	}
	return ri
}

// TestARIReschedule shows incident response end to end: the admin command
// pulls a certificate's window into the past and renewalInfo reports it.
func TestARIReschedule(t *testing.T) {
	redisURL := testredis.Start(t)
	gw := startGateway(t, gatewayOptions{RedisURL: redisURL})
	leaf := issueDNS01(t, gw, newXClient(t, gw), "ari.e2e.test")

	ri := getRenewalInfo(t, gw, leaf)
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if !ri.SuggestedWindow.Start.After(leaf.NotBefore.Add(life/2)) || !ri.SuggestedWindow.End.Before(leaf.NotAfter) {
		t.Fatalf("window %v..%v not in the last half of %v..%v", ri.SuggestedWindow.Start, ri.SuggestedWindow.End, leaf.NotBefore, leaf.NotAfter)
	}

	out, err := exec.Command(binary, "ari", "reschedule", "--redis", redisURL, fmt.Sprintf("%x", leaf.SerialNumber)).CombinedOutput()
	if err != nil {
		t.Fatalf("ari reschedule: %v\n%s", err, out)
	}
	ri = getRenewalInfo(t, gw, leaf)
	if !ri.SuggestedWindow.End.Before(time.Now()) {
		t.Fatalf("after reschedule the window ends %v, want in the past", ri.SuggestedWindow.End)
	}

	out, err = exec.Command(binary, "ari", "reschedule", "--redis", redisURL, "00ff").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not found") {
		t.Fatalf("unknown serial: err %v, output %s", err, out)
	}
}
