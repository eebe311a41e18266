// Package aliyun is the brand for Alibaba Cloud Certificate Management
// Service (CAS, API 2020-04-07, RPC style at cas.aliyuncs.com): certificates
// of the DigiCert, GeoTrust, GlobalSign and CFCA products that Alibaba
// resells, ordered against a purchased resource plan (or the free quota).
//
// The flow, one API call per step so that the issuance job drives it:
//
//   - Submit checks the product's rules (names, wildcard, CSR key and CN),
//     then CreateCertificateForPackageRequest with the CSR, ProductCode,
//     contact and ValidateType DNS. Alibaba's OrderId goes into the ticket.
//   - Poll asks DescribeCertificateState. "payed": wait. "domain_verify":
//     Alibaba wants a DNS record (RecordDomain such as _dnsauth,
//     RecordType TXT or CNAME, RecordValue); the adapter publishes it
//     through the configured dcv.Publisher and keeps it in the ticket, so
//     that it can be removed after a restart. "process": the CA reviews (OV
//     takes days): wait longer. "certificate": the chain; records are
//     removed. "verify_fail": the review said no; records are removed and
//     DeleteCertificateRequest frees the quota the order held.
//   - Revoke finds the order of a certificate (ListUserCertificateOrder by
//     domain, then the serial of each candidate) and calls
//     CancelCertificateForPackageRequest, which revokes and cancels.
//
// Requests are signed with ACS3-HMAC-SHA256 by internal/acs3, which
// issuer/dcv's Alibaba Cloud DNS publisher shares; the Alibaba SDK is not
// used. Package aliyuntest is a local fake of the API for tests.
package aliyun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/dcv"
)

// DefaultEndpoint is the public CAS endpoint (China site and international
// accounts alike; CAS is a global service).
const DefaultEndpoint = "https://cas.aliyuncs.com"

// userAgent names the gateway in Alibaba's request logs.
const userAgent = "acmegw-aliyun"

// Defaults of the Config durations.
const (
	DefaultPollInterval       = 15 * time.Second
	DefaultReviewPollInterval = time.Minute
	DefaultOVReviewInterval   = 10 * time.Minute
	DefaultThrottleRetry      = 5 * time.Second
	// firstPoll is how soon after Submit the job should ask for the
	// order's state: Alibaba hands out the DCV record within seconds.
	firstPoll = 3 * time.Second
)

// Limits of the CAS products.
const (
	// maxNamesPerOrder is Alibaba's limit on the Domain list of one
	// application.
	maxNamesPerOrder = 5
	// freeValidity is the lifetime of the free DV certificates (3 months).
	freeValidity = 90 * 24 * time.Hour
)

// Config configures one Alibaba Cloud CAS brand: one AccessKey and one
// product.
type Config struct {
	// AccessKeyID and AccessKeySecret are a RAM user's AccessKey pair with
	// permission for CAS (AliyunYundunCertFullAccess or a narrower policy
	// allowing the actions this package calls). The secret is never logged.
	AccessKeyID     string
	AccessKeySecret string
	// Endpoint is the API's base URL or host; empty means DefaultEndpoint.
	// A bare host means https. Tests point it at aliyuntest.
	Endpoint string
	// ProductCode is the CAS product every order of this brand buys, e.g.
	// "digicert-free-1-free", "geotrust-dv-1-starter",
	// "geotrust-dv-w-starter", "globalsign-ov-1-personal". "-w-" marks a
	// wildcard product, "free" the free single-name DV product, "-ov-" and
	// "-ev-" products that the CA reviews for days.
	ProductCode string
	// Username, Phone and Email are the applicant contact. Empty fields let
	// Alibaba use the contact most recently added in the CAS console.
	Username string
	Phone    string
	Email    string
	// CompanyName picks the company profile of OV/EV applications; empty
	// means the profile most recently added in the console.
	CompanyName string
	// ValidateType is how Alibaba validates the domains; only "DNS" (the
	// default) is possible, see New.
	ValidateType string
	// Publisher publishes the DNS record Alibaba asks for; nil means
	// dcv.Prevalidated (the domains are validated in the Alibaba account).
	Publisher dcv.Publisher
	// CAAIdentities are the issuer domains CAA records must allow; nil
	// means the defaults of the product's CA (see defaultCAA).
	CAAIdentities []string
	// Wildcard overrides what the product code says about wildcards.
	Wildcard *bool
	// MaxNames overrides the number of names per certificate; 0 means 1 for
	// free products and 5 for the others.
	MaxNames int
	// PollInterval is the RetryAfter while an order waits for payment
	// processing or domain validation; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// ReviewPollInterval is the RetryAfter while the CA reviews; 0 means
	// DefaultOVReviewInterval for OV/EV products, DefaultReviewPollInterval
	// for the others.
	ReviewPollInterval time.Duration
	// ThrottleRetry is the RetryAfter of a throttled call when Alibaba
	// sends no Retry-After (it usually does not); 0 means
	// DefaultThrottleRetry.
	ThrottleRetry time.Duration
	// HTTPClient sends the API calls; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives warnings about cleanup that failed without failing
	// the order (a DCV record left behind); nil discards them.
	Logger *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Issuer is the Alibaba Cloud CAS brand. It keeps no per-order state: the
// ticket carries everything Poll needs, so any instance can poll any order
// and a restart loses nothing. It is safe for concurrent use.
type Issuer struct {
	cfg      Config
	endpoint *url.URL
	http     *http.Client
	pub      dcv.Publisher
	log      *slog.Logger
}

var _ issuer.Issuer = (*Issuer)(nil)

// New checks cfg and returns the brand. It makes no API call: a wrong
// AccessKey shows up, clearly, on the first order.
func New(cfg Config) (*Issuer, error) {
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("aliyun: AccessKeyID and AccessKeySecret are required")
	}
	cfg.ProductCode = strings.TrimSpace(cfg.ProductCode)
	if cfg.ProductCode == "" {
		return nil, errors.New("aliyun: ProductCode is required (e.g. digicert-free-1-free)")
	}
	switch strings.ToUpper(cfg.ValidateType) {
	case "", "DNS":
		cfg.ValidateType = "DNS"
	case "FILE":
		// An ACME client serves only /.well-known/acme-challenge/; the
		// brand's file lives under /.well-known/pki-validation/, which the
		// gateway cannot make any client publish.
		return nil, errors.New("aliyun: ValidateType FILE is not supported: the gateway cannot place Alibaba's /.well-known/pki-validation/ file on the customer's server; use DNS")
	default:
		return nil, fmt.Errorf("aliyun: unknown ValidateType %q; use DNS", cfg.ValidateType)
	}
	if cfg.MaxNames < 0 || cfg.MaxNames > maxNamesPerOrder {
		return nil, fmt.Errorf("aliyun: MaxNames %d: Alibaba takes 1 to %d names per certificate", cfg.MaxNames, maxNamesPerOrder)
	}
	ep := cfg.Endpoint
	if ep == "" {
		ep = DefaultEndpoint
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("aliyun: bad Endpoint %q", cfg.Endpoint)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ReviewPollInterval <= 0 {
		cfg.ReviewPollInterval = DefaultReviewPollInterval
		if isReviewed(cfg.ProductCode) {
			cfg.ReviewPollInterval = DefaultOVReviewInterval
		}
	}
	if cfg.ThrottleRetry <= 0 {
		cfg.ThrottleRetry = DefaultThrottleRetry
	}
	is := &Issuer{cfg: cfg, endpoint: u, http: cfg.HTTPClient, pub: cfg.Publisher, log: cfg.Logger}
	if is.http == nil {
		is.http = &http.Client{Timeout: 30 * time.Second}
	}
	if is.pub == nil {
		is.pub = dcv.Prevalidated{}
	}
	if is.log == nil {
		is.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return is, nil
}

func (is *Issuer) now() time.Time {
	if is.cfg.Now != nil {
		return is.cfg.Now()
	}
	return time.Now()
}

// Describe reports what the product accepts: wildcards per the product code
// ("-w-"), no IP addresses (CAS sells none), up to 5 names (1 for the free
// product), and the longest validity the CA/Browser Forum allows today
// (ballot SC-081), capped at 3 months for the free product.
func (is *Issuer) Describe() issuer.Product {
	validity := maxPublicValidity(is.now())
	if isFree(is.cfg.ProductCode) {
		validity = min(validity, freeValidity)
	}
	caa := is.cfg.CAAIdentities
	if caa == nil {
		caa = defaultCAA(is.cfg.ProductCode)
	}
	return issuer.Product{
		Wildcard:      is.wildcard(),
		IP:            false,
		MaxNames:      is.maxNames(),
		MaxValidity:   validity,
		CAAIdentities: append([]string(nil), caa...),
	}
}

// maxPublicValidity is the longest lifetime a publicly trusted TLS
// certificate may have at t under CA/Browser Forum ballot SC-081.
func maxPublicValidity(t time.Time) time.Duration { return issuer.PublicMaxValidity(t) }

func (is *Issuer) wildcard() bool {
	if is.cfg.Wildcard != nil {
		return *is.cfg.Wildcard
	}
	// Alibaba's codes are vendor-validation-count-edition; the count is "1"
	// for one name per slot and "w" for a wildcard. (Alibaba's reference
	// also calls symantec-dv-1-starter a wildcard product, against its own
	// naming; set Config.Wildcard for such a product.)
	return strings.Contains(is.cfg.ProductCode, "-w-")
}

func (is *Issuer) maxNames() int {
	if is.cfg.MaxNames > 0 {
		return is.cfg.MaxNames
	}
	if isFree(is.cfg.ProductCode) {
		return 1
	}
	return maxNamesPerOrder
}

// isFree reports whether code is a free product: one name, 3 months.
func isFree(code string) bool { return strings.Contains(code, "free") }

// isReviewed reports whether the CA reviews the organisation (OV, EV),
// which takes days rather than minutes.
func isReviewed(code string) bool {
	return strings.Contains(code, "-ov-") || strings.Contains(code, "-ev-")
}

// defaultCAA maps the CA in front of the product code to the issuer domain
// its CAA records must name.
func defaultCAA(code string) []string {
	vendor, _, _ := strings.Cut(code, "-")
	switch vendor {
	case "digicert", "symantec", "geotrust":
		// GeoTrust and the former Symantec brands are issued by DigiCert.
		return []string{"digicert.com"}
	case "globalsign":
		return []string{"globalsign.com"}
	case "cfca":
		return []string{"cfca.com.cn"}
	}
	return nil
}

// warn logs a cleanup problem that does not change the order's outcome.
func (is *Issuer) warn(ctx context.Context, msg string, args ...any) {
	is.log.WarnContext(ctx, "aliyun: "+msg, append([]any{"product", is.cfg.ProductCode}, args...)...)
}
