package aliyun

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

	"github.com/acmegw/acmegw/internal/acs3"
	"github.com/acmegw/acmegw/issuer"
)

// apiVersion is the CAS API version every request names in x-acs-version.
const apiVersion = "2020-04-07"

// maxResponseBytes bounds what the adapter reads from one answer: a chain
// is a few kilobytes, a list page a few tens.
const maxResponseBytes = 4 << 20

// apiError is an error answer of the CAS API, the common RPC error shape:
//
//	{"RequestId":"…","HostId":"cas.aliyuncs.com","Code":"Throttling.User",
//	 "Message":"Request was denied due to user flow control.","Recommend":"…"}
type apiError struct {
	Status    int    `json:"-"`
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
	// retryAfter is the Retry-After header, if the answer had one.
	retryAfter time.Duration
}

// Error returns the code, status, message and RequestId (which Alibaba
// support asks for).
func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
	if e.RequestID != "" {
		msg += " [RequestId " + e.RequestID + "]"
	}
	return msg
}

// param is one RPC query parameter, unencoded. It is the adapter's own
// type, not acs3.Param, so that its many call sites can keep short
// {"Name", value} literals (vet wants keyed fields for another package's
// struct); call converts.
type param struct{ key, value string }

// call sends one signed RPC request and decodes a successful answer into
// out. Every failure comes back classified (see classify): an *issuer.Error
// the issuance job can act on, wrapping the transport error or *apiError.
func (is *Issuer) call(ctx context.Context, action string, params []param, out any) error {
	query := make([]acs3.Param, len(params))
	for i, p := range params {
		query[i] = acs3.Param{Key: p.key, Value: p.value}
	}
	rawQuery := acs3.CanonicalQuery(query)
	u := *is.endpoint
	u.Path = "/"
	u.RawQuery = rawQuery
	// RPC-style operations take their parameters in the query string and an
	// empty body, as Alibaba's own SDK sends them; the signature covers
	// the query, so nothing in it can be changed on the way.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return fmt.Errorf("aliyun: %s: building request: %w", action, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	acs3.SignHTTP(req, action, apiVersion, query, nil, is.cfg.AccessKeyID, is.cfg.AccessKeySecret, is.now(), acs3.NewNonce())

	resp, err := is.http.Do(req)
	if err != nil {
		// Network trouble: the issuance job retries with backoff.
		return fmt.Errorf("aliyun: %s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("aliyun: %s: reading answer: %w", action, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode}
		if jerr := json.Unmarshal(body, ae); jerr != nil || ae.Code == "" {
			ae.Code = "HTTP" + strconv.Itoa(resp.StatusCode)
			ae.Message = strings.TrimSpace(string(truncate(body, 200)))
		}
		ae.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), is.now())
		return is.classify(action, ae)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		// A garbled answer is the gateway's or the network's problem, not
		// the order's: retry.
		return fmt.Errorf("aliyun: %s: decoding answer: %w", action, err)
	}
	return nil
}

// Error codes the adapter recognises. Alibaba's API gateway answers every
// product with the same public codes for throttling (Throttling,
// Throttling.User, Throttling.Api), authentication (InvalidAccessKeyId.*,
// SignatureDoesNotMatch, SignatureNonceUsed, InvalidTimeStamp.Expired) and
// server trouble (ServiceUnavailable, InternalError). For an exhausted
// quota Alibaba's public error lists use QuotaExceeded and the
// "<Resource>.OverQuota" family; the CAS reference does not list the code
// its certificate operations use, so any code naming a quota, or a
// resource that is "NotEnough" or "Insufficient", counts as one (see
// isQuotaCode). The fake answers QuotaExceeded.
const (
	codeThrottling       = "Throttling" // and Throttling.User (per account, about 10 calls/s for CAS), Throttling.Api
	codeServiceUnavail   = "ServiceUnavailable"
	codeInternalError    = "InternalError"
	codeSignatureNonce   = "SignatureNonceUsed"
	codeTimestampExpired = "InvalidTimeStamp.Expired"
	codeQuotaExceeded    = "QuotaExceeded"
)

// credentialCodes mean the AccessKey pair itself is wrong, disabled or not
// allowed to use CAS: no retry helps until an operator fixes the
// configuration.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":            true,
	"InvalidAccessKeyId.NotFound":   true,
	"InvalidAccessKeyId.Inactive":   true,
	"SignatureDoesNotMatch":         true,
	"IncompleteSignature":           true,
	"InvalidSecurityToken.Expired":  true,
	"InvalidSecurityToken.Mismatch": true,
	"Forbidden.AccessKeyDisabled":   true,
	"Forbidden.RAM":                 true,
	"NoPermission":                  true,
	"Forbidden":                     true,
}

// isQuotaCode reports whether code says the account's certificate quota (a
// resource plan, or the free-certificate allowance) is used up.
func isQuotaCode(code string) bool {
	if strings.HasPrefix(code, codeThrottling) {
		return false
	}
	lc := strings.ToLower(code)
	return code == codeQuotaExceeded || strings.HasSuffix(code, ".OverQuota") ||
		strings.Contains(lc, "quota") || strings.Contains(lc, "notenough") ||
		strings.Contains(lc, "insufficient")
}

// classify turns an error answer into an *issuer.Error:
//
//   - throttling: transient "rateLimited" with RetryAfter (Retry-After if
//     sent, else Config.ThrottleRetry);
//   - credentials (InvalidAccessKeyId.*, SignatureDoesNotMatch, RAM
//     refusals): permanent "serverInternal", "check the AccessKey
//     configuration";
//   - quota used up: permanent "rateLimited" naming the product;
//   - server errors (5xx, ServiceUnavailable, InternalError), a reused nonce
//     or a clock out of the signature window: transient;
//   - any other 4xx refuses the request for what it asks: permanent, typed
//     "badCSR" or "rejectedIdentifier" when the code names the CSR or the
//     domain.
func (is *Issuer) classify(action string, ae *apiError) error {
	detail := fmt.Sprintf("aliyun %s: %s: %v", is.cfg.ProductCode, action, ae)
	switch {
	case ae.Code == codeThrottling || strings.HasPrefix(ae.Code, codeThrottling+"."):
		ra := ae.retryAfter
		if ra <= 0 {
			ra = is.cfg.ThrottleRetry
		}
		return wrap(&issuer.Error{Type: "rateLimited", Detail: detail + " (throttled by Alibaba Cloud; retrying)", RetryAfter: ra}, ae)
	case credentialCodes[ae.Code]:
		return wrap(&issuer.Error{Type: "serverInternal", Permanent: true,
			Detail: detail + ": check the AccessKey configuration of this brand (AccessKeyId, its secret, and the RAM permissions for CAS)"}, ae)
	case isQuotaCode(ae.Code):
		return wrap(&issuer.Error{Type: "rateLimited", Permanent: true,
			Detail: detail + ": the Alibaba Cloud certificate quota for this product is used up; buy more in the CAS console (applications that fail review are deleted automatically to return theirs)"}, ae)
	case ae.Code == codeSignatureNonce, ae.Code == codeTimestampExpired:
		return wrap(&issuer.Error{Type: "serverInternal",
			Detail: detail + " (check the gateway's clock if this persists)"}, ae)
	case ae.Status >= 500, ae.Code == codeServiceUnavail, ae.Code == codeInternalError,
		strings.HasPrefix(ae.Code, "HTTP"):
		return wrap(&issuer.Error{Type: "serverInternal", Detail: detail}, ae)
	}
	typ := "serverInternal"
	switch lc := strings.ToLower(ae.Code); {
	case strings.Contains(lc, "csr"):
		typ = "badCSR"
	case strings.Contains(lc, "domain"):
		typ = "rejectedIdentifier"
	}
	return wrap(&issuer.Error{Type: typ, Permanent: true, Detail: detail}, ae)
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// truncate keeps error details readable when a proxy answers with a page.
func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(bytes.Clone(b[:n]), "…"...)
}

// brandError is a classified Alibaba error answer: issuer.AsError finds
// the *issuer.Error the issuance job acts on, asAPIError the raw answer.
type brandError struct {
	ie *issuer.Error
	ae *apiError
}

// Error returns the classified detail.
func (e *brandError) Error() string { return e.ie.Error() }

// Unwrap exposes both the classification and the raw answer.
func (e *brandError) Unwrap() []error { return []error{e.ie, e.ae} }

func wrap(ie *issuer.Error, ae *apiError) error { return &brandError{ie: ie, ae: ae} }

// asAPIError returns the Alibaba answer behind err, if there is one.
func asAPIError(err error) (*apiError, bool) {
	var ae *apiError
	ok := errors.As(err, &ae)
	return ae, ok
}
