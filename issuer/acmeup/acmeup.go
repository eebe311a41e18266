// Package acmeup is a brand backed by an upstream ACME CA: Let's Encrypt,
// ZeroSSL, Google Trust Services, DigiCert or Sectigo ACME, or Pebble in
// tests. The gateway acts as an ACME client towards the upstream (through the
// lego library) and solves the upstream's dns-01 challenges itself, with a
// lego DNS provider holding credentials for the customers' zones, unless the
// upstream pre-validates the domains (Sectigo with portal-validated domains).
//
// The gateway has already checked that the ACME client controls every name
// before a Request reaches this brand; the upstream challenge is solved with
// the gateway's own DNS credential, so Submit refuses a CSR naming anything
// other than the order's identifiers.
package acmeup

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/dns01"

	"github.com/acmegw/acmegw/issuer"
)

// maxNames is the most names one upstream order may carry; Let's Encrypt and
// the commercial ACME CAs all stop at 100.
const maxNames = 100

// defaultFinalizeTimeout bounds the wait for the upstream to issue once the
// CSR is submitted. lego polls at 1/60 of it, so 90 s means a poll every 1.5 s.
const defaultFinalizeTimeout = 90 * time.Second

// userAgent identifies the gateway to upstream CAs, which ask clients to
// name themselves.
const userAgent = "acmegw-acmeup"

// Config configures one upstream ACME CA brand.
type Config struct {
	// Directory is the upstream's directory URL; it must be https.
	Directory string
	// Email is the contact address of the upstream account (optional).
	Email string
	// EAB binds the upstream account to an external account (ZeroSSL,
	// Google, DigiCert, Sectigo). It is used once, at registration.
	EAB *EAB
	// Profile is the upstream profile every order asks for (optional), for
	// example "shortlived" at Let's Encrypt.
	Profile string
	// DNSProvider is a lego DNS provider name ("cloudflare", "alidns",
	// "tencentcloud", "httpreq", "exec", ...). Its credentials come from the
	// provider's usual environment variables, read once by New.
	DNSProvider string
	// Solver, when set, solves the upstream dns-01 challenges instead of
	// the provider named by DNSProvider: for tests, or for a zone the gateway
	// answers itself through CNAME delegation.
	Solver challenge.Provider
	// PreValidated says the upstream skips challenges for the brand's
	// domains (Sectigo with portal-validated domains), so no solver is
	// needed. A solver configured anyway still handles any authorization
	// the upstream leaves pending.
	PreValidated bool
	// DNSResolvers are the recursive nameservers (HOST or HOST:PORT) that
	// lego queries to check that a TXT record has propagated and to follow
	// CNAMEs. lego keeps this list per process, not per client: the last
	// Brand created with a non-empty list sets it for all.
	DNSResolvers []string
	// SkipAuthoritativeCheck checks propagation at DNSResolvers only,
	// instead of at the zone's authoritative nameservers on port 53 (lego's
	// --dns.propagation-disable-ans). Needed when those are unreachable, as
	// with a loopback test server.
	SkipAuthoritativeCheck bool
	// CACertificates is a PEM file of roots to trust for the upstream's
	// HTTPS endpoint instead of the system pool, like LEGO_CA_CERTIFICATES.
	CACertificates string
	// KeyDir is where the upstream account key and registration persist
	// (KeyDir/account.json, mode 0600), so restarts reuse the account, for
	// example <data-dir>/acmeup/<brand name>. Empty keeps them in memory
	// and registers a new account in every process.
	KeyDir string
	// CAAIdentities are the issuer domains the upstream checks in CAA
	// records, such as "letsencrypt.org".
	CAAIdentities []string
	// MaxValidity is the longest lifetime the upstream product issues, as
	// reported by Describe; 0 means not stated.
	MaxValidity time.Duration
	// FinalizeTimeout bounds the wait for the upstream to issue once the CSR
	// is submitted; 0 means 90 s. The Submit context bounds it too.
	FinalizeTimeout time.Duration
}

// EAB is an External Account Binding credential (RFC 8555 section 7.3.4).
type EAB struct {
	// KID is the key identifier the upstream handed out.
	KID string
	// HMAC is the MAC key, base64url encoded (padding optional). It is a
	// secret: it never appears in logs or errors.
	HMAC string
}

// Brand is an upstream ACME CA behind the issuer.Issuer contract. It is safe
// for concurrent use: the upstream account is registered once, lazily, and
// every Submit or Revoke uses its own ACME session.
type Brand struct {
	name      string
	cfg       Config
	provider  challenge.Provider // nil when PreValidated with no solver
	transport *http.Transport    // shared, so connections to the upstream are pooled

	mu     sync.Mutex // guards key and regURI while the account is set up
	key    crypto.Signer
	regURI string
}

var _ issuer.Issuer = (*Brand)(nil)

// New checks cfg and prepares the brand; it makes no network call. The
// upstream account is registered (with EAB when configured) on first use, or
// loaded from KeyDir.
func New(name string, cfg Config) (*Brand, error) {
	if name == "" {
		return nil, errors.New("acmeup: empty brand name")
	}
	u, err := url.Parse(cfg.Directory)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		// lego refuses plain http; saying so here beats a confusing
		// first-issuance failure.
		return nil, fmt.Errorf("acmeup %s: directory %q is not an https URL", name, cfg.Directory)
	}
	if cfg.EAB != nil {
		if cfg.EAB.KID == "" || cfg.EAB.HMAC == "" {
			return nil, fmt.Errorf("acmeup %s: eab needs both kid and hmac", name)
		}
		if _, err := decodeHMAC(cfg.EAB.HMAC); err != nil {
			// Not %w: the decoder's message could quote the secret.
			return nil, fmt.Errorf("acmeup %s: eab hmac for kid %q is not base64url", name, cfg.EAB.KID)
		}
	}
	if cfg.FinalizeTimeout <= 0 {
		cfg.FinalizeTimeout = defaultFinalizeTimeout
	}
	b := &Brand{name: name, cfg: cfg}
	switch {
	case cfg.Solver != nil:
		b.provider = cfg.Solver
	case cfg.DNSProvider != "":
		p, err := newDNSProvider(cfg.DNSProvider)
		if err != nil {
			return nil, fmt.Errorf("acmeup %s: dns provider %q: %w", name, cfg.DNSProvider, err)
		}
		b.provider = p
	case !cfg.PreValidated:
		return nil, fmt.Errorf("acmeup %s: no dns provider and not pre-validated: the upstream challenges cannot be solved", name)
	}
	b.transport, err = newTransport(cfg.CACertificates)
	if err != nil {
		return nil, fmt.Errorf("acmeup %s: %w", name, err)
	}
	if len(cfg.DNSResolvers) > 0 {
		useResolvers(cfg.DNSResolvers)
	}
	return b, nil
}

// Name returns the brand name given to New.
func (b *Brand) Name() string { return b.name }

// Describe reports what the upstream accepts. Wildcards need dns-01, which
// the brand's solver answers (or the upstream pre-validates). IP addresses
// are offered only when the upstream pre-validates: an IP identifier cannot
// be proven with dns-01, and the upstream's http-01 or tls-alpn-01 request
// would reach the customer's server, not the gateway.
func (b *Brand) Describe() issuer.Product {
	return issuer.Product{
		Wildcard:      true,
		IP:            b.cfg.PreValidated,
		MaxNames:      maxNames,
		MaxValidity:   b.cfg.MaxValidity,
		CAAIdentities: slices.Clone(b.cfg.CAAIdentities),
	}
}

// newTransport builds the HTTP transport to the upstream, trusting only the
// roots in caFile when it is set. The timeouts match lego's default client.
func newTransport(caFile string) (*http.Transport, error) {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca certificates: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca certificates: no PEM certificate in %s", caFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return t, nil
}

// decodeHMAC accepts base64url with or without padding, as lego does.
func decodeHMAC(s string) ([]byte, error) {
	if k, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return k, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

// legoResolvers remembers what was last handed to lego's process-wide
// resolver list, so that brands agreeing on it never write it again while
// another brand's issuance reads it.
var legoResolvers struct {
	sync.Mutex
	list []string
}

func useResolvers(servers []string) {
	list := dns01.ParseNameservers(servers)
	legoResolvers.Lock()
	defer legoResolvers.Unlock()
	if slices.Equal(list, legoResolvers.list) {
		return
	}
	legoResolvers.list = list
	// The option only sets a package variable; it never touches its argument.
	_ = dns01.AddRecursiveNameservers(list)(nil)
}
