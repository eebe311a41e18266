package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/acme"
)

// loadTimeouts loads yaml as `acmegw serve --config` does and builds the
// front end's configuration the way serve does.
func loadTimeouts(t *testing.T, yaml string) (acme.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acmegw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("serve", []string{"--config", path})
	if err != nil {
		return acme.Config{}, err
	}
	return acmeConfig(cfg, nil, nil, nil, nil, acme.RateLimits{}), nil
}

func TestJobConfigTimeouts(t *testing.T) {
	ac, err := loadTimeouts(t, `
base_url: https://acme.example
timeouts:
  validation_wait: 7s
  finalize_wait: 11s
  brand_timeout: 3m
  job_lease: 4m
  review_poll: 30s
  nonce_ttl: 2d
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key       string
		got, want time.Duration
	}{
		{"validation_wait", ac.ValidationWait, 7 * time.Second},
		{"finalize_wait", ac.FinalizeWait, 11 * time.Second},
		{"brand_timeout", ac.BrandTimeout, 3 * time.Minute},
		{"job_lease", ac.JobLease, 4 * time.Minute},
		{"review_poll", ac.ReviewPoll, 30 * time.Second},
		{"nonce_ttl", ac.NonceTTL, 48 * time.Hour},
	} {
		if c.got != c.want {
			t.Errorf("timeouts.%s: acme.Config has %v, want %v", c.key, c.got, c.want)
		}
	}
	// The rest of the configuration still reaches acme.Config.
	if ac.BaseURL != "https://acme.example" {
		t.Errorf("BaseURL = %q", ac.BaseURL)
	}
}

func TestJobConfigAbsentKeepsDefaults(t *testing.T) {
	for name, yaml := range map[string]string{
		"no section":    "listen: 127.0.0.1:0\n",
		"empty section": "timeouts: {}\n",
		"zero":          "timeouts: {validation_wait: 0s, finalize_wait: 0s, brand_timeout: 0s, job_lease: 0s, review_poll: 0s, nonce_ttl: 0s}\n",
	} {
		t.Run(name, func(t *testing.T) {
			ac, err := loadTimeouts(t, yaml)
			if err != nil {
				t.Fatal(err)
			}
			if ac.ValidationWait != 0 || ac.FinalizeWait != 0 || ac.BrandTimeout != 0 || ac.JobLease != 0 || ac.ReviewPoll != 0 || ac.NonceTTL != 0 {
				t.Errorf("acme.Config timing fields %v %v %v %v %v %v, want all zero (acme's defaults)",
					ac.ValidationWait, ac.FinalizeWait, ac.BrandTimeout, ac.JobLease, ac.ReviewPoll, ac.NonceTTL)
			}
		})
	}
}

func TestJobConfigNegativeRefused(t *testing.T) {
	for _, key := range []string{"validation_wait", "finalize_wait", "brand_timeout", "job_lease", "review_poll", "nonce_ttl"} {
		t.Run(key, func(t *testing.T) {
			_, err := loadTimeouts(t, "timeouts:\n  "+key+": -5s\n")
			if err == nil {
				t.Fatalf("timeouts.%s: -5s accepted", key)
			}
			if !strings.Contains(err.Error(), "timeouts."+key) {
				t.Errorf("error %q does not name timeouts.%s", err, key)
			}
		})
	}
	// Days count too.
	if _, err := loadTimeouts(t, "timeouts: {nonce_ttl: -1d}\n"); err == nil || !strings.Contains(err.Error(), "timeouts.nonce_ttl") {
		t.Errorf("nonce_ttl -1d: error %v, want one naming timeouts.nonce_ttl", err)
	}
}

func TestJobConfigUnknownKeyRefused(t *testing.T) {
	_, err := loadTimeouts(t, "timeouts: {job_leese: 3m}\n")
	if err == nil || !strings.Contains(err.Error(), "job_leese") {
		t.Errorf("misspelt key: error %v, want one naming job_leese", err)
	}
}
