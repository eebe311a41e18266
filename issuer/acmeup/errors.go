package acmeup

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"

	"github.com/acmegw/acmegw/issuer"
)

// problemNS prefixes the ACME problem types of RFC 8555 section 6.7.
const problemNS = "urn:ietf:params:acme:error:"

// ErrRefused marks a request the brand turns down before contacting the
// upstream (CSR names that differ from the order, IP identifiers it cannot
// prove, a missing CSR). Retrying cannot help.
var ErrRefused = errors.New("refused by the gateway")

// UpstreamError is a problem document the upstream CA answered with, in a
// form the issuance job can act on.
type UpstreamError struct {
	// Type is the problem type URN, for example
	// "urn:ietf:params:acme:error:rejectedIdentifier".
	Type string
	// Detail is the upstream's human-readable explanation, followed by its
	// subproblems.
	Detail string
	// Status is the HTTP status of the upstream's response, 0 when the
	// problem came embedded in a challenge or order object.
	Status int
	// Permanent is true when the upstream refused this order for what it
	// asks (its names, CAA, the CSR): a retry would be refused the same way.
	// Rate limits, nonce and server errors, and failed challenge validations
	// (the gateway's DNS update may just have been slow) are not permanent.
	Permanent bool
	// RetryAfter is the upstream's hint for rate limits, 0 if none.
	RetryAfter time.Duration

	err error
}

// Error returns the short problem type and the detail.
func (e *UpstreamError) Error() string {
	msg := strings.TrimPrefix(e.Type, problemNS) + ": " + e.Detail
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns lego's error, which keeps the request URL and which
// identifier failed.
func (e *UpstreamError) Unwrap() error { return e.err }

// IsPermanent reports whether err means the order can never be issued by the
// brand as asked: an *UpstreamError with Permanent set, or ErrRefused.
// Anything else (network failures, timeouts, rate limits, upstream server
// errors) is worth retrying.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrRefused) {
		return true
	}
	var u *UpstreamError
	return errors.As(err, &u) && u.Permanent
}

// permanentTypes are problems about the order's own content. "unauthorized"
// and "malformed" join them only when they answer a request (newOrder,
// finalize): inside a failed challenge they mean the upstream did not see
// the gateway's TXT record in time, which a new attempt may fix.
var permanentTypes = map[string]bool{
	"rejectedIdentifier":    true,
	"caa":                   true,
	"badCSR":                true,
	"unsupportedIdentifier": true,
	"badPublicKey":          true,
	"badSignatureAlgorithm": true,
}

// classify wraps err in an *UpstreamError when it carries an ACME problem
// document, and returns it unchanged otherwise.
func classify(err error) error {
	var p *acme.ProblemDetails
	if !errors.As(err, &p) || p == nil {
		return err
	}
	ue := &UpstreamError{
		Type:   p.Type,
		Detail: describe(p),
		Status: p.HTTPStatus,
		err:    err,
	}
	// lego records the method only on problems it read from a response
	// (see its sender.checkError); embedded ones come from JSON objects.
	answered := p.Method != ""
	ue.Permanent = permanent(p.Type, answered)
	if p.Type == problemNS+"compound" {
		for _, sp := range p.SubProblems {
			if permanent(sp.Type, answered) {
				ue.Permanent = true
			}
		}
	}
	var rl *acme.RateLimitedError
	if errors.As(err, &rl) {
		ue.Permanent = false
		ue.RetryAfter, _ = api.ParseRetryAfter(rl.RetryAfter)
	}
	return ue
}

func permanent(typ string, answered bool) bool {
	short, ok := strings.CutPrefix(typ, problemNS)
	if !ok {
		return false
	}
	if permanentTypes[short] {
		return true
	}
	return answered && (short == "unauthorized" || short == "malformed")
}

// describe joins the detail and the subproblems into one readable line.
func describe(p *acme.ProblemDetails) string {
	var sb strings.Builder
	sb.WriteString(strings.TrimSpace(p.Detail))
	for _, sp := range p.SubProblems {
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		if sp.Identifier.Value != "" {
			sb.WriteString(sp.Identifier.Value + ": ")
		}
		sb.WriteString(strings.TrimPrefix(sp.Type, problemNS) + ": " + strings.TrimSpace(sp.Detail))
	}
	if sb.Len() == 0 {
		return "(no detail)"
	}
	return sb.String()
}

// As lets errors.As find an *issuer.Error in an upstream problem, which is
// how the issuance job tells a refusal from a failure worth retrying.
func (e *UpstreamError) As(target any) bool {
	t, ok := target.(**issuer.Error)
	if ok {
		*t = &issuer.Error{Type: strings.TrimPrefix(e.Type, problemNS), Detail: "upstream CA: " + e.Detail,
			Permanent: e.Permanent, RetryAfter: e.RetryAfter}
	}
	return ok
}

// refusal carries an ErrRefused error to the issuance job as a permanent
// *issuer.Error, keeping its message, while errors.Is still finds ErrRefused.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// As fills an *issuer.Error target.
func (r refusal) As(target any) bool {
	t, ok := target.(**issuer.Error)
	if ok {
		*t = &issuer.Error{Type: "rejectedIdentifier", Detail: r.err.Error(), Permanent: true}
	}
	return ok
}
