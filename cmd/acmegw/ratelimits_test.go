package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/storage"
)

func loadRateLimits(t *testing.T, yaml string) (acme.RateLimits, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("serve", []string{"--config", path})
	if err != nil {
		return acme.RateLimits{}, err
	}
	return cfg.RateLimits.acmeRateLimits()
}

func TestRateLimitsConfig(t *testing.T) {
	rl, err := loadRateLimits(t, `
rate_limits:
  trust_forwarded_for: true
  limits:
    newOrdersPerAccount: {count: 300, period: 3h, burst: 50}
    certificatesPerRegisteredDomain: {count: 100, period: 7d}
    finalizePerOrder: {count: 0}
  overrides:
    newOrdersPerAccount:
      acct-1: {count: 5000, period: 3h}
    newAccountsPerIP:
      10.0.0.5: {count: 0}
`)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Disabled || !rl.TrustForwardedFor {
		t.Errorf("disabled %v, trust_forwarded_for %v", rl.Disabled, rl.TrustForwardedFor)
	}
	want := map[string]storage.RateLimit{
		acme.LimitNewOrdersPerAccount:             {Count: 300, Period: 3 * time.Hour, Burst: 50},
		acme.LimitCertificatesPerRegisteredDomain: {Count: 100, Period: 7 * 24 * time.Hour},
		acme.LimitFinalizePerOrder:                {},
	}
	if len(rl.Limits) != len(want) {
		t.Errorf("limits %+v, want %+v", rl.Limits, want)
	}
	for name, l := range want {
		if rl.Limits[name] != l {
			t.Errorf("limit %s = %+v, want %+v", name, rl.Limits[name], l)
		}
	}
	if got := rl.Overrides[acme.LimitNewOrdersPerAccount]["acct-1"]; got != (storage.RateLimit{Count: 5000, Period: 3 * time.Hour}) {
		t.Errorf("override = %+v", got)
	}
	if got, ok := rl.Overrides[acme.LimitNewAccountsPerIP]["10.0.0.5"]; !ok || got.Count != 0 {
		t.Errorf("exemption = %+v, %v", got, ok)
	}

	rl, err = loadRateLimits(t, "rate_limits: {disabled: true}\n")
	if err != nil || !rl.Disabled {
		t.Errorf("disabled: %+v, %v", rl, err)
	}
	if rl, err = loadRateLimits(t, "listen: 127.0.0.1:0\n"); err != nil || rl.Disabled || rl.Limits != nil {
		t.Errorf("no section: %+v, %v; want the zero value (built-in limits)", rl, err)
	}

	for yaml, hint := range map[string]string{
		"rate_limits: {limits: {newOrdersPerAcount: {count: 1, period: 1h}}}\n":  "newOrdersPerAcount",
		"rate_limits: {limits: {newOrdersPerAccount: {count: 1}}}\n":             "period",
		"rate_limits: {limits: {newOrdersPerAccount: {cont: 1}}}\n":              "cont",
		"rate_limits: {limits: {newOrdersPerAccount: {count: 1, period: 1x}}}\n": "1x",
	} {
		if _, err := loadRateLimits(t, yaml); err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("%q: error %v, want one mentioning %q", yaml, err, hint)
		}
	}
}
