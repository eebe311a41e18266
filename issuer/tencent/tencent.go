// Package tencent is a brand backed by Tencent Cloud SSL Certificates (API
// version 2019-12-05): the paid DV, OV and EV products Tencent resells
// (TrustAsia, GeoTrust, SecureSite/DigiCert, GlobalSign, WoTrus, DNSPod,
// CFCA, Rapid), each ordered with the ACME client's own CSR.
//
// The flow behind the issuer.Issuer contract:
//
//   - Submit buys a certificate (CreateCertificate, ProductId from the
//     configuration), submits the CSR and the names (CertificateInfoSubmit
//     with GenCsrType "parse" and VerifyType "DNS"), and sends the order
//     to the CA (CertificateOrderSubmit). It answers with a ticket.
//   - Poll reads the certificate (DescribeCertificateDetail). While the CA
//     validates the domains it publishes the TXT (or CNAME) records Tencent
//     hands out in DvAuthDetail through the configured dcv.Publisher, then
//     asks Tencent to check them (CompleteCertificate; DNSPod and WoTrus
//     products check by themselves). Once issued it takes the PEM chain
//     from the detail (or DownloadCertificate), removes the records, and
//     labels the certificate with its serial number for Revoke. A failed,
//     expired, cancelled or revoked certificate is a permanent
//     *issuer.Error carrying Tencent's reason.
//   - Revoke finds the Tencent certificate for an x509 certificate
//     (DescribeCertificates) and revokes it (RevokeCertificate),
//     publishing the DCV records Tencent asks for to confirm a DV
//     revocation. RevokeRef does the same without the search, given the
//     CertificateId the brand returned as the issued Result's Ref.
//
// The ticket is the only state between calls (the gateway stores it with
// the issuance job): the Tencent CertificateId, the step reached, the
// names and key the certificate must carry, and the DCV records published
// so far. Any gateway instance continues an order after any restart, and
// removes exactly what was published.
//
// A purchase costs money, so the brand never buys twice for one order:
// once CreateCertificate succeeded Submit always answers with a ticket
// (later steps that fail transiently are resumed by Poll), and each
// purchase is tagged with the gateway's order id so that a Submit retried
// after a crash finds it instead of buying again (Config.NoOrderTag).
//
// Requests are signed with TC3-HMAC-SHA256 by internal/tc3, which
// issuer/dcv's DNSPod publisher shares. Package tencenttest is a local fake of the API for
// tests.
package tencent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// Defaults for the optional Config fields.
const (
	defaultPeriod       = 1
	defaultMaxNames     = 1
	defaultPollInterval = 30 * time.Second
	defaultReviewPoll   = 10 * time.Minute
	defaultWaitPoll     = 4 * time.Hour
	defaultRecheck      = 5 * time.Minute
	defaultHTTPTimeout  = 30 * time.Second
	defaultRevokeWait   = 20 * time.Second
	// orderTagKey tags each purchase with the gateway's order id.
	orderTagKey = "acmegw-order"
)

// VerifyTypeDNS is the only domain validation method the brand asks Tencent
// for: a TXT record the gateway can publish (DNS API credential or CNAME
// delegation). DNS_AUTO needs the zone hosted in the same Tencent account,
// and FILE a path on the customer's server the gateway cannot write.
const VerifyTypeDNS = "DNS"

// Config configures one Tencent Cloud SSL product as a brand. SecretID,
// SecretKey and ProductID are required; a DV product also needs
// ContactEmail, an OV/EV product CompanyID or ManagerID.
type Config struct {
	// SecretID and SecretKey are the API key pair (CAM). The key is a
	// secret: it signs requests and never appears in errors or logs.
	SecretID  string
	SecretKey string
	// Endpoint is the API's base URL; empty means DefaultEndpoint. Tests
	// point it at tencenttest.
	Endpoint string
	// Region is sent as X-TC-Region when set; the SSL API needs none.
	Region string
	// ProductID is CreateCertificate's ProductId, the product to buy, e.g.
	// 104 TrustAsia DV single-domain, 12 TrustAsia DV wildcard, 14
	// TrustAsia OV, 48 DNSPod DV (see Tencent's CreateCertificate
	// reference for the full list).
	ProductID int64
	// Period is CreateCertificate's TimeSpan in years; 0 means 1. Multi-year
	// products reissue within the plan; each certificate still lives at
	// most the CA/Browser Forum maximum.
	Period int64
	// AutoVoucher lets Tencent pay with the account's vouchers before its
	// balance.
	AutoVoucher bool
	// CompanyID and ManagerID name the organization and the manager
	// (contact) registered in the Tencent console, for OV/EV products.
	// Either makes CertificateInfoSubmit's CompanyType 2 (company).
	CompanyID string
	ManagerID string
	// ContactEmail is the contact for DV products ordered as CompanyType 1
	// (personal), which Tencent requires.
	ContactEmail string
	// CAType is CertificateInfoSubmit's CaType for DNSPod products
	// ("sectigo" or "digicert"); empty for others.
	CAType string
	// SkipComplete is for products whose CA checks the DCV records by
	// itself (DNSPod and WoTrus): CompleteCertificate is never called.
	SkipComplete bool
	// Wildcard says the product accepts wildcard names.
	Wildcard bool
	// MaxNames is the most names (the common name included) the product
	// takes; 0 means 1 (a single-domain product).
	MaxNames int
	// CAAIdentities are the issuer domains CAA records must allow for the
	// product's CA, e.g. "trustasia.com", "digicert.com", "sectigo.com",
	// "globalsign.com", "wotrus.com".
	CAAIdentities []string
	// MaxValidity, when positive, caps Describe's MaxValidity below the
	// CA/Browser Forum maximum.
	MaxValidity time.Duration
	// Publisher publishes Tencent's DCV records. Nil means
	// dcv.Prevalidated: the domains must be validated in the account
	// already, or orders wait until their deadline.
	Publisher dcv.Publisher
	// PollInterval is the suggested wait between Polls while the CA has yet
	// to see the DCV records or issue; 0 means 30 s.
	PollInterval time.Duration
	// ReviewPollInterval is the wait while the CA reviews an OV/EV
	// organization (StatusMsg *-REVIEWING); 0 means 10 min.
	ReviewPollInterval time.Duration
	// WaitPollInterval is the wait while the order needs a person to act
	// in the Tencent console (status 5/13: more information; 8: the
	// confirmation letter); 0 means 4 h.
	WaitPollInterval time.Duration
	// RecheckInterval is how often CompleteCertificate is called again
	// while the DCV check has not passed; 0 means 5 min.
	RecheckInterval time.Duration
	// RevokeWait bounds how long Revoke waits for Tencent to confirm a DV
	// revocation before leaving its DCV records in place; 0 means 20 s.
	// The caller's context bounds it too.
	RevokeWait time.Duration
	// NoOrderTag stops the brand from tagging purchases with the order id
	// (tag key "acmegw-order"), for keys without tag permissions. Without
	// the tag a Submit retried after a crash between the purchase and the
	// answer can buy a second certificate.
	NoOrderTag bool
	// HTTPClient sends the API requests; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives warnings about failures that must not fail an order,
	// such as removing a DCV record; nil discards them. Secrets are never
	// logged.
	Logger *slog.Logger
	// Now is the clock for request timestamps and validity limits; nil
	// means time.Now.
	Now func() time.Time
}

// Brand is a Tencent Cloud SSL product behind the issuer.Issuer contract.
// It keeps no per-order state (that lives in tickets), so it is safe for
// concurrent use and any number of gateway instances can share orders.
type Brand struct {
	name    string
	cfg     Config
	api     *client
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
		return nil, errors.New("tencent: empty brand name")
	}
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, fmt.Errorf("tencent %s: secret_id and secret_key are required", name)
	}
	if cfg.ProductID <= 0 {
		return nil, fmt.Errorf("tencent %s: product id is required (CreateCertificate ProductId, e.g. 104 for TrustAsia DV)", name)
	}
	if cfg.CompanyID == "" && cfg.ManagerID == "" && cfg.ContactEmail == "" {
		return nil, fmt.Errorf("tencent %s: set contact_email (DV, ordered as a person) or company_id/manager_id (OV/EV)", name)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("tencent %s: endpoint %q is not an http(s) URL without a path", name, cfg.Endpoint)
	}
	if cfg.Period < 0 || cfg.MaxNames < 0 {
		return nil, fmt.Errorf("tencent %s: negative period or max_names", name)
	}
	if cfg.Period == 0 {
		cfg.Period = defaultPeriod
	}
	if cfg.MaxNames == 0 {
		cfg.MaxNames = defaultMaxNames
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	if cfg.ReviewPollInterval <= 0 {
		cfg.ReviewPollInterval = defaultReviewPoll
	}
	if cfg.WaitPollInterval <= 0 {
		cfg.WaitPollInterval = defaultWaitPoll
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = defaultRecheck
	}
	if cfg.RevokeWait <= 0 {
		cfg.RevokeWait = defaultRevokeWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.CAAIdentities = append([]string(nil), cfg.CAAIdentities...)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultHTTPTimeout}
	}
	b := &Brand{
		name: name,
		cfg:  cfg,
		api: &client{
			endpoint:  u.Scheme + "://" + u.Host,
			host:      u.Host,
			region:    cfg.Region,
			secretID:  cfg.SecretID,
			secretKey: cfg.SecretKey,
			http:      hc,
			now:       cfg.Now,
		},
		log:     cfg.Logger,
		publish: cfg.Publisher,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("brand", name)
	if b.publish == nil {
		b.publish = dcv.Prevalidated{}
	}
	return b, nil
}

// Name returns the brand name given to New.
func (b *Brand) Name() string { return b.name }

// Describe reports what the configured product accepts: wildcards when
// Config.Wildcard, never IP addresses (Tencent's products are for domain
// names), Config.MaxNames names, and the longest validity a public CA may
// issue today, capped by Config.MaxValidity.
func (b *Brand) Describe() issuer.Product {
	d := MaxPublicValidity(b.cfg.Now())
	if b.cfg.MaxValidity > 0 {
		d = min(d, b.cfg.MaxValidity)
	}
	return issuer.Product{
		Wildcard:      b.cfg.Wildcard,
		IP:            false,
		MaxNames:      b.cfg.MaxNames,
		MaxValidity:   d,
		CAAIdentities: append([]string(nil), b.cfg.CAAIdentities...),
	}
}

// MaxPublicValidity is the longest lifetime a publicly trusted TLS
// certificate issued at t may have (CA/Browser Forum ballot SC-081); it is
// issuer.PublicMaxValidity.
func MaxPublicValidity(t time.Time) time.Duration { return issuer.PublicMaxValidity(t) }

// isWildcard reports whether name is a wildcard name.
func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }
