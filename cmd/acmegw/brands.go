package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/acmeup"
	"github.com/acmegw/acmegw/issuer/local"
)

// ACMEBrandConfig holds the keys of a brand of type "acme": an upstream ACME
// CA (Let's Encrypt, ZeroSSL, Google, DigiCert/Sectigo ACME, Pebble).
type ACMEBrandConfig struct {
	Directory string `yaml:"directory"`
	Email     string `yaml:"email"`
	// EABKID and the MAC key (from the variable EABHMACEnv names, or
	// EABHMAC inline) bind the upstream account, for CAs that require it.
	EABKID     string `yaml:"eab_kid"`
	EABHMACEnv string `yaml:"eab_hmac_env"`
	EABHMAC    string `yaml:"eab_hmac"`
	// UpstreamProfile is the upstream's own profile name (e.g. "shortlived").
	UpstreamProfile string `yaml:"upstream_profile"`
	// DNSProvider is a lego DNS provider name ("cloudflare", "alidns",
	// "tencentcloud", "httpreq", ...); its credentials come from that
	// provider's usual environment variables.
	DNSProvider  string   `yaml:"dns_provider"`
	PreValidated bool     `yaml:"prevalidated"`
	DNSResolvers []string `yaml:"dns_resolvers"`
	// SkipAuthoritativeCheck checks TXT propagation only at DNSResolvers.
	SkipAuthoritativeCheck bool     `yaml:"skip_authoritative_check"`
	CACertificates         string   `yaml:"ca_certificates"`
	CAAIdentities          []string `yaml:"caa_identities"`
	MaxValidity            Duration `yaml:"max_validity"`
}

// buildBrand makes the Issuer a brands entry describes.
func buildBrand(name string, b BrandConfig, ca *local.CA, dataDir string) (issuer.Issuer, error) {
	switch b.Type {
	case "local":
		return ca, nil
	case "acme":
		a := b.ACMEBrandConfig
		cfg := acmeup.Config{
			Directory:              a.Directory,
			Email:                  a.Email,
			Profile:                a.UpstreamProfile,
			DNSProvider:            a.DNSProvider,
			PreValidated:           a.PreValidated,
			DNSResolvers:           a.DNSResolvers,
			SkipAuthoritativeCheck: a.SkipAuthoritativeCheck,
			CACertificates:         a.CACertificates,
			KeyDir:                 filepath.Join(dataDir, "acmeup", name),
			CAAIdentities:          a.CAAIdentities,
			MaxValidity:            time.Duration(a.MaxValidity),
		}
		if a.EABKID != "" {
			hmac := a.EABHMAC
			if a.EABHMACEnv != "" {
				hmac = os.Getenv(a.EABHMACEnv)
			}
			cfg.EAB = &acmeup.EAB{KID: a.EABKID, HMAC: hmac}
		}
		brand, err := acmeup.New(name, cfg)
		if err != nil {
			return nil, fmt.Errorf("brand %q: %w", name, err)
		}
		return brand, nil
	}
	return nil, fmt.Errorf("brand %q: unknown type %q (known: local, acme)", name, b.Type)
}
