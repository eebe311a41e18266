package manual

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/local"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// decisions is a settable Decisions.
type decisions struct {
	mu       sync.Mutex
	approved map[string]bool
	rejected map[string]string
	err      error
}

func (d *decisions) Decision(ctx context.Context, orderID string) (bool, bool, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	reason, rejected := d.rejected[orderID]
	return d.approved[orderID], rejected, reason, d.err
}

func (d *decisions) set(f func(d *decisions)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func newBrand(t *testing.T, opts Options) (*Brand, *clock) {
	t.Helper()
	ca, err := local.Open(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Now()}
	opts.Now = c.Now
	b, err := New(ca, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func request(t *testing.T, names ...string) issuer.Request {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	return issuer.Request{OrderID: "order-" + names[0], CSR: csr, DNSNames: names, Validity: 48 * time.Hour}
}

func mustPending(t *testing.T, res issuer.Result, err error, minWait, maxWait time.Duration) {
	t.Helper()
	if err != nil || res.Ticket == "" || res.Chain != nil {
		t.Fatalf("want a ticket, got %+v, %v", res, err)
	}
	if res.RetryAfter < minWait || res.RetryAfter > maxWait {
		t.Errorf("RetryAfter %s, want %s to %s", res.RetryAfter, minWait, maxWait)
	}
}

func mustIssue(t *testing.T, res issuer.Result, err error, names ...string) {
	t.Helper()
	if err != nil || res.Leaf == nil || len(res.Chain) == 0 {
		t.Fatalf("want a certificate, got %+v, %v", res, err)
	}
	if strings.Join(res.Leaf.DNSNames, ",") != strings.Join(names, ",") {
		t.Errorf("leaf names %v, want %v", res.Leaf.DNSNames, names)
	}
	if v := res.Leaf.NotAfter.Sub(res.Leaf.NotBefore); v != 48*time.Hour {
		t.Errorf("validity %s, want the request's 48h", v)
	}
}

func TestIssueAfter(t *testing.T) {
	b, c := newBrand(t, Options{IssueAfter: 10 * time.Second})
	ctx := t.Context()
	res, err := b.Submit(ctx, request(t, "a.example", "b.example"))
	mustPending(t, res, err, 10*time.Second, 10*time.Second)
	tk := res.Ticket
	c.Add(4 * time.Second)
	res, err = b.Poll(ctx, tk)
	mustPending(t, res, err, 6*time.Second, 6*time.Second)
	c.Add(5500 * time.Millisecond)
	res, err = b.Poll(ctx, tk)
	mustPending(t, res, err, time.Second, time.Second) // at least a second
	c.Add(time.Second)
	res, err = b.Poll(ctx, tk)
	mustIssue(t, res, err, "a.example", "b.example")
	// The ticket is all Poll needs: a second brand (another instance) issues too.
	other, err := New(b.signer, Options{IssueAfter: 10 * time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	res, err = other.Poll(ctx, tk)
	mustIssue(t, res, err, "a.example", "b.example")
}

func TestImmediate(t *testing.T) {
	b, _ := newBrand(t, Options{})
	res, err := b.Submit(t.Context(), request(t, "now.example"))
	mustIssue(t, res, err, "now.example")
}

func TestReview(t *testing.T) {
	d := &decisions{approved: map[string]bool{}, rejected: map[string]string{}}
	b, c := newBrand(t, Options{Review: true, Decisions: d})
	ctx := t.Context()

	res, err := b.Submit(ctx, request(t, "ov.example"))
	mustPending(t, res, err, minReviewPoll, minReviewPoll)
	tk := res.Ticket
	c.Add(time.Hour)
	res, err = b.Poll(ctx, tk)
	mustPending(t, res, err, 5*time.Minute, 5*time.Minute) // an hour in: the cap

	d.set(func(d *decisions) { d.err = errors.New("redis: connection refused") })
	_, err = b.Poll(ctx, tk)
	if err == nil || issuer.IsPermanent(err) {
		t.Errorf("a failing decision source: %v, want a transient error", err)
	}
	d.set(func(d *decisions) { d.err = nil; d.approved["order-ov.example"] = true })
	res, err = b.Poll(ctx, tk)
	mustIssue(t, res, err, "ov.example")

	res, err = b.Submit(ctx, request(t, "ev.example"))
	mustPending(t, res, err, minReviewPoll, minReviewPoll)
	d.set(func(d *decisions) { d.rejected["order-ev.example"] = "the organization could not be verified" })
	_, err = b.Poll(ctx, res.Ticket)
	e, ok := issuer.AsError(err)
	if !ok || !e.Permanent || e.Type != "unauthorized" || e.Detail != "rejected by review: the organization could not be verified" {
		t.Errorf("rejected order: %v (%+v)", err, e)
	}
}

func TestReviewAndWait(t *testing.T) {
	d := &decisions{approved: map[string]bool{"order-both.example": true}}
	b, c := newBrand(t, Options{Review: true, Decisions: d, IssueAfter: time.Minute})
	res, err := b.Submit(t.Context(), request(t, "both.example"))
	mustPending(t, res, err, time.Minute, time.Minute)
	res, err = b.Poll(t.Context(), res.Ticket)
	mustPending(t, res, err, time.Minute, time.Minute) // approved, but not yet a minute
	c.Add(time.Minute)
	res, err = b.Poll(t.Context(), res.Ticket)
	mustIssue(t, res, err, "both.example")
}

func TestRefusals(t *testing.T) {
	b, _ := newBrand(t, Options{IssueAfter: time.Second})
	if _, err := b.Poll(t.Context(), "not a ticket"); !issuer.IsPermanent(err) {
		t.Errorf("bad ticket: %v, want a permanent error", err)
	}
	if _, err := b.Submit(t.Context(), issuer.Request{OrderID: "x"}); !issuer.IsPermanent(err) {
		t.Errorf("no CSR: %v, want a permanent error", err)
	}
	ca, _ := local.Open(t.TempDir(), local.Options{})
	if _, err := New(ca, Options{Review: true}); err == nil {
		t.Error("review without decisions accepted")
	}
	if _, err := New(ca, Options{IssueAfter: -time.Second}); err == nil {
		t.Error("negative issue_after accepted")
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("no signer accepted")
	}
	if got, want := b.Describe(), ca.Describe(); got.Wildcard != want.Wildcard || got.MaxNames != want.MaxNames {
		t.Errorf("Describe %+v, want the signer's %+v", got, want)
	}
}
