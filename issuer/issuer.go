// Package issuer defines the Issuer contract that every backend CA brand
// implements, and the Router that maps an order's profile to the brand that
// signs it. Each brand lives in a sub-package (issuer/local, ...).
package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"time"
)

// Request asks a brand to sign a CSR whose names were already validated by the gateway.
type Request struct {
	OrderID string
	// CSR's signature has been checked by the caller (the gateway's
	// finalize does, before it queues the issuance), so a brand need not
	// verify it again; the local CA does not.
	CSR       *x509.CertificateRequest
	DNSNames  []string  // the order's dns identifiers, as sent
	IPs       []string  // the order's ip identifiers, as sent
	NotBefore time.Time // zero: now
	NotAfter  time.Time // zero: NotBefore + the profile's validity
	Validity  time.Duration
}

// Result is either an issued chain (Chain non-empty) or a ticket to poll later.
type Result struct {
	// Chain is the PEM chain, leaf first.
	Chain []byte
	// Alternates are other PEM chains for the same leaf, each leaf first.
	Alternates [][]byte
	// Leaf is the parsed leaf of Chain.
	Leaf *x509.Certificate
	// Ticket identifies a pending issuance at the brand, for Poll.
	Ticket string
	// RetryAfter suggests when to Poll again.
	RetryAfter time.Duration
	// Ref is the brand's own handle on an issued certificate (its order or
	// certificate id). The gateway stores it with the certificate and hands
	// it back to RefRevoker.RevokeRef, sparing brands a search by serial.
	Ref string
}

// Product describes what a brand's product accepts.
type Product struct {
	Wildcard    bool
	IP          bool
	MaxNames    int
	MaxValidity time.Duration
	// CAAIdentities are the issuer domains that CAA records must allow.
	CAAIdentities []string
}

// Error is a brand's answer that the issuance job can act on. A Permanent
// error (the brand refuses this request for what it asks: its names, its
// key, a review that said no) makes the order invalid with Type and Detail
// as its problem; anything else, an *Error that is not Permanent or any
// other error, is retried with backoff until the order's deadline.
type Error struct {
	// Type is the short ACME problem type the client sees: "rejectedIdentifier",
	// "badCSR", "unauthorized", "caa", "rateLimited", "serverInternal"...
	Type   string
	Detail string
	// Permanent means retrying cannot help.
	Permanent bool
	// RetryAfter, when positive, is when to try again instead of the job's backoff.
	RetryAfter time.Duration
}

// Error returns the detail, or the type when there is none.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Type
	}
	return e.Detail
}

// AsError returns the *Error in err's chain, if there is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsPermanent reports whether err carries a Permanent *Error.
func IsPermanent(err error) bool {
	e, ok := AsError(err)
	return ok && e.Permanent
}

// Issuer is a backend CA brand. Submit and Poll report a refusal as a
// Permanent *Error; every other error is retried.
type Issuer interface {
	Submit(ctx context.Context, req Request) (Result, error)
	Poll(ctx context.Context, ticket string) (Result, error)
	Revoke(ctx context.Context, cert *x509.Certificate, reason int) error
	Describe() Product
}

// RefRevoker is implemented by brands that revoke by their own handle (the
// Result.Ref they returned at issuance) rather than by the certificate.
type RefRevoker interface {
	RevokeRef(ctx context.Context, ref string, cert *x509.Certificate, reason int) error
}
