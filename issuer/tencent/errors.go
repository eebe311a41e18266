package tencent

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// detailPrefix starts every problem detail the brand hands to ACME clients,
// so that they can tell Tencent's answer from the gateway's own checks.
const detailPrefix = "Tencent Cloud: "

// Retry hints for transient answers.
const (
	// rateLimitRetry follows Tencent's per-action limit (about 10-20
	// requests a second): the window is one second.
	rateLimitRetry = time.Second
	// credentialRetry is how soon an order already bought is polled again
	// after Tencent refused the gateway's credentials: long enough not to
	// flood Tencent with doomed calls, short enough that fixing the
	// configuration resumes the order quickly.
	credentialRetry = 5 * time.Minute
)

// phase says where a call happened, which decides how a refusal of the
// gateway's credentials is treated.
type phase int

const (
	// beforePurchase: nothing is bought yet. A refusal is permanent: every
	// order would fail the same way until an operator acts, and clients
	// are better served by a fast, clear failure than by hanging in
	// "processing" until the deadline.
	beforePurchase phase = iota
	// afterPurchase: a certificate is paid for and in flight. Failing the
	// order over a credential problem (a key rotated, a CAM policy
	// tightened) would abandon the purchase, so the refusal is transient
	// and the order resumes once the configuration is fixed, bounded by
	// the order's deadline.
	afterPurchase
)

// classify turns an error from the API client into what the issuance job
// acts on: an *issuer.Error for Tencent's answers (permanent refusals with
// a problem type, or transient ones with a retry hint), the error itself
// otherwise (network failures and unreadable answers, retried with
// backoff).
//
// Mapping, by Tencent error code:
//
//   - FailedOperation.ExceedsFreeLimit, FailedOperation.MainDomainCertificateCountLimit,
//     FailedOperation.PackageCountLimit: permanent "rateLimited" (a quota
//     that will not reset within the order's life).
//   - LimitExceeded.*, RequestLimitExceeded*: transient "rateLimited",
//     retry after one second.
//   - AuthFailure.*, UnauthorizedOperation*, FailedOperation.CAMAuthorizedFail,
//     FailedOperation.NoRealNameAuth, FailedOperation.RoleNotFoundAuthorization:
//     "serverInternal" naming the configuration to fix; permanent before
//     a purchase, transient after (see phase).
//   - InvalidParameter*, InvalidParameterValue*, MissingParameter,
//     UnknownParameter, FailedOperation.InvalidParam and the CSR/domain
//     refusals: permanent "badCSR" when about the CSR, "rejectedIdentifier"
//     when about a domain, "serverInternal" when about the brand's own
//     settings (product, period), "malformed" otherwise.
//   - InternalError*, FailedOperation.SystemError, FailedOperation.NetworkError,
//     ResourceUnavailable*, and any code not listed: transient.
func classify(err error, ph phase) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	detail := detailPrefix + ae.Error()
	perm := func(typ string) error {
		return &issuer.Error{Type: typ, Detail: detail, Permanent: true}
	}
	code := ae.Code
	switch {
	case code == "FailedOperation.ExceedsFreeLimit",
		code == "FailedOperation.MainDomainCertificateCountLimit",
		code == "FailedOperation.PackageCountLimit":
		return perm("rateLimited")

	case strings.HasPrefix(code, "LimitExceeded"), strings.HasPrefix(code, "RequestLimitExceeded"):
		return &issuer.Error{Type: "rateLimited", Detail: detail, RetryAfter: rateLimitRetry}

	case strings.HasPrefix(code, "AuthFailure"), strings.HasPrefix(code, "UnauthorizedOperation"),
		code == "FailedOperation.CAMAuthorizedFail", code == "FailedOperation.NoRealNameAuth",
		code == "FailedOperation.RoleNotFoundAuthorization", code == "FailedOperation.AuthError":
		detail = detailPrefix + "the gateway's Tencent Cloud credentials were refused (" + ae.Error() + "); " +
			credentialHint(code)
		if ph == beforePurchase {
			return &issuer.Error{Type: "serverInternal", Detail: detail, Permanent: true}
		}
		return &issuer.Error{Type: "serverInternal", Detail: detail, RetryAfter: credentialRetry}

	case code == "InvalidParameter.ProductPidInvalid", code == "InvalidParameter.PeriodInvalid",
		code == "InvalidParameter.PackageIdsInvalid", code == "FailedOperation.TradeError",
		code == "ResourceNotFound.Manager", code == "FailedOperation.IllegalManagerStatus",
		code == "FailedOperation.CertificateTypeInfoNotFound":
		// The brand's configuration (product, period, manager) or the
		// account's balance: the operator must act, not the client.
		return perm("serverInternal")

	case code == "FailedOperation.CertificateCsrParseFailed", code == "FailedOperation.GenCSRFail",
		strings.Contains(strings.ToLower(code), "csr"):
		return perm("badCSR")

	case code == "FailedOperation.CertificateInfoSubmitDomainInvalid",
		strings.Contains(strings.ToLower(code), "domain"):
		return perm("rejectedIdentifier")

	case strings.HasPrefix(code, "InvalidParameter"), code == "MissingParameter",
		code == "UnknownParameter", code == "FailedOperation.InvalidParam":
		return perm(parameterProblem(ae))

	case code == "FailedOperation.CertificateNotFound", code == "FailedOperation.InvalidCertificateSource":
		return perm("serverInternal")
	}
	// InternalError, SystemError, NetworkError, ResourceUnavailable and
	// codes this list does not know yet: worth another try.
	return &issuer.Error{Type: "serverInternal", Detail: detail}
}

// parameterProblem picks the problem type for an InvalidParameter answer
// from what its message is about.
func parameterProblem(ae *APIError) string {
	m := strings.ToLower(ae.Message)
	switch {
	case strings.Contains(m, "csr"):
		return "badCSR"
	case strings.Contains(m, "domain"), strings.Contains(m, "域名"):
		return "rejectedIdentifier"
	}
	return "malformed"
}

// credentialHint says what an operator should check for an authentication
// code, without ever repeating the secret.
func credentialHint(code string) string {
	switch code {
	case "AuthFailure.SignatureExpire":
		return "the request timestamp was too far from Tencent's clock: check the gateway host's clock (NTP)"
	case "AuthFailure.SecretIdNotFound", "AuthFailure.InvalidSecretId":
		return "check the brand's secret_id: the key may be deleted or disabled"
	case "AuthFailure.SignatureFailure":
		return "check the brand's secret_key: it does not match secret_id"
	case "AuthFailure.UnauthorizedOperation", "UnauthorizedOperation", "FailedOperation.CAMAuthorizedFail":
		return "grant the key's CAM user the SSL certificate actions (e.g. QcloudSSLFullAccess)"
	case "FailedOperation.NoRealNameAuth":
		return "the Tencent Cloud account must complete real-name verification"
	}
	return "check the brand's secret_id and secret_key"
}

// refuse is a permanent problem the brand finds itself, before or after
// asking Tencent.
func refuse(typ, format string, args ...any) error {
	return &issuer.Error{Type: typ, Detail: detailPrefix + fmt.Sprintf(format, args...), Permanent: true}
}

// retryHint is how soon to try again after err, when it says; zero means
// the caller's default.
func retryHint(err error) time.Duration {
	if ie, ok := issuer.AsError(err); ok {
		return ie.RetryAfter
	}
	return 0
}
