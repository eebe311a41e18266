package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmegw/acmegw/issuer"
)

// rulesYAML is a free DV profile with product rules on the built-in CA,
// the default profile (x/crypto/acme cannot choose one).
const rulesYAML = `default_profile: free-dv
profiles:
  free-dv:
    brand: local
    description: "free DV, one year quota"
    rules:
      wildcard: false
      ip: false
      max_names: 2
      key_types: [ec256, rsa2048]
      max_validity: 90d
      blocked_suffixes: [.edu, gov]
      blocked_words: [paypal]
      review_words: [casino]
      quota: {per_account: 5, per_registered_domain: 3, period: 365d}
brands:
  local: {type: local}
rate_limits: {disabled: true}
`

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRulesConfig: the rules: block maps onto issuer.Rules key by key.
func TestRulesConfig(t *testing.T) {
	cfg, err := loadConfig("serve", []string{"--config", writeConfig(t, rulesYAML)})
	if err != nil {
		t.Fatal(err)
	}
	no := false
	day := 24 * time.Hour
	want := issuer.Rules{
		Wildcard: &no, IP: &no, MaxNames: 2, KeyTypes: []string{"ec256", "rsa2048"}, MaxValidity: 90 * day,
		BlockedSuffixes: []string{".edu", "gov"}, BlockedWords: []string{"paypal"}, ReviewWords: []string{"casino"},
		Quota: issuer.Quota{PerAccount: 5, PerRegisteredDomain: 3, Period: 365 * day},
	}
	if got := cfg.Profiles["free-dv"].Rules.rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("rules\n got %+v\nwant %+v", got, want)
	}
	if got := cfg.Profiles["free-dv"].Rules.rules(); got.Wildcard == nil || *got.Wildcard {
		t.Errorf("wildcard: false read as %v", got.Wildcard)
	}
}

// TestRulesConfigRefused: rules that cannot be enforced stop the start.
func TestRulesConfigRefused(t *testing.T) {
	bad := strings.Replace(rulesYAML, "key_types: [ec256, rsa2048]", "key_types: [ec256, dsa1024]", 1)
	cmd := exec.Command(binary, "serve", "--config", writeConfig(t, bad), "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `profile "free-dv"`) || !strings.Contains(string(out), `unknown key type "dsa1024"`) {
		t.Fatalf("serve with an unknown key type: %v\n%s", err, out)
	}
}

// reviewOverSocket runs "acmegw review" against the gateway's admin socket.
func reviewOverSocket(gw *gateway, args ...string) (string, error) {
	cmd := exec.Command(binary, append(append([]string{"review"}, args...), "--data-dir", gw.DataDir)...)
	cmd.Env = append(os.Environ(), "ACMEGW_REDIS=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRulesEndToEnd: the real binary on the memory store with a profile
// with rules refuses a .edu name at newOrder, holds orders for names with a
// review word processing until "acmegw review" decides over the admin
// socket, then issues the approved one and makes the rejected one invalid.
func TestRulesEndToEnd(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayOptions{Args: []string{"--config", writeConfig(t, rulesYAML)}})
	client := newXClient(t, gw)

	_, err := client.AuthorizeOrder(context.Background(), acme.DomainIDs("www.school.edu"))
	var ae *acme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:rejectedIdentifier" ||
		!strings.Contains(ae.Detail, `profile "free-dv" does not issue for .edu names (www.school.edu)`) {
		t.Fatalf("order for a .edu name: %v", err)
	}
	if _, err := client.AuthorizeOrder(context.Background(), acme.DomainIDs("*.wild.e2e.test")); !errors.As(err, &ae) || !strings.Contains(ae.Detail, "wildcard") {
		t.Fatalf("wildcard order: %v", err)
	}

	// Plain names issue at once.
	leaf := issueDNS01(t, gw, client, "plain.rules.e2e.test")
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 90*24*time.Hour+time.Hour {
		t.Errorf("certificate lives %s, beyond max_validity 90d", life)
	}

	// Names with a review word wait for an operator.
	approved, rejected := "casino.rules.e2e.test", "www.casino-two.rules.e2e.test"
	orders := map[string]*acme.Order{}
	for _, name := range []string{approved, rejected} {
		orders[name] = readyXOrder(t, gw, client, name)
		finalizeAndGiveUp(t, client, orders[name], name)
	}
	if out, err := reviewOverSocket(gw, "approve", orders[approved].URI, "--reason", "licence on file"); err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("review approve: %v\n%s", err, out)
	}
	reason := "no gambling licence on file"
	if out, err := reviewOverSocket(gw, "reject", orders[rejected].URI, "--reason", reason); err != nil {
		t.Fatalf("review reject: %v\n%s", err, out)
	}

	// The held jobs look again a minute after finalize.
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
		defer cancel()
		o, err := client.WaitOrder(ctx, orders[approved].URI)
		if err != nil || o.CertURL == "" {
			t.Errorf("approved order: %+v, %v", o, err)
			return
		}
		der, err := client.FetchCert(ctx, o.CertURL, false)
		if err != nil || len(der) == 0 {
			t.Errorf("certificate of the approved order: %v", err)
		}
	})
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
		defer cancel()
		_, err := client.WaitOrder(ctx, orders[rejected].URI)
		var oe *acme.OrderError
		if !errors.As(err, &oe) || oe.Status != acme.StatusInvalid {
			t.Errorf("rejected order: %v, want invalid", err)
			return
		}
		o, err := client.GetOrder(ctx, orders[rejected].URI)
		if err != nil || o.Error == nil || o.Error.ProblemType != "urn:ietf:params:acme:error:rejectedIdentifier" ||
			!strings.Contains(o.Error.Detail, "rejected by review: "+reason) {
			t.Errorf("rejected order: %+v, %v", o, err)
		}
	})
	wg.Wait()

	// A decision on a final order is refused.
	if out, err := reviewOverSocket(gw, "reject", orders[approved].URI); err == nil || !strings.Contains(out, "already valid") {
		t.Errorf("reject after issuance: %v\n%s", err, out)
	}
}
