package validation

import (
	"context"
	"sync"
	"time"
)

const (
	// MaxCAARecheckAge is the longest a CAA check may precede issuance: the
	// CA/Browser Forum Baseline Requirements (§3.2.2.8) let a CA rely on a
	// check for 8 hours (or the records' TTL if longer, which is not
	// tracked here).
	MaxCAARecheckAge = 8 * time.Hour
	// DefaultCAARecheckAge is the age past which finalize repeats a CAA
	// check. Like Boulder it is an hour under the limit, so that the time
	// between the recheck and the signature cannot push issuance past it.
	DefaultCAARecheckAge = 7 * time.Hour
	// caaClockSkew is how far in the future a stored check time may lie
	// before it is distrusted: instances' clocks differ by a little, but a
	// time far ahead is corrupt and must not keep a check fresh for ever.
	caaClockSkew = time.Minute
	// caaRecheckParallel bounds the lookups one finalize starts at once; an
	// order may carry a hundred names and each check climbs several nodes.
	caaRecheckParallel = 8
)

// CAACheck is one identifier of an order at finalize together with what
// the store remembers about its last passing CAA check.
type CAACheck struct {
	// Request is what CheckCAA would be asked now: the identifier, the
	// issuer domains of the brand finalizing the order, the account and
	// the challenge type that validated the authorization.
	Request CAARequest
	// CheckedAt is when CheckCAA last passed for this authorization; zero
	// if never (an authorization from before CAA checking existed).
	CheckedAt time.Time
	// CheckedIssuerDomains are the issuer domains that check used. A
	// reused authorization may have been validated for an order routed to
	// another brand, and a pass for one CA's identity says nothing about
	// another's.
	CheckedIssuerDomains []string
}

// CAACheckStale reports whether c must be checked again before issuing at
// now: never checked, checked more than maxAge ago (zero or negative
// means DefaultCAARecheckAge; more than MaxCAARecheckAge is capped to it),
// dated implausibly far in the future, or checked for issuer domains that
// are not all among the ones signing now. It is always false when the
// signing brand has no CAA identity, since CheckCAA would not check then.
func CAACheckStale(c CAACheck, now time.Time, maxAge time.Duration) bool {
	if len(c.Request.IssuerDomains) == 0 {
		return false
	}
	if maxAge <= 0 {
		maxAge = DefaultCAARecheckAge
	}
	maxAge = min(maxAge, MaxCAARecheckAge)
	if c.CheckedAt.IsZero() || len(c.CheckedIssuerDomains) == 0 {
		return true
	}
	if age := now.Sub(c.CheckedAt); age >= maxAge || age < -caaClockSkew {
		return true
	}
	// A pass means some record named one of the old domains (or none
	// restricted issuance); that still holds for any superset of them.
	for _, d := range c.CheckedIssuerDomains {
		if !containsFold(c.Request.IssuerDomains, d) {
			return true
		}
	}
	return false
}

// RecheckCAA is the CAA check at finalize: it runs CheckCAA, in parallel,
// for each of checks that CAACheckStale finds stale at now, and returns nil
// or the first failure in the order of checks (an *Error of Type "caa",
// "dns" or "malformed" that names the identifier).
//
// How the ACME front end uses CAA (the wiring lives in acme/; this package
// keeps no state and needs no CAA configuration beyond the brand's issuer
// domains):
//
//  1. When a challenge passes, call CheckCAA with the authorization's
//     identifier (Name without "*.", Wildcard set for a wildcard
//     authorization), the issuer domains of the brand the order is routed
//     to, the account URL and the challenge type. If it fails, the
//     challenge and authorization become invalid with the returned error
//     (ACME types urn:ietf:params:acme:error:caa or :dns). If it passes,
//     store the time and the issuer domains with the authorization.
//  2. At finalize, before the issuance job submits to the brand, call
//     RecheckCAA with one CAACheck per identifier of the order, built from
//     the finalizing order's brand and each authorization's stored time and
//     issuer domains, with maxAge from configuration (zero for
//     DefaultCAARecheckAge). Authorization reuse makes stale checks common:
//     an authorization can stay valid for days. If it fails, the order
//     becomes invalid with the error and nothing is submitted; if it
//     passes, the checked authorizations' stored times may be refreshed.
//
// For a brand that answers "processing" and signs days later, the brand's
// own CA repeats CAA against its own identity before signing; the gateway's
// duty ends at submission.
func (v *Validator) RecheckCAA(ctx context.Context, now time.Time, maxAge time.Duration, checks []CAACheck) error {
	errs := make([]error, len(checks))
	sem := make(chan struct{}, caaRecheckParallel)
	var wg sync.WaitGroup
	for i, c := range checks {
		if !CAACheckStale(c, now, maxAge) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = v.CheckCAA(ctx, c.Request)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
