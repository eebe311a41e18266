// Package digicerttest is a local fake of the DigiCert CertCentral Services
// API v2, for tests of code that orders certificates from DigiCert. It
// speaks the documented JSON, checks the X-DC-DEVKEY header, keeps orders in
// memory and walks DigiCert's order states:
//
//   - An order whose domains are all pre-validated (Options.PrevalidatedDomains)
//     is issued in the POST answer itself (certificate_chain), as DigiCert
//     does for a pre-validated organization with automatic approval.
//   - Otherwise a DV order (a product with "_dv_" in its name) is "pending"
//     with a random value per domain, and is issued by the check-dcv call
//     that finds every domain's value in DNS: a TXT record at
//     _dnsauth.<domain> or at <domain> (dns-txt-token), or a CNAME from
//     _dnsauth.<domain> to <value>.dcv.digicert.com (dns-cname-token),
//     looked up through Options.Resolver, following CNAMEs so that a
//     delegated _dnsauth name works.
//   - OV and EV orders also need the review: they stay "needs_approval"
//     until the test calls Approve (then "pending" until DCV is done, or
//     issued at once) or Reject (then "rejected" with the reason).
//
// Certificates are real X.509, for the CSR's key, signed by a fake
// intermediate under a fake root; pem_all returns leaf, intermediate and
// root. Every exchange is recorded (without headers, so without the API
// key) for fixtures.
//
// Parts of the schema DigiCert does not publish in detail are modeled: an
// order's domains carry "dcv_status" ("pending" or "valid") and
// "dcv_token", a rejection's reason is the request's "processor_comment",
// and a bad key is answered 401 with errors[{code: "invalid_api_key"}].
package digicerttest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/acmegw/acmegw/validation"
)

// BasePath is where the fake serves the API, as DigiCert does.
const BasePath = "/services/v2/"

// DefaultAPIKey is the key the fake accepts when Options.APIKey is empty.
const DefaultAPIKey = "digicerttest-devkey"

// Options configures a fake.
type Options struct {
	// APIKey is the only X-DC-DEVKEY accepted; empty means DefaultAPIKey.
	APIKey string
	// Resolver is the DNS server (HOST:PORT) the fake looks DCV records up
	// at, such as a validationtest.DNSServer; empty means the system's.
	Resolver string
	// PrevalidatedDomains are validated in the fake account already: they
	// and their subdomains need no DCV, and an order made only of them is
	// issued at once, OV and EV included (the organization counts as
	// validated and approval as automatic).
	PrevalidatedDomains []string
	// UnvalidatedOrganizations are organization ids that orders are refused
	// for with organization_not_validated.
	UnvalidatedOrganizations []int
	// OmitDomainTokens leaves dcv_token out of the order info, as for
	// orders whose domains are validated with the order's single random
	// value (PUT order/certificate/{id}/dcv-random-value).
	OmitDomainTokens bool
	// OmitDomains leaves the domains list out of the order info altogether,
	// as DigiCert's published order-info example does; the order's random
	// value then validates every name.
	OmitDomains bool
	// MaxValidityDays is the longest validity accepted; 0 means 199.
	MaxValidityDays int
}

// Exchange is one recorded request and its answer.
type Exchange struct {
	Method string `json:"method"`
	// Path is relative to BasePath, with the query.
	Path    string          `json:"path"`
	Request json.RawMessage `json:"request,omitempty"`
	Status  int             `json:"status"`
	// RetryAfter is the Retry-After header of the answer, if any.
	RetryAfter string `json:"retry_after,omitempty"`
	// Response is the JSON answer; ResponseText an answer that is not JSON
	// (a PEM download).
	Response     json.RawMessage `json:"response,omitempty"`
	ResponseText string          `json:"response_text,omitempty"`
}

// Revocation is a revocation the fake received.
type Revocation struct {
	CertificateID int
	OrderID       int
	Serial        string
	Reason        string
	Comment       string
	// Approved is false when the request awaits an administrator (no
	// skip_approval).
	Approved bool
}

// Order is a snapshot of a fake order, for assertions.
type Order struct {
	ID            int
	CertificateID int
	Product       string
	Status        string
	CommonName    string
	DNSNames      []string
	Organization  int
	Days          int
	DCVMethod     string
	// AlternativeOrderID is the caller's own id for the order.
	AlternativeOrderID string
	// Tokens maps each domain DigiCert validates to its random value.
	Tokens map[string]string
	// Validated lists the domains whose DCV is done.
	Validated []string
	Serial    string
}

// Server is a fake CertCentral. Its methods are safe for concurrent use.
type Server struct {
	srv      *httptest.Server
	opts     Options
	ca       *fakeCA
	resolver *validation.Resolver

	mu          sync.Mutex
	orders      map[int]*order
	nextID      int
	limitN      int
	limitAfter  time.Duration
	exchanges   []Exchange
	revocations []Revocation
}

type order struct {
	id, certID, requestID int
	product               string
	status                string
	approved              bool
	commonName            string
	dnsNames              []string
	csr                   *x509.CertificateRequest
	orgID                 int
	days                  int
	dcvMethod             string
	altID                 string
	domains               []*orderDomain
	orderValue            string
	comment               string
	chain                 []*x509.Certificate // leaf, intermediate, root
	created               time.Time
}

type orderDomain struct {
	id    int
	name  string
	token string
	valid bool
}

// New starts a fake and stops it when the test ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.MaxValidityDays <= 0 {
		opts.MaxValidityDays = 199
	}
	ca, err := newFakeCA()
	if err != nil {
		tb.Fatalf("digicerttest: %v", err)
	}
	s := &Server{opts: opts, ca: ca, orders: map[int]*order{}, nextID: 100000,
		resolver: validation.NewResolver(opts.Resolver)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BasePath+"order/certificate/{product}", s.placeOrder)
	mux.HandleFunc("GET "+BasePath+"order/certificate/{id}", s.orderInfo)
	mux.HandleFunc("GET "+BasePath+"order/certificate", s.listOrders)
	mux.HandleFunc("PUT "+BasePath+"order/certificate/{id}/check-dcv", s.checkDCV)
	mux.HandleFunc("PUT "+BasePath+"order/certificate/{id}/dcv-random-value", s.randomValue)
	mux.HandleFunc("GET "+BasePath+"certificate/download/order/{id}/format/{format}", s.download)
	mux.HandleFunc("PUT "+BasePath+"certificate/{id}/revoke", s.revoke)
	s.srv = httptest.NewServer(s.middleware(mux))
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the API base URL, ending in BasePath, for Config.BaseURL.
func (s *Server) URL() string { return s.srv.URL + BasePath }

// APIKey is the key the fake accepts.
func (s *Server) APIKey() string { return s.opts.APIKey }

// Root is the fake root certificate, the last of every pem_all.
func (s *Server) Root() *x509.Certificate { return s.ca.root }

// Intermediate is the fake intermediate that signs the leaves.
func (s *Server) Intermediate() *x509.Certificate { return s.ca.inter }

// RateLimit answers the next n authenticated requests with 429 and
// Retry-After (whole seconds).
func (s *Server) RateLimit(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitN, s.limitAfter = n, retryAfter
}

// Approve completes the review of an order awaiting approval (OV/EV): it
// becomes "pending" until its domains are validated, or is issued now if
// they are.
func (s *Server) Approve(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return fmt.Errorf("digicerttest: no order %d", id)
	}
	if o.status != "needs_approval" && o.status != "pending" {
		return fmt.Errorf("digicerttest: order %d is %s", id, o.status)
	}
	o.approved = true
	o.status = "pending"
	return s.maybeIssueLocked(o)
}

// Reject ends an open order as "rejected" with reason, as DigiCert's
// validation staff or the account's approver would.
func (s *Server) Reject(id int, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return fmt.Errorf("digicerttest: no order %d", id)
	}
	if o.status != "needs_approval" && o.status != "pending" {
		return fmt.Errorf("digicerttest: order %d is %s", id, o.status)
	}
	o.status, o.comment = "rejected", reason
	return nil
}

// Order returns a snapshot of order id.
func (s *Server) Order(id int) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	out := Order{ID: o.id, CertificateID: o.certID, Product: o.product, Status: o.status, CommonName: o.commonName,
		DNSNames: slices.Clone(o.dnsNames), Organization: o.orgID, Days: o.days, DCVMethod: o.dcvMethod,
		AlternativeOrderID: o.altID, Tokens: map[string]string{}}
	for _, d := range o.domains {
		out.Tokens[d.name] = d.token
		if d.valid {
			out.Validated = append(out.Validated, d.name)
		}
	}
	if len(o.chain) > 0 {
		out.Serial = serialHex(o.chain[0])
	}
	return out, true
}

// Orders returns the ids of all orders, oldest first.
func (s *Server) Orders() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id := range s.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Exchanges returns the recorded requests and answers, oldest first.
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanges)
}

// Revocations returns the revocations received, oldest first.
func (s *Server) Revocations() []Revocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revocations)
}

// recorder keeps the answer for the exchange log.
type recorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, p...)
	return r.ResponseWriter.Write(p)
}

// middleware records the exchange, checks the API key and applies the rate
// limit before any handler runs.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec := &recorder{ResponseWriter: w}
		defer func() {
			ex := Exchange{Method: r.Method, Path: strings.TrimPrefix(r.URL.RequestURI(), BasePath),
				Status: rec.status, RetryAfter: rec.Header().Get("Retry-After")}
			if len(body) > 0 {
				ex.Request = compact(body)
			}
			if json.Valid(rec.body) && len(rec.body) > 0 {
				ex.Response = compact(rec.body)
			} else if len(rec.body) > 0 {
				ex.ResponseText = string(rec.body)
			}
			s.mu.Lock()
			s.exchanges = append(s.exchanges, ex)
			s.mu.Unlock()
		}()
		switch key := r.Header.Get("X-DC-DEVKEY"); {
		case key == "":
			writeErrors(rec, http.StatusUnauthorized, "missing_api_key", "The X-DC-DEVKEY header is missing.")
			return
		case key != s.opts.APIKey:
			writeErrors(rec, http.StatusUnauthorized, "invalid_api_key", "The API key is invalid, expired or revoked.")
			return
		}
		s.mu.Lock()
		limited, after := s.limitN > 0, s.limitAfter
		if limited {
			s.limitN--
		}
		s.mu.Unlock()
		if limited {
			rec.Header().Set("Retry-After", strconv.Itoa(int(after.Seconds())))
			writeErrors(rec, http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests; slow down.")
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func compact(b []byte) json.RawMessage {
	var out strings.Builder
	var v any
	if json.Unmarshal(b, &v) != nil {
		return json.RawMessage(b)
	}
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return json.RawMessage(strings.TrimSpace(out.String()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeErrors(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string][]apiError{"errors": {{Code: code, Message: message}}})
}

// The request body of POST order/certificate/{product}.
type orderRequest struct {
	Certificate struct {
		CommonName    string   `json:"common_name"`
		DNSNames      []string `json:"dns_names"`
		CSR           string   `json:"csr"`
		SignatureHash string   `json:"signature_hash"`
		CertValidity  *struct {
			Days int `json:"days"`
		} `json:"cert_validity"`
	} `json:"certificate"`
	Organization *struct {
		ID int `json:"id"`
	} `json:"organization"`
	OrderValidity *struct {
		Days  int `json:"days"`
		Years int `json:"years"`
	} `json:"order_validity"`
	DCVMethod          string `json:"dcv_method"`
	SkipApproval       bool   `json:"skip_approval"`
	AlternativeOrderID string `json:"alternative_order_id"`
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validName checks a DNS name as DigiCert would: LDH labels, at least two,
// a wildcard only as the whole leftmost label.
func validName(n string, wildcardOK bool) error {
	if strings.HasPrefix(n, "*.") {
		if !wildcardOK {
			return fmt.Errorf("%s: this product does not allow wildcard domains", n)
		}
		n = n[2:]
	}
	labels := strings.Split(n, ".")
	if len(n) > 253 || len(labels) < 2 {
		return fmt.Errorf("%s is not a valid domain name", n)
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("%s is not a valid domain name", n)
		}
	}
	return nil
}

func isDV(product string) bool { return strings.Contains(product, "_dv_") }
func isEV(product string) bool { return strings.Contains(product, "_ev_") }

// wildcardProduct: wildcard products, and the Flex products that allow any
// mix of names; never EV.
func wildcardProduct(product string) bool {
	if isEV(product) {
		return false
	}
	return strings.Contains(product, "wildcard") || strings.Contains(product, "flex") ||
		product == "ssl_basic" || product == "ssl_securesite_pro"
}

func (s *Server) placeOrder(w http.ResponseWriter, r *http.Request) {
	product := r.PathValue("product")
	var req orderRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErrors(w, http.StatusBadRequest, "invalid_json", "The request body is not valid JSON.")
		return
	}
	cn := strings.ToLower(strings.TrimSpace(req.Certificate.CommonName))
	if cn == "" {
		writeErrors(w, http.StatusBadRequest, "missing_param", "certificate.common_name is required.")
		return
	}
	blk, _ := pem.Decode([]byte(req.Certificate.CSR))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		writeErrors(w, http.StatusBadRequest, "invalid_csr", "The CSR is not a PEM certificate request.")
		return
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "invalid_csr", "The CSR is invalid: "+err.Error())
		return
	}
	switch req.Certificate.SignatureHash {
	case "sha256", "sha384", "sha512":
	default:
		writeErrors(w, http.StatusBadRequest, "invalid_signature_hash", "signature_hash must be sha256, sha384 or sha512.")
		return
	}
	names := []string{cn}
	for _, n := range req.Certificate.DNSNames {
		n = strings.ToLower(strings.TrimSpace(n))
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if err := validName(n, wildcardProduct(product)); err != nil {
			writeErrors(w, http.StatusBadRequest, "invalid_dns_name", err.Error())
			return
		}
	}
	orgID := 0
	if req.Organization != nil {
		orgID = req.Organization.ID
	}
	if !isDV(product) && orgID == 0 {
		writeErrors(w, http.StatusBadRequest, "missing_param", "organization.id is required for OV and EV products.")
		return
	}
	if slices.Contains(s.opts.UnvalidatedOrganizations, orgID) {
		writeErrors(w, http.StatusBadRequest, "organization_not_validated",
			fmt.Sprintf("Organization %d is not validated for %s certificates.", orgID, strings.ToUpper(validationType(product))))
		return
	}
	days := 0
	switch {
	case req.Certificate.CertValidity != nil && req.Certificate.CertValidity.Days > 0:
		days = req.Certificate.CertValidity.Days
	case req.OrderValidity != nil && req.OrderValidity.Days > 0:
		days = req.OrderValidity.Days
	case req.OrderValidity != nil && req.OrderValidity.Years > 0:
		days = s.opts.MaxValidityDays
	}
	if days <= 0 || days > s.opts.MaxValidityDays {
		writeErrors(w, http.StatusBadRequest, "invalid_validity",
			fmt.Sprintf("The certificate validity must be between 1 and %d days.", s.opts.MaxValidityDays))
		return
	}
	method := req.DCVMethod
	if method == "" {
		method = "email"
	}
	switch method {
	case "email", "dns-txt-token", "dns-cname-token", "http-token":
	default:
		writeErrors(w, http.StatusBadRequest, "invalid_dcv_method", "Unknown dcv_method "+method+".")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	o := &order{id: s.nextID, certID: s.nextID + 500000, requestID: s.nextID + 900000, product: product,
		commonName: cn, dnsNames: names[1:], csr: csr, orgID: orgID, days: days, dcvMethod: method,
		altID: req.AlternativeOrderID, created: time.Now()}
	allValid := true
	for i, n := range names {
		n = strings.TrimPrefix(n, "*.")
		if slices.ContainsFunc(o.domains, func(d *orderDomain) bool { return d.name == n }) {
			continue
		}
		d := &orderDomain{id: o.id*10 + i, name: n, token: randomValue(), valid: s.prevalidated(n)}
		allValid = allValid && d.valid
		o.domains = append(o.domains, d)
	}
	// DV needs no review; a pre-validated organization and domains are
	// approved automatically.
	o.approved = isDV(product) || allValid
	o.status = "pending"
	if !o.approved {
		o.status = "needs_approval"
	}
	if err := s.maybeIssueLocked(o); err != nil {
		writeErrors(w, http.StatusInternalServerError, "internal_error", err.Error())
		return
	}
	s.orders[o.id] = o

	resp := map[string]any{
		"id":             o.id,
		"certificate_id": o.certID,
		"requests":       []map[string]any{{"id": o.requestID, "status": requestStatus(o)}},
	}
	var doms []map[string]any
	for _, d := range o.domains {
		doms = append(doms, map[string]any{"id": d.id, "name": d.name,
			"dcv_token": map[string]any{"token": d.token, "status": dcvStatus(d), "expiration_date": expiry(o)}})
	}
	resp["domains"] = doms
	if o.status == "issued" {
		var chain []map[string]string
		for _, c := range o.chain {
			chain = append(chain, map[string]string{"subject_common_name": c.Subject.CommonName, "pem": pemOf(c)})
		}
		resp["certificate_chain"] = chain
	}
	writeJSON(w, http.StatusCreated, resp)
}

func validationType(product string) string {
	switch {
	case isDV(product):
		return "dv"
	case isEV(product):
		return "ev"
	}
	return "ov"
}

func requestStatus(o *order) string {
	switch {
	case o.status == "rejected":
		return "rejected"
	case o.approved:
		return "approved"
	}
	return "pending"
}

func dcvStatus(d *orderDomain) string {
	if d.valid {
		return "valid"
	}
	return "pending"
}

// expiry is when a random value stops being usable: 30 days, as the
// Baseline Requirements allow.
func expiry(o *order) string {
	return o.created.Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
}

func (s *Server) prevalidated(name string) bool {
	for _, p := range s.opts.PrevalidatedDomains {
		p = strings.ToLower(strings.TrimSuffix(p, "."))
		if name == p || strings.HasSuffix(name, "."+p) {
			return true
		}
	}
	return false
}

// maybeIssueLocked issues o when it is approved and all its domains are
// validated.
func (s *Server) maybeIssueLocked(o *order) error {
	if !o.approved || o.status != "pending" {
		return nil
	}
	for _, d := range o.domains {
		if !d.valid {
			return nil
		}
	}
	org := ""
	if !isDV(o.product) {
		org = fmt.Sprintf("Fake Organization %d", o.orgID)
	}
	leaf, err := s.ca.sign(o.csr, o.commonName, append([]string{o.commonName}, o.dnsNames...), org, o.days)
	if err != nil {
		return fmt.Errorf("signing order %d: %w", o.id, err)
	}
	o.chain = []*x509.Certificate{leaf, s.ca.inter, s.ca.root}
	o.status = "issued"
	return nil
}

func (s *Server) lookupOrder(w http.ResponseWriter, r *http.Request) *order {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeErrors(w, http.StatusNotFound, "not_found", "No order "+r.PathValue("id")+".")
		return nil
	}
	o, ok := s.orders[id]
	if !ok {
		writeErrors(w, http.StatusNotFound, "not_found", fmt.Sprintf("Order %d was not found.", id))
		return nil
	}
	return o
}

// info is the order as GET order/certificate/{id} shows it.
func (s *Server) info(o *order) map[string]any {
	cert := map[string]any{"id": o.certID, "common_name": o.commonName, "dns_names": append([]string{o.commonName}, o.dnsNames...),
		"signature_hash": "sha256"}
	if len(o.chain) > 0 {
		cert["serial_number"] = serialHex(o.chain[0])
		cert["valid_from"] = o.chain[0].NotBefore.UTC().Format("2006-01-02")
		cert["valid_till"] = o.chain[0].NotAfter.UTC().Format("2006-01-02")
	}
	var doms []map[string]any
	for _, d := range o.domains {
		m := map[string]any{"id": d.id, "name": d.name, "dcv_status": dcvStatus(d)}
		if !s.opts.OmitDomainTokens && !d.valid {
			m["dcv_token"] = map[string]any{"token": d.token, "status": "pending", "expiration_date": expiry(o)}
		}
		doms = append(doms, m)
	}
	req := map[string]any{"id": o.requestID, "status": requestStatus(o)}
	if o.comment != "" {
		req["processor_comment"] = o.comment
	}
	out := map[string]any{
		"id":           o.id,
		"status":       o.status,
		"dcv_method":   o.dcvMethod,
		"product":      map[string]any{"name_id": o.product, "validation_type": validationType(o.product)},
		"certificate":  cert,
		"requests":     []map[string]any{req},
		"date_created": o.created.UTC().Format(time.RFC3339),
	}
	if !s.opts.OmitDomains {
		out["domains"] = doms
	}
	if o.orgID != 0 {
		out["organization"] = map[string]any{"id": o.orgID}
	}
	if o.altID != "" {
		out["alternative_order_id"] = o.altID
	}
	return out
}

func (s *Server) orderInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.lookupOrder(w, r); o != nil {
		writeJSON(w, http.StatusOK, s.info(o))
	}
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	serial := r.URL.Query().Get("filters[serial_number]")
	status := r.URL.Query().Get("filters[status]")
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id := range s.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	orders := []map[string]any{}
	for _, id := range ids {
		o := s.orders[id]
		if serial != "" && (len(o.chain) == 0 || !strings.EqualFold(strings.TrimLeft(serialHex(o.chain[0]), "0"), strings.TrimLeft(serial, "0"))) {
			continue
		}
		if status != "" && o.status != status {
			continue
		}
		orders = append(orders, s.info(o))
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": orders,
		"page": map[string]int{"total": len(orders), "limit": 1000, "offset": 0}})
}

func (s *Server) randomValue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.lookupOrder(w, r)
	if o == nil {
		return
	}
	if o.orderValue == "" {
		o.orderValue = randomValue()
	}
	writeJSON(w, http.StatusOK, map[string]string{"dcv_random_value": o.orderValue, "expiration_date": expiry(o)})
}

// checkDCV looks the pending domains' records up, marks those found
// validated, and issues the order when that completes it.
func (s *Server) checkDCV(w http.ResponseWriter, r *http.Request) {
	type want struct {
		d      *orderDomain
		values []string
	}
	s.mu.Lock()
	o := s.lookupOrder(w, r)
	if o == nil {
		s.mu.Unlock()
		return
	}
	if o.status != "pending" && o.status != "needs_approval" {
		s.mu.Unlock()
		writeErrors(w, http.StatusBadRequest, "invalid_order_status", fmt.Sprintf("Order %d is %s, not awaiting DCV.", o.id, o.status))
		return
	}
	method := o.dcvMethod
	var todo []want
	for _, d := range o.domains {
		if !d.valid {
			vals := []string{d.token}
			if o.orderValue != "" {
				vals = append(vals, o.orderValue)
			}
			todo = append(todo, want{d, vals})
		}
	}
	s.mu.Unlock()

	// DNS is looked up without the lock: a slow resolver must not stall
	// the other requests.
	found := map[*orderDomain]bool{}
	for _, t := range todo {
		found[t.d] = s.dcvFound(r.Context(), method, t.d.name, t.values)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for d, ok := range found {
		if ok {
			d.valid = true
		}
	}
	if err := s.maybeIssueLocked(o); err != nil {
		writeErrors(w, http.StatusInternalServerError, "internal_error", err.Error())
		return
	}
	var vals []map[string]string
	all := true
	for _, d := range o.domains {
		st := "pending"
		if d.valid {
			st = "approved"
		} else {
			all = false
		}
		vals = append(vals, map[string]string{"dns_name": d.name, "status": st})
	}
	dcv := "pending"
	if all {
		dcv = "valid"
	}
	writeJSON(w, http.StatusOK, map[string]any{"order_status": o.status, "certificate_id": o.certID,
		"dcv_status": dcv, "dns_name_validations": vals})
}

// dcvFound looks for one of values where method puts it.
func (s *Server) dcvFound(ctx context.Context, method, name string, values []string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch method {
	case "dns-txt-token":
		for _, at := range []string{"_dnsauth." + name, name} {
			txts, err := s.resolver.LookupTXT(ctx, at)
			if err != nil {
				continue
			}
			for _, t := range txts {
				if slices.Contains(values, strings.TrimSpace(t)) {
					return true
				}
			}
		}
	case "dns-cname-token":
		rrs, err := s.resolver.Lookup(ctx, "_dnsauth."+name, dns.TypeCNAME)
		if err != nil {
			return false
		}
		for _, rr := range rrs {
			c, ok := rr.(*dns.CNAME)
			if !ok {
				continue
			}
			target := strings.ToLower(strings.TrimSuffix(c.Target, "."))
			for _, v := range values {
				if target == strings.ToLower(v)+".dcv.digicert.com" {
					return true
				}
			}
		}
	}
	// email and http-token cannot be satisfied against the fake.
	return false
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.lookupOrder(w, r)
	if o == nil {
		return
	}
	if len(o.chain) == 0 {
		writeErrors(w, http.StatusBadRequest, "cert_unavailable_processing",
			"Unable to download certificate, the certificate has not yet been issued.")
		return
	}
	var certs []*x509.Certificate
	switch r.PathValue("format") {
	case "pem_all":
		certs = o.chain
	case "pem_noroot":
		certs = o.chain[:2]
	default:
		writeErrors(w, http.StatusBadRequest, "invalid_format", "Unknown format "+r.PathValue("format")+".")
		return
	}
	var out strings.Builder
	for _, c := range certs {
		out.WriteString(pemOf(c))
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, out.String())
}

var revocationReasons = []string{"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation"}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason       string `json:"revocation_reason"`
		Comment      string `json:"comment"`
		SkipApproval bool   `json:"skip_approval"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil && err != io.EOF {
		writeErrors(w, http.StatusBadRequest, "invalid_json", "The request body is not valid JSON.")
		return
	}
	if req.Reason == "" {
		req.Reason = "unspecified"
	}
	if !slices.Contains(revocationReasons, req.Reason) {
		writeErrors(w, http.StatusBadRequest, "invalid_revocation_reason", "Unknown revocation_reason "+req.Reason+".")
		return
	}
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	defer s.mu.Unlock()
	var o *order
	for _, cand := range s.orders {
		if cand.certID == id {
			o = cand
		}
	}
	if o == nil || len(o.chain) == 0 {
		writeErrors(w, http.StatusNotFound, "not_found", fmt.Sprintf("Certificate %d was not found.", id))
		return
	}
	s.revocations = append(s.revocations, Revocation{CertificateID: id, OrderID: o.id, Serial: serialHex(o.chain[0]),
		Reason: req.Reason, Comment: req.Comment, Approved: req.SkipApproval})
	if req.SkipApproval {
		o.status = "revoked"
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.nextID++
	writeJSON(w, http.StatusCreated, map[string]any{"id": s.nextID + 900000, "type": "revoke", "status": "pending"})
}

// randomValue is a DCV random value: 32 characters of [0-9a-z], as
// DigiCert's tokens look.
func randomValue() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// serialHex is the serial as DigiCert shows it: upper-case hex, even length.
func serialHex(c *x509.Certificate) string {
	h := strings.ToUpper(c.SerialNumber.Text(16))
	if len(h)%2 == 1 {
		h = "0" + h
	}
	return h
}
