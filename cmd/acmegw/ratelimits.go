package main

import (
	"fmt"
	"time"

	"github.com/acmegw/acmegw/acme"
	"github.com/acmegw/acmegw/storage"
)

// RateLimitsConfig is the YAML section rate_limits:
//
//	rate_limits:
//	  disabled: false              # true turns every limit off
//	  trust_forwarded_for: false   # client address from X-Forwarded-For (behind a proxy)
//	  limits:                      # replace built-in limits by name; count 0 turns one off
//	    newOrdersPerAccount: {count: 300, period: 3h, burst: 50}
//	  overrides:                   # per account id (per address for newAccountsPerIP)
//	    newOrdersPerAccount: {Xb3k9: {count: 5000, period: 3h}}
type RateLimitsConfig struct {
	Disabled          bool                                  `yaml:"disabled"`
	TrustForwardedFor bool                                  `yaml:"trust_forwarded_for"`
	Limits            map[string]RateLimitConfig            `yaml:"limits"`
	Overrides         map[string]map[string]RateLimitConfig `yaml:"overrides"`
}

// RateLimitConfig is one limit: count events per period, burst at once
// (default count).
type RateLimitConfig struct {
	Count  int      `yaml:"count"`
	Period Duration `yaml:"period"`
	Burst  int      `yaml:"burst"`
}

func (c RateLimitConfig) limit() storage.RateLimit {
	return storage.RateLimit{Count: c.Count, Period: time.Duration(c.Period), Burst: c.Burst}
}

// acmeRateLimits maps the section to the front end's configuration and
// checks it, so that a typo in a limit's name stops the start.
func (c RateLimitsConfig) acmeRateLimits() (acme.RateLimits, error) {
	out := acme.RateLimits{Disabled: c.Disabled, TrustForwardedFor: c.TrustForwardedFor}
	if len(c.Limits) > 0 {
		out.Limits = make(map[string]storage.RateLimit, len(c.Limits))
		for name, l := range c.Limits {
			out.Limits[name] = l.limit()
		}
	}
	if len(c.Overrides) > 0 {
		out.Overrides = make(map[string]map[string]storage.RateLimit, len(c.Overrides))
		for name, byID := range c.Overrides {
			m := make(map[string]storage.RateLimit, len(byID))
			for id, l := range byID {
				m[id] = l.limit()
			}
			out.Overrides[name] = m
		}
	}
	if err := out.Validate(); err != nil {
		return out, fmt.Errorf("config rate_limits: %w", err)
	}
	return out, nil
}
