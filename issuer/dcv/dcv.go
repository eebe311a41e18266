// Package dcv satisfies a commercial brand's own domain control validation
// (DCV). A public CA must validate a domain itself: acmegw's dns-01 or
// http-01 success does not count for it, and an ACME client cannot be made
// to publish the brand's token. So the gateway publishes the brand's record
// itself, by one of the methods an operator picks per brand:
//
//   - prevalidated: the domains are already validated in the brand account;
//     nothing is published.
//   - dns-provider: the record is written through the DNS operator's API
//     and removed afterwards.
//   - delegated: the domain owner adds, once, a CNAME from the brand's
//     record name (e.g. _dnsauth.example.com) into a zone that acmegw
//     answers itself with an authoritative DNS server, and acmegw serves
//     the brand's value there while the order is validated.
package dcv

import "context"

// Record is a DNS record a brand wants to see before it issues, as its API
// hands it out (Tencent DvAuthDetail, Alibaba RecordDomain/RecordValue,
// DigiCert dns-txt-token).
type Record struct {
	// Domain is the name being validated, e.g. "example.com" (no "*.").
	Domain string
	// Name is the fully qualified record name without the trailing dot,
	// e.g. "_dnsauth.example.com".
	Name string
	// Type is "TXT" or "CNAME".
	Type string
	// Value is the record data the brand expects.
	Value string
}

// Publisher makes brand DCV records visible and removes them again. A
// brand adapter calls Publish when the brand reports the record it wants,
// then asks the brand to check, and Unpublish once the order left the DCV
// state (issued or failed).
type Publisher interface {
	Publish(ctx context.Context, r Record) error
	Unpublish(ctx context.Context, r Record) error
	// Method is "prevalidated", "dns-provider" or "delegated", for logs and errors.
	Method() string
}

// Prevalidated is the Publisher for domains the brand account has already
// validated: it publishes nothing.
type Prevalidated struct{}

// Publish does nothing: the brand needs no record.
func (Prevalidated) Publish(context.Context, Record) error { return nil }

// Unpublish does nothing.
func (Prevalidated) Unpublish(context.Context, Record) error { return nil }

// Method names the method.
func (Prevalidated) Method() string { return "prevalidated" }
