// Package aliyuntest is a local fake of Alibaba Cloud Certificate
// Management Service (CAS, API 2020-04-07) for tests: an httptest server
// that speaks the RPC protocol, checks the ACS3-HMAC-SHA256 signature of
// every request, and walks each certificate application through CAS's
// states as the real service does:
//
//	payed → domain_verify → process → certificate
//	                                 ↘ verify_fail
//
// domain_verify hands out a random TXT value for _dnsauth.<name> and moves on
// once every name's record is visible through the configured DNS resolver
// (CNAMEs followed, so a delegated _dnsauth works). A DV order is then
// issued, a real certificate for the CSR signed by a per-server fake CA; an
// OV/EV order ("-ov-", "-ev-" products) stays in process until the test
// calls Approve, or Reject for verify_fail.
//
// It refuses a bad signature (SignatureDoesNotMatch), an unknown AccessKeyId
// (InvalidAccessKeyId.NotFound), a replayed nonce (SignatureNonceUsed) and a
// date out of the 15-minute window (InvalidTimeStamp.Expired), answers
// Throttling.User while Throttle is in force and QuotaExceeded once a
// product's SetQuota is used up, with Alibaba's error body.
package aliyuntest

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials the fake accepts unless Options says otherwise.
const (
	DefaultAccessKeyID     = "LTAI5tAcmegwFakeKeyId"
	DefaultAccessKeySecret = "acmegw-fake-secret-for-tests-only"
)

// Error codes the fake answers with, as Alibaba's gateway and CAS do.
const (
	CodeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	CodeSignatureNonceUsed    = "SignatureNonceUsed"
	CodeInvalidAccessKeyID    = "InvalidAccessKeyId.NotFound"
	CodeTimestampExpired      = "InvalidTimeStamp.Expired"
	CodeThrottlingUser        = "Throttling.User"
	CodeQuotaExceeded         = "QuotaExceeded"
	// The fake's codes for refusals whose exact CAS code is not published;
	// they name the parameter at fault, as CAS's InvalidParameter.* codes do.
	CodeInvalidCsr     = "InvalidParameter.Csr"
	CodeInvalidDomain  = "InvalidParameter.Domain"
	CodeOrderNotFound  = "InvalidParameter.OrderId"
	CodeInvalidStatus  = "OperationDenied.OrderStatus"
	CodeMissingParam   = "MissingParameter"
	CodeInvalidVersion = "InvalidVersion"
	CodeUnknownAction  = "InvalidAction.NotFound"
)

// Order states, DescribeCertificateState's Type.
const (
	StatePayed        = "payed"
	StateDomainVerify = "domain_verify"
	StateProcess      = "process"
	StateCertificate  = "certificate"
	StateVerifyFail   = "verify_fail"
	// StateRevoked is the fake's own state after
	// CancelCertificateForPackageRequest; Describe answers "unknow" then.
	StateRevoked = "revoked"
)

// Options configures a Server.
type Options struct {
	// AccessKeyID and AccessKeySecret are the one key pair the fake
	// accepts; empty means DefaultAccessKeyID and DefaultAccessKeySecret.
	AccessKeyID     string
	AccessKeySecret string
	// Resolver is the DNS server (HOST:PORT) the DCV check asks; empty
	// means the domains count as validated in the account and orders skip
	// domain_verify.
	Resolver string
	// ClockSkew is how far x-acs-date may be from the fake's clock; 0
	// means 15 minutes, as Alibaba allows.
	ClockSkew time.Duration
}

// Call is one request the fake answered.
type Call struct {
	Action string
	Params url.Values
	Status int
	// Code is the error code of a refusal, "" for success.
	Code     string
	Response []byte
}

// Order is a snapshot of one application.
type Order struct {
	ID           int64
	Product      string
	Names        []string
	State        string
	ValidateType string
	// RecordValue is the TXT value the DCV check looks for at
	// _dnsauth.<name> for every name (a wildcard's without "*.").
	RecordValue  string
	Company      string
	Username     string
	Phone        string
	Email        string
	Approved     bool
	RejectReason string
	Deleted      bool
	Leaf         *x509.Certificate
}

// Server is the fake CAS API.
type Server struct {
	tb   testing.TB
	opts Options
	srv  *httptest.Server
	ca   *fakeCA

	mu       sync.Mutex
	nextID   int64
	orders   map[int64]*order
	nonces   map[string]time.Time
	quota    map[string]int
	used     map[string]int
	throttle int
	calls    []Call
}

type order struct {
	Order
	csr     *x509.CertificateRequest
	chain   []byte
	certID  int64
	created time.Time
}

// NewServer starts a fake on a loopback port and stops it when the test
// ends. Point aliyun.Config.Endpoint at URL.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = DefaultAccessKeyID
	}
	if opts.AccessKeySecret == "" {
		opts.AccessKeySecret = DefaultAccessKeySecret
	}
	if opts.ClockSkew <= 0 {
		opts.ClockSkew = 15 * time.Minute
	}
	ca, err := newFakeCA()
	if err != nil {
		tb.Fatalf("aliyuntest: fake CA: %v", err)
	}
	s := &Server{
		tb: tb, opts: opts, ca: ca,
		// Order ids above 2^32 catch adapters that squeeze them into int32.
		nextID: 20_260_315_000,
		orders: map[int64]*order{},
		nonces: map[string]time.Time{},
		quota:  map[string]int{},
		used:   map[string]int{},
	}
	s.srv = httptest.NewServer(s)
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the endpoint, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// Roots is a pool with the fake CA's root, to verify issued chains.
func (s *Server) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca.root)
	return p
}

// Approve ends the CA review of an OV/EV order in its favour: once its
// domains are validated, the next DescribeCertificateState issues it.
func (s *Server) Approve(orderID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.pendingLocked(orderID)
	if err != nil {
		return err
	}
	o.Approved = true
	return nil
}

// Reject makes the CA refuse an order: the next DescribeCertificateState
// answers verify_fail, carrying reason.
func (s *Server) Reject(orderID int64, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.pendingLocked(orderID)
	if err != nil {
		return err
	}
	o.RejectReason = reason
	return nil
}

func (s *Server) pendingLocked(orderID int64) (*order, error) {
	o := s.orders[orderID]
	if o == nil || o.Deleted {
		return nil, fmt.Errorf("aliyuntest: no order %d", orderID)
	}
	switch o.State {
	case StatePayed, StateDomainVerify, StateProcess:
		return o, nil
	}
	return nil, fmt.Errorf("aliyuntest: order %d is already %s", orderID, o.State)
}

// SetQuota lets product hold at most n applications at a time; the next
// one is refused with QuotaExceeded. DeleteCertificateRequest frees one.
// A negative n removes the limit.
func (s *Server) SetQuota(product string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		delete(s.quota, product)
	} else {
		s.quota[product] = n
	}
}

// Used is how many applications of product hold quota.
func (s *Server) Used(product string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[product]
}

// Throttle makes the next n correctly signed requests fail with
// Throttling.User.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// Calls returns every request answered so far, refusals included.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count is how many requests for action were answered.
func (s *Server) Count(action string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Action == action {
			n++
		}
	}
	return n
}

// Orders returns snapshots of all orders, oldest first.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, snapshot(o))
	}
	slices.SortFunc(out, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Order returns a snapshot of one order.
func (s *Server) Order(id int64) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	return snapshot(o), true
}

func snapshot(o *order) Order {
	c := o.Order
	c.Names = slices.Clone(o.Names)
	return c
}

// answer is one JSON reply.
type answer struct {
	status int
	code   string
	body   any
}

// ServeHTTP implements the RPC endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err == nil {
			for k, vs := range form {
				params[k] = append(params[k], vs...)
			}
		}
	}
	action := r.Header.Get("x-acs-action")
	a := s.handle(r, body, action, params)
	b, _ := json.Marshal(a.body)
	s.mu.Lock()
	s.calls = append(s.calls, Call{Action: action, Params: params, Status: a.status, Code: a.code, Response: b})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
}

func (s *Server) handle(r *http.Request, body []byte, action string, p url.Values) answer {
	_, err := CheckSignature(r, body, func(id string) (string, bool) {
		return s.opts.AccessKeySecret, id == s.opts.AccessKeyID
	})
	if se, ok := errors.AsType[*SignatureError](err); ok {
		return apiError(se.Status, se.Code, se.Message)
	}
	date, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return apiError(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := time.Since(date); d > s.opts.ClockSkew || d < -s.opts.ClockSkew {
		return apiError(400, CodeTimestampExpired, "Specified time stamp or date value is expired.")
	}
	if v := r.Header.Get("x-acs-version"); v != "2020-04-07" {
		return apiError(400, CodeInvalidVersion, fmt.Sprintf("Specified parameter Version %q is not valid.", v))
	}
	nonce := r.Header.Get("x-acs-signature-nonce")
	if nonce == "" {
		return apiError(400, CodeMissingParam+".SignatureNonce", "SignatureNonce is mandatory for this action.")
	}
	s.mu.Lock()
	now := time.Now()
	if _, used := s.nonces[nonce]; used {
		s.mu.Unlock()
		return apiError(400, CodeSignatureNonceUsed, "Specified signature nonce was used already.")
	}
	s.nonces[nonce] = now
	if len(s.nonces) > 10000 {
		for n, t := range s.nonces {
			if now.Sub(t) > 2*s.opts.ClockSkew {
				delete(s.nonces, n)
			}
		}
	}
	if s.throttle > 0 {
		s.throttle--
		s.mu.Unlock()
		return apiError(400, CodeThrottlingUser, "Request was denied due to user flow control.")
	}
	s.mu.Unlock()

	switch action {
	case "CreateCertificateForPackageRequest":
		return s.create(p)
	case "DescribeCertificateState":
		return s.describe(r.Context(), p)
	case "DeleteCertificateRequest":
		return s.deleteOrder(p)
	case "CancelCertificateForPackageRequest":
		return s.cancel(p)
	case "ListUserCertificateOrder":
		return s.list(p)
	}
	return apiError(404, CodeUnknownAction, fmt.Sprintf("Specified api %q is not found, please check your url and method.", action))
}

func apiError(status int, code, msg string) answer {
	return answer{status: status, code: code, body: map[string]any{
		"RequestId": requestID(),
		"HostId":    "cas.aliyuncs.com",
		"Code":      code,
		"Message":   msg,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(code) + "&product=cas",
	}}
}

func ok(body map[string]any) answer {
	body["RequestId"] = requestID()
	return answer{status: 200, body: body}
}

// requestID looks like Alibaba's: an upper-case UUID.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// isReviewed: OV and EV products wait for the CA's organisation review.
func isReviewed(product string) bool {
	return strings.Contains(product, "-ov-") || strings.Contains(product, "-ev-")
}

// create is CreateCertificateForPackageRequest. It applies CAS's documented
// rules: a CSR with an RSA (2048 bits or more) or ECC key and a CN; at most
// 5 names in Domain, not mixing wildcard and plain names, matching the
// product (wildcard products take wildcards only, free ones one name); the
// CN among them. ValidateType is DNS or FILE.
func (s *Server) create(p url.Values) answer {
	product := p.Get("ProductCode")
	if product == "" {
		product = "digicert-free-1-free" // CAS's documented default
	}
	block, _ := pem.Decode([]byte(p.Get("Csr")))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return apiError(400, CodeInvalidCsr, "The CSR is not a PEM certificate request.")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return apiError(400, CodeInvalidCsr, "The CSR cannot be parsed or its signature is invalid.")
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return apiError(400, CodeInvalidCsr, "The RSA key length of the CSR must be at least 2048 bits.")
		}
	case *ecdsa.PublicKey:
	default:
		return apiError(400, CodeInvalidCsr, "The key algorithm of the CSR must be RSA or ECC.")
	}
	cn := csr.Subject.CommonName
	if cn == "" {
		return apiError(400, CodeInvalidCsr, "The CN field of the CSR is required.")
	}
	var names []string
	for n := range strings.SplitSeq(p.Get("Domain"), ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		names = []string{strings.ToLower(cn)}
	}
	if i := slices.Index(names, strings.ToLower(cn)); i < 0 {
		return apiError(400, CodeInvalidDomain, "The CN of the CSR must be one of the domain names.")
	} else if i > 0 {
		// The CN is the certificate's main name.
		names = append([]string{names[i]}, slices.Delete(names, i, i+1)...)
	}
	wild := 0
	for _, n := range names {
		if strings.HasPrefix(n, "*.") {
			wild++
		}
	}
	wildProduct := strings.Contains(product, "-w-")
	switch {
	case len(names) > 5:
		return apiError(400, CodeInvalidDomain, "You can specify a maximum of five domain names.")
	case strings.Contains(product, "free") && len(names) > 1:
		return apiError(400, CodeInvalidDomain, "The free certificate binds one domain name.")
	case wild > 0 && wild < len(names):
		return apiError(400, CodeInvalidDomain, "Single domain names and wildcard domain names cannot be specified together.")
	case wildProduct && wild == 0, !wildProduct && wild > 0:
		return apiError(400, CodeInvalidDomain, "The domain name does not match the certificate specifications of ProductCode.")
	}
	vt := strings.ToUpper(p.Get("ValidateType"))
	if vt == "" {
		vt = "DNS"
	}
	if vt != "DNS" && vt != "FILE" {
		return apiError(400, "InvalidParameter.ValidateType", "ValidateType must be DNS or FILE.")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if q, limited := s.quota[product]; limited && s.used[product] >= q {
		return apiError(400, CodeQuotaExceeded, fmt.Sprintf("The certificate resource plan quota of %s is used up.", product))
	}
	s.used[product]++
	s.nextID++
	o := &order{Order: Order{
		ID: s.nextID, Product: product, Names: names, State: StatePayed, ValidateType: vt,
		RecordValue: recordValue(),
		Company:     p.Get("CompanyName"), Username: p.Get("Username"), Phone: p.Get("Phone"), Email: p.Get("Email"),
	}, csr: csr, created: time.Now()}
	s.orders[o.ID] = o
	return ok(map[string]any{"OrderId": o.ID})
}

// recordValue looks like CAS's: a timestamp, then random lower-case
// letters and digits.
func recordValue() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [44]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return time.Now().UTC().Format("20060102150405") + "000" + string(b[:])
}

func (s *Server) orderParam(p url.Values) (*order, *answer) {
	raw := p.Get("OrderId")
	if raw == "" {
		a := apiError(400, CodeMissingParam+".OrderId", "OrderId is mandatory for this action.")
		return nil, &a
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	o := s.orders[id]
	if err != nil || o == nil || o.Deleted {
		a := apiError(400, CodeOrderNotFound, fmt.Sprintf("The order %s does not exist.", raw))
		return nil, &a
	}
	return o, nil
}

// describe is DescribeCertificateState, which also moves the order on.
func (s *Server) describe(ctx context.Context, p url.Values) answer {
	s.mu.Lock()
	o, bad := s.orderParam(p)
	if bad != nil {
		s.mu.Unlock()
		return *bad
	}
	if o.RejectReason != "" && (o.State == StatePayed || o.State == StateDomainVerify || o.State == StateProcess) {
		o.State = StateVerifyFail
	}
	switch o.State {
	case StatePayed:
		if s.opts.Resolver == "" {
			o.State = StateProcess
		} else {
			o.State = StateDomainVerify
		}
		s.mu.Unlock()
		return ok(map[string]any{"Type": StatePayed})
	case StateDomainVerify:
		if o.ValidateType == "FILE" {
			s.mu.Unlock()
			// The fake serves no files: a FILE order waits forever.
			return ok(map[string]any{"Type": StateDomainVerify, "ValidateType": "FILE",
				"Domain": strings.TrimPrefix(o.Names[0], "*."), "Uri": "/.well-known/pki-validation/fileauth.txt", "Content": o.RecordValue})
		}
		names, value, id := slices.Clone(o.Names), o.RecordValue, o.ID
		s.mu.Unlock()
		// The DNS check runs without the lock: it may take seconds.
		visible := s.dcvVisible(ctx, names, value)
		s.mu.Lock()
		defer s.mu.Unlock()
		if o = s.orders[id]; o == nil || o.Deleted {
			return apiError(400, CodeOrderNotFound, fmt.Sprintf("The order %d does not exist.", id))
		}
		if visible && o.State == StateDomainVerify {
			o.State = StateProcess
		}
		if o.State != StateDomainVerify {
			return ok(map[string]any{"Type": o.State})
		}
		return ok(map[string]any{"Type": StateDomainVerify, "ValidateType": "DNS",
			"RecordType": "TXT", "RecordDomain": "_dnsauth", "RecordValue": value})
	case StateProcess:
		if isReviewed(o.Product) && !o.Approved {
			s.mu.Unlock()
			return ok(map[string]any{"Type": StateProcess})
		}
		if err := s.issueLocked(o); err != nil {
			s.mu.Unlock()
			return apiError(500, "InternalError", err.Error())
		}
	}
	defer s.mu.Unlock()
	switch o.State {
	case StateCertificate:
		return ok(map[string]any{"Type": StateCertificate, "Certificate": string(o.chain), "CertId": strconv.FormatInt(o.certID, 10)})
	case StateVerifyFail:
		// Reason is the fake's addition: CAS's published model has none.
		return ok(map[string]any{"Type": StateVerifyFail, "Reason": o.RejectReason})
	}
	return ok(map[string]any{"Type": "unknow"})
}

func (s *Server) issueLocked(o *order) error {
	validity := 180 * 24 * time.Hour
	if strings.Contains(o.Product, "free") {
		validity = 90 * 24 * time.Hour
	}
	org := ""
	if isReviewed(o.Product) {
		org = o.Company
		if org == "" {
			org = "Example Company"
		}
	}
	chain, leaf, err := s.ca.issue(o.csr, o.Names, org, validity)
	if err != nil {
		return err
	}
	o.chain, o.Leaf, o.State = chain, leaf, StateCertificate
	o.certID = 10_000_000 + o.ID%10_000_000
	return nil
}

// dcvVisible checks _dnsauth.<name> for every name.
func (s *Server) dcvVisible(ctx context.Context, names []string, value string) bool {
	for _, n := range names {
		txt, err := lookupTXT(ctx, s.opts.Resolver, "_dnsauth."+strings.TrimPrefix(n, "*."))
		if err != nil || !slices.Contains(txt, value) {
			return false
		}
	}
	return true
}

// deleteOrder is DeleteCertificateRequest: it removes a failed application
// and gives its quota back.
func (s *Server) deleteOrder(p url.Values) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, bad := s.orderParam(p)
	if bad != nil {
		return *bad
	}
	if o.State != StateVerifyFail {
		return apiError(400, CodeInvalidStatus, fmt.Sprintf("The order %d is %s; only failed applications can be deleted.", o.ID, o.State))
	}
	o.Deleted = true
	s.used[o.Product]--
	return ok(map[string]any{})
}

// cancel is CancelCertificateForPackageRequest: it revokes an issued
// certificate and cancels its application.
func (s *Server) cancel(p url.Values) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, bad := s.orderParam(p)
	if bad != nil {
		return *bad
	}
	if o.State != StateCertificate {
		return apiError(400, CodeInvalidStatus, fmt.Sprintf("The order %d is %s; only issued certificates can be revoked.", o.ID, o.State))
	}
	o.State = StateRevoked
	return ok(map[string]any{})
}

// list is ListUserCertificateOrder, with OrderType CPACK (applications, the
// default) or CERT (issued certificates), Keyword as a substring of the
// domains, Status and paging.
func (s *Server) list(p url.Values) answer {
	orderType := strings.ToUpper(p.Get("OrderType"))
	if orderType == "" {
		orderType = "CPACK"
	}
	page, size := int64(1), int64(50)
	if v, err := strconv.ParseInt(p.Get("CurrentPage"), 10, 64); err == nil && v > 0 {
		page = v
	}
	if v, err := strconv.ParseInt(p.Get("ShowSize"), 10, 64); err == nil && v > 0 {
		size = v
	}
	keyword := strings.ToLower(p.Get("Keyword"))
	status := strings.ToUpper(p.Get("Status"))

	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.orders))
	for id := range s.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var rows []map[string]any
	for _, id := range ids {
		o := s.orders[id]
		if o.Deleted || (keyword != "" && !strings.Contains(strings.Join(o.Names, ","), keyword)) {
			continue
		}
		st := listStatus(o.State)
		if orderType == "CERT" && o.Leaf == nil {
			continue
		}
		if status != "" && st != status {
			continue
		}
		if orderType == "CERT" {
			rows = append(rows, certRow(o))
		} else {
			rows = append(rows, cpackRow(o, st))
		}
	}
	total := int64(len(rows))
	from := min((page-1)*size, total)
	to := min(from+size, total)
	return ok(map[string]any{
		"TotalCount": total, "CurrentPage": page, "ShowSize": size,
		"CertificateOrderList": rows[from:to],
	})
}

func listStatus(state string) string {
	switch state {
	case StatePayed:
		return "PAYED"
	case StateDomainVerify, StateProcess:
		return "CHECKING"
	case StateVerifyFail:
		return "CHECKED_FAIL"
	case StateCertificate:
		return "ISSUED"
	case StateRevoked:
		return "REVOKED"
	}
	return ""
}

func cpackRow(o *order, status string) map[string]any {
	domainType := "ONE"
	switch wild := strings.HasPrefix(o.Names[0], "*."); {
	case wild && len(o.Names) > 1:
		domainType = "M_WILDCARD"
	case wild:
		domainType = "WILDCARD"
	case len(o.Names) > 1:
		domainType = "MULTIPLE"
	}
	certType := "DV"
	switch {
	case strings.Contains(o.Product, "free"):
		certType = "FREE"
	case isReviewed(o.Product):
		certType = "OV"
	}
	algo := "RSA"
	if _, ok := o.csr.PublicKey.(*ecdsa.PublicKey); ok {
		algo = "ECC"
	}
	row := map[string]any{
		"OrderId": o.ID, "InstanceId": fmt.Sprintf("cas-ivauto-%d", o.ID),
		"Domain": strings.Join(o.Names, ","), "DomainCount": len(o.Names), "DomainType": domainType,
		"ProductCode": o.Product, "CertType": certType, "Algorithm": algo,
		"Status": status, "SourceType": "cpack", "BuyDate": o.created.UnixMilli(),
	}
	if o.Leaf != nil {
		row["CertStartTime"] = o.Leaf.NotBefore.UnixMilli()
		row["CertEndTime"] = o.Leaf.NotAfter.UnixMilli()
	}
	return row
}

func certRow(o *order) map[string]any {
	return map[string]any{
		"CertificateId": o.certID, "InstanceId": fmt.Sprintf("cas-ivauto-%d", o.ID),
		"Name": fmt.Sprintf("cert-%d", o.certID), "CommonName": o.Names[0], "Sans": strings.Join(o.Names, ","),
		"SerialNo": serialHex(o.Leaf.SerialNumber), "Issuer": o.Leaf.Issuer.CommonName,
		"StartDate": o.Leaf.NotBefore.UTC().Format("2006-01-02"), "EndDate": o.Leaf.NotAfter.UTC().Format("2006-01-02"),
		"Expired": false,
	}
}

func serialHex(n *big.Int) string { return fmt.Sprintf("%032x", n) }
