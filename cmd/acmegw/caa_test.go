package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestCAA shows CAA enforced end to end against records served on loopback:
// with caa_identities configured, a name whose CAA names another CA is
// refused with a caa problem, and one naming this gateway is issued.
func TestCAA(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(cfgPath, []byte("caa_identities: [acmegw.test]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{Args: []string{"--config", cfgPath}})
	gw.DNS.AddCAA("allowed.caa.test.", 0, "issue", "acmegw.test")
	gw.DNS.AddCAA("forbidden.caa.test.", 0, "issue", "other-ca.example")
	client := newXClient(t, gw)

	issueDNS01(t, gw, client, "www.allowed.caa.test")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs("www.forbidden.caa.test"))
	if err != nil {
		t.Fatal(err)
	}
	authz, err := client.GetAuthorization(ctx, order.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range authz.Challenges {
		if c.Type != "dns-01" {
			continue
		}
		rec, _ := client.DNS01ChallengeRecord(c.Token)
		gw.DNS.AddTXT("_acme-challenge.www.forbidden.caa.test.", rec)
		if _, err := client.Accept(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	_, err = client.WaitAuthorization(ctx, order.AuthzURLs[0])
	var aerr *acme.AuthorizationError
	if !errors.As(err, &aerr) || len(aerr.Errors) == 0 {
		t.Fatalf("authorization with forbidding CAA: got %v, want an authorization error", err)
	}
	var perr *acme.Error
	if !errors.As(aerr.Errors[0], &perr) || perr.ProblemType != "urn:ietf:params:acme:error:caa" ||
		!strings.Contains(perr.Detail, "other-ca.example") {
		t.Fatalf("problem %#v, want caa naming the record found", aerr.Errors[0])
	}
}
