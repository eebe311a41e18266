package acmeup

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/acme"

	"github.com/acmegw/acmegw/issuer"
)

// TestClassify feeds classify errors shaped the way lego returns them,
// including problems embedded in a challenge (no method, since lego read
// them from an authorization object rather than an error response).
func TestClassify(t *testing.T) {
	answered := func(typ string, status int) *acme.ProblemDetails {
		return &acme.ProblemDetails{Type: problemNS + typ, Detail: typ + " detail", HTTPStatus: status, Method: http.MethodPost, URL: "https://ca.test/x"}
	}
	embedded := func(typ string) *acme.ProblemDetails {
		return &acme.ProblemDetails{Type: problemNS + typ, Detail: typ + " detail", HTTPStatus: http.StatusForbidden}
	}
	// lego's ObtainForCSR wraps per-domain failures like this.
	obtain := func(err error) error {
		return fmt.Errorf("error: one or more domains had a problem:\n%w",
			errors.Join(fmt.Errorf("a.test: %w", err)))
	}
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		retry     time.Duration
	}{
		{"rejectedIdentifier", obtain(answered("rejectedIdentifier", 400)), true, 0},
		{"caa in a challenge", obtain(fmt.Errorf("invalid challenge: %w", embedded("caa"))), true, 0},
		{"badCSR", obtain(answered("badCSR", 400)), true, 0},
		{"unauthorized finalize", obtain(answered("unauthorized", 403)), true, 0},
		{"unauthorized challenge", obtain(fmt.Errorf("invalid authorization: %w", embedded("unauthorized"))), false, 0},
		{"dns challenge", obtain(fmt.Errorf("invalid challenge: %w", embedded("dns"))), false, 0},
		{"serverInternal", obtain(answered("serverInternal", 500)), false, 0},
		{"rateLimited", obtain(&acme.RateLimitedError{ProblemDetails: answered("rateLimited", 429), RetryAfter: "120"}), false, 2 * time.Minute},
		{"compound", obtain(&acme.ProblemDetails{
			Type: problemNS + "compound", Detail: "several", HTTPStatus: 403, Method: http.MethodPost,
			SubProblems: []acme.SubProblem{
				{Type: problemNS + "rejectedIdentifier", Detail: "no", Identifier: acme.Identifier{Type: "dns", Value: "b.test"}},
			},
		}), true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.err)
			var u *UpstreamError
			if !errors.As(err, &u) {
				t.Fatalf("classify returned %T", err)
			}
			if u.Permanent != tc.permanent || IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v", u.Permanent, tc.permanent)
			}
			if u.RetryAfter != tc.retry {
				t.Errorf("RetryAfter = %s, want %s", u.RetryAfter, tc.retry)
			}
			var p *acme.ProblemDetails
			if !errors.As(err, &p) {
				t.Error("lego's problem is no longer reachable through Unwrap")
			}
		})
	}

	plain := errors.New("dial tcp: connection refused")
	if classify(plain) != plain || IsPermanent(plain) {
		t.Error("a network error must pass through as transient")
	}
	u := classify(obtain(&acme.ProblemDetails{
		Type: problemNS + "compound", Detail: "Error creating new order",
		SubProblems: []acme.SubProblem{{Type: problemNS + "caa", Detail: "CAA forbids", Identifier: acme.Identifier{Value: "c.test"}}},
	})).(*UpstreamError)
	if want := "compound: Error creating new order; c.test: caa: CAA forbids"; u.Error() != want {
		t.Errorf("Error() = %q, want %q", u.Error(), want)
	}
}

// TestIssuerErrorView shows the issuance job's view of acmeup's errors: a
// permanent upstream problem and a gateway refusal are permanent
// *issuer.Errors carrying the reason, a rate limit is not and keeps its hint.
func TestIssuerErrorView(t *testing.T) {
	up := fmt.Errorf("upstream x: %w", &UpstreamError{Type: problemNS + "rejectedIdentifier", Detail: "blocked name", Permanent: true})
	if e, ok := issuer.AsError(up); !ok || !e.Permanent || e.Type != "rejectedIdentifier" || !strings.Contains(e.Detail, "blocked name") {
		t.Errorf("upstream rejection seen as %+v, %v", e, ok)
	}
	rl := &UpstreamError{Type: problemNS + "rateLimited", Detail: "slow down", RetryAfter: time.Minute}
	if e, ok := issuer.AsError(rl); !ok || e.Permanent || e.RetryAfter != time.Minute {
		t.Errorf("rate limit seen as %+v, %v", e, ok)
	}
	ref := refusal{fmt.Errorf("upstream x: %w: CSR names differ", ErrRefused)}
	if !errors.Is(ref, ErrRefused) || !issuer.IsPermanent(ref) {
		t.Error("refusal lost ErrRefused or permanence")
	}
	if e, _ := issuer.AsError(ref); !strings.Contains(e.Detail, "CSR names differ") {
		t.Errorf("refusal detail %q", e.Detail)
	}
}
