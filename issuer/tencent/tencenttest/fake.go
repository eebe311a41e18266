// Package tencenttest is a local fake of the Tencent Cloud SSL Certificates
// API (version 2019-12-05) for tests of the tencent brand and of anything
// built on it, such as an end-to-end test of the gateway.
//
// The fake is an httptest server that:
//
//   - verifies every request's TC3-HMAC-SHA256 signature with its own
//     implementation of Tencent's documented algorithm (any SignedHeaders
//     list that includes content-type and host), and answers a bad
//     signature with AuthFailure.SignatureFailure, an unknown SecretId with
//     AuthFailure.SecretIdNotFound and a timestamp more than five minutes
//     off with AuthFailure.SignatureExpire;
//   - rejects parameters an action does not have (UnknownParameter), as
//     Tencent does, which catches misspelled fields in the client;
//   - keeps certificates and walks the documented state machine: bought
//     (status 5) → CertificateInfoSubmit → CertificateOrderSubmit (status
//     0, with a random _dnsauth TXT value per name in DvAuthDetail) →
//     issued (status 1, a real certificate for the submitted CSR signed by
//     the fake's CA) once every TXT record is visible in DNS. DNS is
//     queried through a configurable resolver (HOST:PORT) following
//     CNAMEs, so the CNAME-delegation method works. The check runs on
//     CompleteCertificate and, once that was called (or always, for
//     products that validate by themselves, like DNSPod), on every
//     DescribeCertificateDetail. OV/EV certificates also stay in status 0
//     "CA-REVIEWING" until the test calls Approve; Reject fails any
//     certificate (status 2) with a reason;
//   - revokes (RevokeCertificate): a DV certificate goes to status 9 with
//     new DCV values and becomes revoked (10) once they are visible, an
//     OV/EV one waits for a letter (12);
//   - answers with Tencent's error codes for quotas
//     (FailedOperation.ExceedsFreeLimit after Options.Quota purchases,
//     FailedOperation.MainDomainCertificateCountLimit per registered
//     domain), rate limits (LimitExceeded.RateLimitExceeded above
//     Options.RatePerSecond) and anything a test injects with FailNext.
//
// It imports nothing from package tencent, so it checks the brand's wire
// format independently.
package tencenttest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/validation"
)

// Default credentials of a fake that Options leave unset. They are test
// values, valid nowhere else.
const (
	DefaultSecretID  = "AKIDtencenttestEXAMPLE0000000000000"
	DefaultSecretKey = "tencenttestSecretKeyEXAMPLE0000"
)

// Version is the only API version the fake speaks.
const Version = "2019-12-05"

// maxBody bounds a request body; the largest real one is a CSR submission.
const maxBody = 1 << 20

// Product is what the fake knows of a ProductId.
type Product struct {
	// Kind is "DV", "OV" or "EV". OV and EV need Approve before issuance.
	Kind string
	// Wildcard says the product accepts wildcard names.
	Wildcard bool
	// MaxNames is the largest DomainNum; 0 means 1.
	MaxNames int
	// SelfChecking products (DNSPod, WoTrus) check DCV records on their
	// own: CompleteCertificate is refused and every
	// DescribeCertificateDetail checks.
	SelfChecking bool
	// Name is the product's display name (ProductZhName).
	Name string
}

// DefaultProducts are the products a fake sells when Options.Products is
// nil, numbered as Tencent's CreateCertificate reference numbers them.
var DefaultProducts = map[int64]Product{
	11:  {Kind: "DV", MaxNames: 100, Name: "TrustAsia 域名型多域名 SSL 证书"},
	12:  {Kind: "DV", Wildcard: true, Name: "TrustAsia 域名型（DV）通配符"},
	14:  {Kind: "OV", Name: "TrustAsia 企业型（OV）SSL 证书（D3）"},
	15:  {Kind: "OV", MaxNames: 100, Name: "TrustAsia 企业型多域名 （OV）SSL 证书（D3）"},
	16:  {Kind: "EV", Name: "TrustAsia 增强型 （EV）SSL 证书（D3）"},
	42:  {Kind: "DV", Wildcard: true, MaxNames: 100, Name: "TrustAsia-域名型证书（通配符多域名）"},
	48:  {Kind: "DV", SelfChecking: true, Name: "DNSPod-域名型(DV)SSL证书"},
	104: {Kind: "DV", Name: "TrustAsia-域名型(单域名)"},
}

// Options configures a fake. The zero value is usable.
type Options struct {
	// SecretID and SecretKey are the only credentials the fake accepts;
	// empty means DefaultSecretID and DefaultSecretKey.
	SecretID  string
	SecretKey string
	// Resolver is the DNS server (HOST:PORT) the fake queries for DCV
	// records, typically a validationtest.DNSServer; empty means the
	// system's.
	Resolver string
	// Products are the products on sale; nil means DefaultProducts.
	Products map[int64]Product
	// Quota, when positive, is how many certificates CreateCertificate
	// sells; the next purchase fails with FailedOperation.ExceedsFreeLimit.
	Quota int
	// PerDomainLimit, when positive, is how many certificates one
	// registered domain (its last two labels) may be submitted for; the
	// next CertificateInfoSubmit fails with
	// FailedOperation.MainDomainCertificateCountLimit.
	PerDomainLimit int
	// RatePerSecond, when positive, is how many requests the fake answers
	// in one second of its clock; the others get
	// LimitExceeded.RateLimitExceeded.
	RatePerSecond int
	// MaxSkew is how far a request's X-TC-Timestamp may be from the fake's
	// clock; 0 means Tencent's five minutes.
	MaxSkew time.Duration
	// NoPublicKeyInDetail leaves CertificatePublicKey empty in
	// DescribeCertificateDetail, so that clients must use
	// DownloadCertificate.
	NoPublicKeyInDetail bool
	// Validity is the lifetime of issued certificates; 0 means 90 days.
	Validity time.Duration
	// Now is the fake's clock; nil means time.Now.
	Now func() time.Time
}

// Exchange is one API call the fake answered, for tests that compare the
// wire format with recorded fixtures.
type Exchange struct {
	Action   string
	Request  json.RawMessage
	Response json.RawMessage // the whole {"Response": {...}} envelope
}

// Fake is a running fake API. Its methods are safe for concurrent use.
type Fake struct {
	tb       testing.TB
	opts     Options
	srv      *httptest.Server
	ca       *fakeCA
	resolver *validation.Resolver

	mu        sync.Mutex
	certs     map[string]*cert
	order     []string // certificate ids, oldest first
	sold      int
	perDomain map[string]int
	calls     map[string]int
	inject    map[string][]apiError // by action; "" for any action
	exchanges []Exchange
	window    int64 // the second RatePerSecond counts in
	inWindow  int
}

// New starts a fake on a loopback port and stops it when the test ends.
func New(tb testing.TB, opts Options) *Fake {
	tb.Helper()
	if opts.SecretID == "" {
		opts.SecretID = DefaultSecretID
	}
	if opts.SecretKey == "" {
		opts.SecretKey = DefaultSecretKey
	}
	if opts.Products == nil {
		opts.Products = DefaultProducts
	}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = 5 * time.Minute
	}
	if opts.Validity <= 0 {
		opts.Validity = 90 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ca, err := newFakeCA()
	if err != nil {
		tb.Fatalf("tencenttest: %v", err)
	}
	f := &Fake{
		tb:        tb,
		opts:      opts,
		ca:        ca,
		resolver:  validation.NewResolver(opts.Resolver),
		certs:     map[string]*cert{},
		perDomain: map[string]int{},
		calls:     map[string]int{},
		inject:    map[string][]apiError{},
	}
	f.srv = httptest.NewServer(f)
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's endpoint, for the brand's Config.Endpoint.
func (f *Fake) URL() string { return f.srv.URL }

// SecretID returns the credential id the fake accepts.
func (f *Fake) SecretID() string { return f.opts.SecretID }

// SecretKey returns the secret key the fake accepts.
func (f *Fake) SecretKey() string { return f.opts.SecretKey }

// RootPEM is the fake CA's root certificate, to verify issued chains.
func (f *Fake) RootPEM() []byte { return bytes.Clone(f.ca.rootPEM) }

// apiError is an error answer.
type apiError struct {
	Code    string
	Message string
}

// FailNext makes the next call of action (any action when "") fail with
// code and message, once, after the signature check. Calls queue up.
func (f *Fake) FailNext(action, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject[action] = append(f.inject[action], apiError{Code: code, Message: message})
}

// Calls returns how many signed requests for action the fake received
// (answered with success or an API error), "" for all.
func (f *Fake) Calls(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if action == "" {
		n := 0
		for _, c := range f.calls {
			n += c
		}
		return n
	}
	return f.calls[action]
}

// Exchanges returns the calls answered so far, oldest first.
func (f *Fake) Exchanges() []Exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.exchanges)
}

// ServeHTTP answers one API call.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	action := r.Header.Get("X-TC-Action")
	resp, aerr := f.serve(r, action, body)
	var inner map[string]any
	if aerr != nil {
		inner = map[string]any{"Error": map[string]any{"Code": aerr.Code, "Message": aerr.Message}}
	} else {
		inner = resp
	}
	inner["RequestId"] = requestID
	out, err := json.Marshal(map[string]any{"Response": inner})
	if err != nil {
		f.tb.Errorf("tencenttest: encoding %s answer: %v", action, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f.mu.Lock()
	f.exchanges = append(f.exchanges, Exchange{Action: action, Request: json.RawMessage(bytes.Clone(body)), Response: out})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// serve checks the request and runs the action.
func (f *Fake) serve(r *http.Request, action string, body []byte) (map[string]any, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, &apiError{"UnsupportedOperation", "the fake accepts POST / only"}
	}
	if action == "" {
		return nil, &apiError{"MissingParameter", "The request is missing a required parameter `X-TC-Action`."}
	}
	if e := f.verify(r, body); e != nil {
		return nil, e
	}
	if v := r.Header.Get("X-TC-Version"); v != Version {
		return nil, &apiError{"NoSuchVersion", fmt.Sprintf("The requested version `%s` of API `%s` does not exist.", v, action)}
	}
	handler, ok := f.actions()[action]
	if !ok {
		return nil, &apiError{"InvalidAction", fmt.Sprintf("The requested action `%s` does not exist.", action)}
	}

	f.mu.Lock()
	f.calls[action]++
	if f.opts.RatePerSecond > 0 {
		sec := f.opts.Now().Unix()
		if sec != f.window {
			f.window, f.inWindow = sec, 0
		}
		f.inWindow++
		if f.inWindow > f.opts.RatePerSecond {
			f.mu.Unlock()
			return nil, &apiError{"LimitExceeded.RateLimitExceeded", "Your current request rate exceeds the limit. Please try again later."}
		}
	}
	for _, key := range []string{action, ""} {
		if q := f.inject[key]; len(q) > 0 {
			f.inject[key] = q[1:]
			f.mu.Unlock()
			return nil, &q[0]
		}
	}
	f.mu.Unlock()
	return handler(r.Context(), body)
}

// verify checks the TC3-HMAC-SHA256 signature of r, independently of the
// brand's signer: it rebuilds the canonical request from whatever headers
// SignedHeaders lists.
func (f *Fake) verify(r *http.Request, body []byte) *apiError {
	const algorithm = "TC3-HMAC-SHA256"
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return &apiError{"AuthFailure.InvalidAuthorization", "The `Authorization` header is not a " + algorithm + " signature."}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 4 || scope[3] != "tc3_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return &apiError{"AuthFailure.InvalidAuthorization", "The `Authorization` header lacks Credential, SignedHeaders or Signature."}
	}
	id, date, service := scope[0], scope[1], scope[2]
	if id != f.opts.SecretID {
		return &apiError{"AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct."}
	}
	if service != "ssl" {
		return &apiError{"AuthFailure.InvalidAuthorization", fmt.Sprintf("The credential scope names service `%s`, not `ssl`.", service)}
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return &apiError{"MissingParameter", "The request is missing a valid `X-TC-Timestamp`."}
	}
	now := f.opts.Now()
	if skew := now.Sub(time.Unix(ts, 0)); skew > f.opts.MaxSkew || skew < -f.opts.MaxSkew {
		return &apiError{"AuthFailure.SignatureExpire", fmt.Sprintf("Signature expired. Timestamp %d is %s away from the server time %d.", ts, skew.Round(time.Second), now.Unix())}
	}
	if date != time.Unix(ts, 0).UTC().Format("2006-01-02") {
		return &apiError{"AuthFailure.SignatureFailure", "The credential date does not match X-TC-Timestamp."}
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "content-type") || !slices.Contains(signed, "host") || !slices.IsSorted(signed) {
		return &apiError{"AuthFailure.SignatureFailure", "SignedHeaders must be sorted and include content-type and host."}
	}
	var canonHeaders strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canonHeaders.WriteString(h + ":" + strings.ToLower(strings.TrimSpace(v)) + "\n")
	}
	payloadHash := sha256.Sum256(body)
	canonical := "POST\n/\n\n" + canonHeaders.String() + "\n" + fields["SignedHeaders"] + "\n" + hex.EncodeToString(payloadHash[:])
	canonHash := sha256.Sum256([]byte(canonical))
	toSign := algorithm + "\n" + strconv.FormatInt(ts, 10) + "\n" + date + "/" + service + "/tc3_request\n" + hex.EncodeToString(canonHash[:])
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	key := mac(mac(mac([]byte("TC3"+f.opts.SecretKey), date), service), "tc3_request")
	want := mac(key, toSign)
	got, err := hex.DecodeString(fields["Signature"])
	if err != nil || !hmac.Equal(got, want) {
		return &apiError{"AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct."}
	}
	return nil
}

// decode reads an action's parameters, refusing unknown ones.
func decode(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return &apiError{"UnknownParameter", "The parameter " + strings.TrimPrefix(err.Error(), "json: unknown field ") + " is not recognized."}
		}
		return &apiError{"InvalidParameter", "The request body is not valid: " + err.Error()}
	}
	return nil
}

// newRequestID returns a random UUID-shaped request id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// dnsLookup reports whether name has a TXT record with value (or, for
// CNAME records, a CNAME to value), following CNAMEs.
func (f *Fake) dnsLookup(ctx context.Context, name, typ, value string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if typ == "CNAME" {
		rrs, err := f.resolver.Lookup(ctx, name, dnsTypeCNAME)
		if err != nil {
			return false
		}
		for _, rr := range rrs {
			if cnameTarget(rr) == strings.ToLower(strings.TrimSuffix(value, ".")) {
				return true
			}
		}
		return false
	}
	rrs, err := f.resolver.Lookup(ctx, name, dnsTypeTXT)
	if err != nil {
		return false
	}
	return slices.Contains(txtValues(rrs), value)
}

// sortedKeys returns m's keys in order, for stable answers.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
