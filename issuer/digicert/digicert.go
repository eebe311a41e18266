// Package digicert is a brand backed by the DigiCert CertCentral Services
// API v2 (https://www.digicert.com/services/v2/): OV and EV products such as
// ssl_basic, ssl_securesite_pro and ssl_ev_basic, and the DV products.
//
// The flow behind the issuer.Issuer contract:
//
//   - Submit places the order: POST order/certificate/{product} with the
//     CSR, its common name and the other names, the organization, the
//     validity and the DCV method. An organization and domains that are
//     pre-validated in the account, with automatic approval, can be issued
//     in that very response (certificate_chain); otherwise Submit hands
//     back a ticket holding the DigiCert order id.
//   - Poll reads the order (GET order/certificate/{id}). While DigiCert
//     still wants domain control validation it publishes DigiCert's random
//     value through the configured dcv.Publisher and asks DigiCert to look
//     (PUT order/certificate/{id}/check-dcv). Once the order is issued it
//     downloads the chain (GET certificate/download/order/{id}/format/pem_all)
//     and removes the DCV records; a rejected, canceled or revoked order is
//     a permanent *issuer.Error carrying DigiCert's reason.
//   - Revoke finds the certificate by serial number and revokes it
//     (PUT certificate/{id}/revoke). Issued Results carry DigiCert's
//     certificate id as their Ref, and RevokeRef revokes by it directly.
//
// The ticket is the only state kept between Submit and the Polls, in the
// gateway's store: it holds the order id and the DCV records published so
// far, so that any instance, after any restart, continues the order and
// removes exactly what was published.
//
// Where DigiCert's public reference is thin, the brand reads defensively:
// a domain's token is its "dcv_token.token" when the order lists its
// "domains", else the order's single random value from
// PUT order/certificate/{id}/dcv-random-value (DigiCert documents that one
// value validates every domain of the order); an order info without a
// domains list is validated for the certificate's names until check-dcv
// reports "dcv_status": "valid"; a rejection's reason is the request's
// "processor_comment". digicerttest models the same schema.
//
// DigiCert must validate the domains itself (CA/Browser Forum rules): the
// gateway's own dns-01 or http-01 success does not count for it. The brand
// therefore uses only the DNS-based DCV methods, which the gateway can
// satisfy through its Publisher; see Config.DCVMethod.
package digicert

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// DefaultBaseURL is the CertCentral Services API v2 of DigiCert's US
// instance. Accounts on the European instance use
// https://certcentral.digicert.eu/services/v2/.
const DefaultBaseURL = "https://www.digicert.com/services/v2/"

// The DCV methods the brand accepts in Config.DCVMethod.
const (
	// DCVDNSTXT is DigiCert's "dns-txt-token": a TXT record holding
	// DigiCert's random value. DigiCert looks for it at the domain itself
	// and at _dnsauth.<domain>; the brand always publishes at
	// _dnsauth.<domain>, which leaves the domain's own TXT records (SPF,
	// other verifications) alone and is the name a domain owner can CNAME
	// once into a zone the gateway answers (dcv "delegated" method).
	DCVDNSTXT = "dns-txt-token"
	// DCVDNSCNAME is DigiCert's "dns-cname-token": a CNAME from
	// _dnsauth.<domain> to <random value>.dcv.digicert.com. It needs a
	// Publisher that writes into the customer's zone (dcv "dns-provider"):
	// with the "delegated" method _dnsauth.<domain> already is the
	// delegation CNAME and cannot hold a second one.
	DCVDNSCNAME = "dns-cname-token"
	// DCVHTTP is DigiCert's "http-token", which the brand refuses: DigiCert
	// fetches the random value from
	// http://<domain>/.well-known/pki-validation/fileauth.txt on the
	// customer's own web server, a path the gateway cannot write (ACME
	// clients serve only /.well-known/acme-challenge/), and it cannot
	// validate wildcards at all.
	DCVHTTP = "http-token"
)

// cnameTargetSuffix is where DigiCert's dns-cname-token CNAME must point:
// <random value>.dcv.digicert.com.
const cnameTargetSuffix = ".dcv.digicert.com"

// dnsauthLabel prefixes the record name the brand publishes DCV tokens at.
const dnsauthLabel = "_dnsauth."

// Defaults for the optional Config fields.
const (
	defaultMaxNames     = 250 // DigiCert's cap on names in one multi-domain (Flex) order
	defaultDCVPoll      = 15 * time.Second
	defaultReviewPoll   = 10 * time.Minute
	defaultSubmitPoll   = 2 * time.Second
	defaultHTTPTimeout  = 30 * time.Second
	defaultRateLimitRTA = time.Minute
)

// Config configures one DigiCert CertCentral brand. Only APIKey and Product
// are required.
type Config struct {
	// APIKey is the CertCentral API key, sent as the X-DC-DEVKEY header.
	// It is a secret: it never appears in errors or logs.
	APIKey string
	// BaseURL is the Services API root; empty means DefaultBaseURL. Tests
	// point it at digicerttest.
	BaseURL string
	// Product is the DigiCert product name id used in
	// POST order/certificate/{product}: "ssl_basic", "ssl_securesite_pro",
	// "ssl_ev_basic", "ssl_dv_geotrust", ...
	Product string
	// OrganizationID is the CertCentral organization the OV/EV certificate
	// names; 0 leaves organization out of the order (DV products).
	OrganizationID int
	// ValidityDays is the certificate lifetime to order when the request
	// names none (neither NotAfter nor the profile's Validity); 0 means the
	// longest DigiCert issues today (see MaxValidityAt), which also caps
	// it. It is sent as order_validity.days, or as
	// certificate.cert_validity.days when OrderValidityYears is set.
	ValidityDays int
	// OrderValidityYears, when positive, orders a Multi-year Plan of that
	// many years (order_validity.years); each certificate within it still
	// lives at most MaxValidityAt days.
	OrderValidityYears int
	// DCVMethod is DCVDNSTXT (the default) or DCVDNSCNAME. DCVHTTP is
	// refused: see its comment.
	DCVMethod string
	// SignatureHash is the certificate's signature hash; empty means "sha256".
	SignatureHash string
	// SkipApproval asks DigiCert to skip the account's own approval step for
	// new orders and for revocations (it needs an administrator's API key).
	SkipApproval bool
	// PaymentMethod is sent as payment_method ("balance", "profile") when
	// not empty; accounts with a contract need none.
	PaymentMethod string
	// Publisher publishes DigiCert's DCV records. Nil means
	// dcv.Prevalidated: the domains must then be validated in the account
	// already, or orders stay pending until their deadline.
	Publisher dcv.Publisher
	// CAAIdentities are the issuer domains CAA records must allow; empty
	// means ["digicert.com"].
	CAAIdentities []string
	// Wildcard says the product accepts wildcard names. Products whose name
	// contains "wildcard" always do; Flex products (ssl_basic,
	// ssl_securesite_flex) do too, but only when enabled for the account,
	// hence a flag.
	Wildcard bool
	// MaxNames is the most names (common name included) one order may
	// carry; 0 means 250, DigiCert's limit for multi-domain products.
	// Single-name products need 1 (or 2 for the free www name).
	MaxNames int
	// DCVPollInterval is the suggested wait between Polls while DigiCert
	// has yet to see the DCV records; 0 means 15 s.
	DCVPollInterval time.Duration
	// ReviewPollInterval is the suggested wait while the order awaits
	// approval or DigiCert's organization review; 0 means 10 min.
	ReviewPollInterval time.Duration
	// HTTPClient sends the API requests; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives warnings about failures that must not fail an order,
	// such as removing a DCV record; nil discards them.
	Logger *slog.Logger
	// Now is the clock for the validity limits; nil means time.Now.
	Now func() time.Time
}

// Brand is a DigiCert CertCentral product behind the issuer.Issuer contract.
// It holds no per-order state (that lives in tickets), so it is safe for
// concurrent use and any number of gateway instances can share orders.
type Brand struct {
	name    string
	cfg     Config
	base    *url.URL
	client  *http.Client
	log     *slog.Logger
	publish dcv.Publisher
}

var (
	_ issuer.Issuer     = (*Brand)(nil)
	_ issuer.RefRevoker = (*Brand)(nil)
)

// New checks cfg and prepares the brand; it makes no network call.
func New(name string, cfg Config) (*Brand, error) {
	if name == "" {
		return nil, errors.New("digicert: empty brand name")
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("digicert %s: no API key", name)
	}
	if cfg.Product == "" {
		return nil, fmt.Errorf("digicert %s: no product (e.g. ssl_basic, ssl_securesite_pro, ssl_ev_basic)", name)
	}
	if strings.ContainsAny(cfg.Product, "/?#% ") {
		return nil, fmt.Errorf("digicert %s: product %q is not a product name id", name, cfg.Product)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("digicert %s: base URL %q is not an http(s) URL", name, cfg.BaseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		// Relative references resolve against the last slash: without one
		// "order/certificate" would replace "v2".
		base.Path += "/"
	}
	switch cfg.DCVMethod {
	case "":
		cfg.DCVMethod = DCVDNSTXT
	case DCVDNSTXT, DCVDNSCNAME:
	case DCVHTTP, "http-token-dynamic":
		return nil, fmt.Errorf("digicert %s: dcv method %q is not supported: DigiCert fetches its token from "+
			"/.well-known/pki-validation/ on the customer's own server, which the gateway cannot write; use %s or %s",
			name, cfg.DCVMethod, DCVDNSTXT, DCVDNSCNAME)
	default:
		return nil, fmt.Errorf("digicert %s: unknown dcv method %q (want %s or %s)", name, cfg.DCVMethod, DCVDNSTXT, DCVDNSCNAME)
	}
	if cfg.SignatureHash == "" {
		cfg.SignatureHash = "sha256"
	}
	if cfg.ValidityDays < 0 || cfg.OrderValidityYears < 0 || cfg.MaxNames < 0 {
		return nil, fmt.Errorf("digicert %s: negative validity_days, order_validity_years or max_names", name)
	}
	if cfg.MaxNames == 0 {
		cfg.MaxNames = defaultMaxNames
	}
	if len(cfg.CAAIdentities) == 0 {
		cfg.CAAIdentities = []string{"digicert.com"}
	}
	if cfg.DCVPollInterval <= 0 {
		cfg.DCVPollInterval = defaultDCVPoll
	}
	if cfg.ReviewPollInterval <= 0 {
		cfg.ReviewPollInterval = defaultReviewPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Brand{name: name, cfg: cfg, base: base, client: cfg.HTTPClient, log: cfg.Logger, publish: cfg.Publisher}
	if b.client == nil {
		b.client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.publish == nil {
		b.publish = dcv.Prevalidated{}
	}
	return b, nil
}

// Name returns the brand name given to New.
func (b *Brand) Name() string { return b.name }

// Describe reports what the configured product accepts: wildcards for
// wildcard products (or with Config.Wildcard), never IP addresses (the
// DNS-based DCV methods cannot prove an address, and http-token is not
// supported), Config.MaxNames names, and the longest validity DigiCert
// issues today.
func (b *Brand) Describe() issuer.Product {
	return issuer.Product{
		Wildcard:      b.cfg.Wildcard || strings.Contains(b.cfg.Product, "wildcard"),
		IP:            false,
		MaxNames:      b.cfg.MaxNames,
		MaxValidity:   b.maxValidity(),
		CAAIdentities: slices.Clone(b.cfg.CAAIdentities),
	}
}

// maxValidity is the longest validity DigiCert issues today.
func (b *Brand) maxValidity() time.Duration {
	return MaxValidityAt(b.cfg.Now())
}

// SC081MaxDays is the longest TLS certificate validity in days that the
// CA/Browser Forum Baseline Requirements (ballot SC-081) allow for a
// certificate issued at t: 398 before 2026-03-15, 200 from then, 100 from
// 2027-03-15 and 47 from 2029-03-15 (issuer.PublicMaxValidity in days).
func SC081MaxDays(t time.Time) int {
	return int(issuer.PublicMaxValidity(t) / (24 * time.Hour))
}

// MaxValidityAt is the longest validity the brand orders and reports for a
// certificate issued at t: one day less than SC081MaxDays (199, 99, then 46
// days). DigiCert publishes its own caps that way ("199 days" from
// 2026-02-24, "46 days" by 2029), so that a certificate stays within the
// Baseline Requirements however its partial first and last days are
// counted; ordering the SC-081 figure itself risks a refusal.
func MaxValidityAt(t time.Time) time.Duration {
	return time.Duration(SC081MaxDays(t)-1) * 24 * time.Hour
}
