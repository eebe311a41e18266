// Package manual is a test and demonstration brand that behaves like a slow
// commercial CA: it accepts an order with a ticket and issues later, either
// once a fixed time has passed since submission (IssueAfter, standing in for
// a DV brand that takes a while) or once an operator approves the order
// (Review, standing in for an OV/EV validation team), and refuses it when
// the operator rejects it. The certificate itself is signed by another
// issuer, normally the built-in CA.
//
//	brands:
//	  slow:   {type: manual, issue_after: 10s}
//	  review: {type: manual, review: true}   # decide with "acmegw review approve|reject ORDER"
//
// A ticket carries everything Poll needs (the CSR, names, dates and the
// submission time), so any gateway instance can poll it and the brand keeps
// no state of its own.
package manual

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// Decisions tells the brand what an operator decided about an order: it
// issues once approved and refuses the order once rejected (with reason).
// An error is retried.
type Decisions interface {
	Decision(ctx context.Context, orderID string) (approved, rejected bool, reason string, err error)
}

// Options configures a Brand.
type Options struct {
	// IssueAfter is how long after submission the certificate is issued.
	// With Review, it is the least time before an approved order issues.
	IssueAfter time.Duration
	// Review holds every order until Decisions approves or rejects it.
	Review bool
	// Decisions is required with Review.
	Decisions Decisions
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Polling intervals suggested in Result.RetryAfter while a review is open:
// a tenth of its age, between these bounds, so a fresh order is picked up
// quickly after approval and a days-long review is polled every few minutes.
const (
	minReviewPoll = 2 * time.Second
	maxReviewPoll = 5 * time.Minute
	minWaitPoll   = time.Second
)

// Brand is the manual brand. It implements issuer.Issuer.
type Brand struct {
	signer issuer.Issuer
	opts   Options
}

var _ issuer.Issuer = (*Brand)(nil)

// New returns a manual brand that has signer sign what it issues.
func New(signer issuer.Issuer, opts Options) (*Brand, error) {
	if signer == nil {
		return nil, errors.New("manual brand: no signer")
	}
	if opts.IssueAfter < 0 {
		return nil, fmt.Errorf("manual brand: issue_after %v is negative", opts.IssueAfter)
	}
	if opts.Review && opts.Decisions == nil {
		return nil, errors.New("manual brand: review needs a source of decisions")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Brand{signer: signer, opts: opts}, nil
}

// ticket is what a Brand's tickets encode (JSON, base64url).
type ticket struct {
	OrderID   string        `json:"order"`
	Submitted time.Time     `json:"submitted"`
	CSR       []byte        `json:"csr"`
	DNSNames  []string      `json:"dns,omitempty"`
	IPs       []string      `json:"ips,omitempty"`
	NotBefore time.Time     `json:"notBefore,omitzero"`
	NotAfter  time.Time     `json:"notAfter,omitzero"`
	Validity  time.Duration `json:"validity,omitempty"`
}

func (t *ticket) encode() (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeTicket(s string) (*ticket, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	t := new(ticket)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, err
	}
	if len(t.CSR) == 0 {
		return nil, errors.New("no CSR")
	}
	return t, nil
}

// Submit accepts the request with a ticket, or signs at once when there is
// neither a review nor a wait.
func (b *Brand) Submit(ctx context.Context, req issuer.Request) (issuer.Result, error) {
	if req.CSR == nil {
		return issuer.Result{}, &issuer.Error{Type: "badCSR", Detail: "manual brand: order " + req.OrderID + ": no CSR", Permanent: true}
	}
	t := &ticket{
		OrderID:   req.OrderID,
		Submitted: b.opts.Now().UTC(),
		CSR:       req.CSR.Raw,
		DNSNames:  req.DNSNames,
		IPs:       req.IPs,
		NotBefore: req.NotBefore,
		NotAfter:  req.NotAfter,
		Validity:  req.Validity,
	}
	if !b.opts.Review && b.opts.IssueAfter == 0 {
		return b.sign(ctx, t, req.CSR)
	}
	s, err := t.encode()
	if err != nil {
		return issuer.Result{}, fmt.Errorf("manual brand: order %s: ticket: %w", req.OrderID, err)
	}
	return issuer.Result{Ticket: s, RetryAfter: b.wait(t)}, nil
}

// Poll issues once the ticket's wait is over and, in review mode, the
// order is approved; a rejected order is a permanent "unauthorized" error.
func (b *Brand) Poll(ctx context.Context, tk string) (issuer.Result, error) {
	t, err := decodeTicket(tk)
	if err != nil {
		return issuer.Result{}, &issuer.Error{Type: "serverInternal", Detail: fmt.Sprintf("manual brand: unreadable ticket: %v", err), Permanent: true}
	}
	if b.opts.Review {
		approved, rejected, reason, err := b.opts.Decisions.Decision(ctx, t.OrderID)
		if err != nil {
			return issuer.Result{}, fmt.Errorf("manual brand: order %s: reading the review decision: %w", t.OrderID, err)
		}
		if rejected {
			if reason == "" {
				reason = "no reason given"
			}
			return issuer.Result{}, &issuer.Error{Type: "unauthorized", Detail: "rejected by review: " + reason, Permanent: true}
		}
		if !approved {
			return issuer.Result{Ticket: tk, RetryAfter: b.wait(t)}, nil
		}
	}
	if left := b.left(t); left > 0 {
		return issuer.Result{Ticket: tk, RetryAfter: max(left, minWaitPoll)}, nil
	}
	csr, err := x509.ParseCertificateRequest(t.CSR)
	if err != nil {
		return issuer.Result{}, &issuer.Error{Type: "badCSR", Detail: fmt.Sprintf("manual brand: order %s: CSR: %v", t.OrderID, err), Permanent: true}
	}
	return b.sign(ctx, t, csr)
}

// left is how much of IssueAfter is still to pass.
func (b *Brand) left(t *ticket) time.Duration {
	return t.Submitted.Add(b.opts.IssueAfter).Sub(b.opts.Now())
}

// wait suggests when to poll a ticket next.
func (b *Brand) wait(t *ticket) time.Duration {
	if b.opts.Review {
		age := b.opts.Now().Sub(t.Submitted)
		return min(max(age/10, minReviewPoll, b.left(t)), maxReviewPoll)
	}
	return max(b.left(t), minWaitPoll)
}

func (b *Brand) sign(ctx context.Context, t *ticket, csr *x509.CertificateRequest) (issuer.Result, error) {
	return b.signer.Submit(ctx, issuer.Request{
		OrderID:   t.OrderID,
		CSR:       csr,
		DNSNames:  t.DNSNames,
		IPs:       t.IPs,
		NotBefore: t.NotBefore,
		NotAfter:  t.NotAfter,
		Validity:  t.Validity,
	})
}

// Revoke is the signer's.
func (b *Brand) Revoke(ctx context.Context, cert *x509.Certificate, reason int) error {
	return b.signer.Revoke(ctx, cert, reason)
}

// Describe is the signer's product: the manual brand only adds delay.
func (b *Brand) Describe() issuer.Product { return b.signer.Describe() }
