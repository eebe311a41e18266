package digicert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// userAgent names the gateway to DigiCert, which asks integrations to.
const userAgent = "acmegw-digicert"

// maxResponse bounds what the brand reads of one answer: a pem_all chain or
// an order is a few kilobytes, so anything near this is not DigiCert.
const maxResponse = 4 << 20

// The JSON bodies of the Services API, limited to the fields the brand uses.
// DigiCert documents more; unknown fields are ignored both ways.

// orderRequest is the body of POST order/certificate/{product}.
type orderRequest struct {
	Certificate        certificateRequest `json:"certificate"`
	Organization       *idRef             `json:"organization,omitempty"`
	OrderValidity      validity           `json:"order_validity"`
	DCVMethod          string             `json:"dcv_method"`
	SkipApproval       bool               `json:"skip_approval,omitempty"`
	PaymentMethod      string             `json:"payment_method,omitempty"`
	AlternativeOrderID string             `json:"alternative_order_id,omitempty"`
}

type certificateRequest struct {
	CommonName    string    `json:"common_name"`
	DNSNames      []string  `json:"dns_names,omitempty"`
	CSR           string    `json:"csr"`
	SignatureHash string    `json:"signature_hash"`
	CertValidity  *validity `json:"cert_validity,omitempty"`
}

type idRef struct {
	ID int `json:"id"`
}

type validity struct {
	Days  int `json:"days,omitempty"`
	Years int `json:"years,omitempty"`
}

// orderResponse is the answer to POST order/certificate/{product}.
// CertificateChain is present when DigiCert issued at once (pre-validated
// organization and domains, automatic approval).
type orderResponse struct {
	ID               int         `json:"id"`
	CertificateID    int         `json:"certificate_id"`
	Requests         []request   `json:"requests"`
	Domains          []domain    `json:"domains"`
	DCVRandomValue   string      `json:"dcv_random_value"`
	CertificateChain []chainCert `json:"certificate_chain"`
}

type chainCert struct {
	SubjectCommonName string `json:"subject_common_name"`
	PEM               string `json:"pem"`
}

type request struct {
	ID     int    `json:"id"`
	Status string `json:"status"`
	// Comments are the requester's; ProcessorComment is what the approver
	// or DigiCert's validation staff wrote, the reason of a rejection.
	Comments         string `json:"comments"`
	ProcessorComment string `json:"processor_comment"`
}

// domain is one domain DigiCert validates for an order. Name is what
// DigiCert validates, which may be a parent of the certificate's names
// (DigiCert's default DCV scope is the base domain), never a wildcard.
type domain struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	DCVStatus string    `json:"dcv_status"` // "pending" until DigiCert saw the token, then "valid"
	DCVToken  *dcvToken `json:"dcv_token"`
}

type dcvToken struct {
	Token          string `json:"token"`
	Status         string `json:"status"`
	ExpirationDate string `json:"expiration_date"`
}

// orderInfo is the answer to GET order/certificate/{id}.
type orderInfo struct {
	ID          int       `json:"id"`
	Status      string    `json:"status"`
	DCVMethod   string    `json:"dcv_method"`
	Certificate orderCert `json:"certificate"`
	Domains     []domain  `json:"domains"`
	Requests    []request `json:"requests"`
}

type orderCert struct {
	ID           int      `json:"id"`
	CommonName   string   `json:"common_name"`
	DNSNames     []string `json:"dns_names"`
	SerialNumber string   `json:"serial_number"`
}

// randomValue is the answer to PUT order/certificate/{id}/dcv-random-value:
// one random value that validates every domain of the order.
type randomValue struct {
	DCVRandomValue string `json:"dcv_random_value"`
	ExpirationDate string `json:"expiration_date"`
}

// checkDCVResponse is the answer to PUT order/certificate/{id}/check-dcv.
type checkDCVResponse struct {
	OrderStatus        string `json:"order_status"`
	CertificateID      int    `json:"certificate_id"`
	DCVStatus          string `json:"dcv_status"`
	DNSNameValidations []struct {
		DNSName string `json:"dns_name"`
		Status  string `json:"status"`
	} `json:"dns_name_validations"`
}

// orderList is the answer to GET order/certificate with filters.
type orderList struct {
	Orders []orderInfo `json:"orders"`
}

// revokeRequest is the body of PUT certificate/{id}/revoke.
type revokeRequest struct {
	RevocationReason string `json:"revocation_reason"`
	Comment          string `json:"comment,omitempty"`
	SkipApproval     bool   `json:"skip_approval,omitempty"`
}

// errorBody is how the Services API explains a refusal.
type errorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one entry of DigiCert's errors[]: a machine code such as
// "invalid_dns_name" and a message for people.
type ErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// APIError is an unsuccessful answer of the Services API. It reads as an
// *issuer.Error through errors.As (see As), which is how the issuance job
// tells a refusal from a failure worth retrying.
type APIError struct {
	// Op says what the brand was doing, e.g. "placing the order".
	Op string
	// Method and Path are the request, relative to the base URL.
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Errors are DigiCert's codes and messages, when it sent any.
	Errors []ErrorItem
	// RetryAfter is the Retry-After of a 429 (or 503), 0 if none.
	RetryAfter time.Duration
	// Problem is the issuer.Error the issuance job sees.
	Problem issuer.Error
}

// Error names the operation, the status and DigiCert's explanation; never
// the API key.
func (e *APIError) Error() string {
	return e.Problem.Detail
}

// As fills an *issuer.Error target with Problem.
func (e *APIError) As(target any) bool {
	t, ok := target.(**issuer.Error)
	if ok {
		p := e.Problem
		*t = &p
	}
	return ok
}

// call sends one request to the Services API. body, when not nil, is sent as
// JSON; out, when not nil, receives the JSON answer. The answer is also
// returned as read, for downloads. A non-2xx answer is an *APIError.
func (b *Brand) call(ctx context.Context, op, method, path string, body, out any) ([]byte, error) {
	u, err := b.base.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("digicert %s: %s: bad path %q: %w", b.name, op, path, err)
	}
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("digicert %s: %s: encoding the request: %w", b.name, op, err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("digicert %s: %s: %w", b.name, op, err)
	}
	req.Header.Set("X-DC-DEVKEY", b.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		// The transport's error quotes the URL, never the headers, so the
		// key stays out of it. Network failures are worth retrying.
		return nil, fmt.Errorf("digicert %s: %s: %w", b.name, op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("digicert %s: %s: reading the answer to %s %s: %w", b.name, op, method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, b.apiError(op, method, path, resp, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("digicert %s: %s: decoding the answer to %s %s: %w", b.name, op, method, path, err)
		}
	}
	return data, nil
}

// apiError classifies an unsuccessful answer:
//
//   - 401 and 403: the key is wrong, revoked or lacks permissions. No retry
//     fixes that, and the operator, not the ACME client, must act, hence
//     a permanent serverInternal that says to check the key.
//   - 429 (and 503 with Retry-After): rate limited; retried after DigiCert's
//     Retry-After (a minute when it gives none).
//   - 400, 404, 409, 422 with DigiCert's errors[]: a refusal of what the
//     order asks (invalid_csr, invalid_dns_name, organization_not_validated,
//     ...), permanent, with DigiCert's message.
//   - anything else (5xx, proxies' HTML pages): retried with backoff.
func (b *Brand) apiError(op, method, path string, resp *http.Response, data []byte) *APIError {
	e := &APIError{Op: op, Method: method, Path: path, Status: resp.StatusCode}
	var eb errorBody
	if json.Unmarshal(data, &eb) == nil {
		e.Errors = eb.Errors
	}
	explain := describeErrors(e.Errors)
	prefix := fmt.Sprintf("digicert %s: %s: %s %s: HTTP %d", b.name, op, method, path, resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Problem = issuer.Error{Type: "serverInternal", Permanent: true,
			Detail: prefix + ": check the DigiCert API key (X-DC-DEVKEY) and its permissions" + suffix(explain)}
	case resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""):
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if e.RetryAfter <= 0 {
			e.RetryAfter = defaultRateLimitRTA
		}
		e.Problem = issuer.Error{Type: "rateLimited", RetryAfter: e.RetryAfter,
			Detail: fmt.Sprintf("%s: DigiCert rate limit, retrying in %s%s", prefix, e.RetryAfter, suffix(explain))}
	case len(e.Errors) > 0 && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound ||
		resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusUnprocessableEntity):
		e.Problem = issuer.Error{Type: problemType(e.Errors), Permanent: true,
			Detail: prefix + ": DigiCert refused: " + explain}
	default:
		if explain == "" {
			explain = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		e.Problem = issuer.Error{Type: "serverInternal", Detail: prefix + suffix(explain)}
	}
	return e
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// describeErrors joins DigiCert's errors into one line, "code: message; ...".
func describeErrors(items []ErrorItem) string {
	var parts []string
	for _, it := range items {
		switch {
		case it.Code != "" && it.Message != "":
			parts = append(parts, it.Code+": "+it.Message)
		case it.Code != "":
			parts = append(parts, it.Code)
		case it.Message != "":
			parts = append(parts, it.Message)
		}
	}
	return strings.Join(parts, "; ")
}

// problemType picks the ACME problem type for DigiCert's error codes: the
// ACME client should learn whether its CSR, one of its names, or the
// gateway's account is at fault.
func problemType(items []ErrorItem) string {
	for _, it := range items {
		c := strings.ToLower(it.Code)
		switch {
		case strings.Contains(c, "csr") || strings.Contains(c, "key_size") || strings.Contains(c, "signature_hash") ||
			strings.Contains(c, "common_name"):
			return "badCSR"
		case strings.Contains(c, "caa"):
			return "caa"
		case strings.Contains(c, "dns_name") || strings.Contains(c, "domain") || strings.Contains(c, "wildcard"):
			return "rejectedIdentifier"
		case strings.Contains(c, "organization"):
			return "unauthorized"
		}
	}
	return "serverInternal"
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// transient turns a permanent refusal into one worth retrying, for calls
// whose 4xx does not condemn the order (check-dcv answering before the DNS
// records propagated). Authentication failures stay permanent.
func transient(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) || !ae.Problem.Permanent || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden {
		return err
	}
	c := *ae
	c.Problem.Permanent = false
	return &c
}
