package tencent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/tencent"
	"github.com/acmegw/acmegw/issuer/tencent/tencenttest"
)

// callCounts snapshots the fake's calls of the actions a revocation may
// make, so that a test can tell which ones a RevokeRef made.
func callCounts(f *tencenttest.Fake) map[string]int {
	out := map[string]int{}
	for _, a := range []string{"DescribeCertificates", "DescribeCertificateDetail", "RevokeCertificate"} {
		out[a] = f.Calls(a)
	}
	return out
}

// made is how many calls of action the fake received since before.
func made(f *tencenttest.Fake, before map[string]int, action string) int {
	return f.Calls(action) - before[action]
}

// TestIssuedResultCarriesRef: the chain comes with the CertificateId as
// Ref, whether Poll or a Submit resuming an earlier purchase collects it.
func TestIssuedResultCarriesRef(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, nil)
	req := request(t, "order-ref", "ref.example.com")
	res := issueRequest(t, b, req)
	if id := certID(t, e.fake); res.Ref != id {
		t.Errorf("Poll's Ref = %q, want the CertificateId %q", res.Ref, id)
	}

	// The same order submitted again, as after a crash before Submit's
	// answer was stored, finds the purchase by its tag, already issued,
	// and collects it in Submit.
	again, err := b.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit again: %v", err)
	}
	if len(again.Chain) == 0 || again.Ref != res.Ref {
		t.Errorf("resumed Submit = chain of %d bytes, Ref %q; want the chain and Ref %q", len(again.Chain), again.Ref, res.Ref)
	}
}

// TestRevokeRefRevokesByID: RevokeRef revokes the certificate its ref
// names, not another for the same name, and never searches.
func TestRevokeRefRevokesByID(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, nil)
	issue(t, e, b, "order-a", "byid.example.com")
	res := issue(t, e, b, "order-b", "byid.example.com")
	ids := e.fake.CertificateIDs()
	if res.Ref != ids[1] {
		t.Fatalf("Ref %q, want %q", res.Ref, ids[1])
	}

	before := callCounts(e.fake)
	var rr issuer.RefRevoker = b
	if err := rr.RevokeRef(context.Background(), res.Ref, res.Leaf, 4); err != nil {
		t.Fatalf("RevokeRef: %v", err)
	}
	if n := made(e.fake, before, "DescribeCertificates"); n != 0 {
		t.Errorf("RevokeRef searched: %d DescribeCertificates calls", n)
	}
	if n := made(e.fake, before, "RevokeCertificate"); n != 1 {
		t.Errorf("%d RevokeCertificate calls, want 1", n)
	}
	if c, _ := e.fake.Certificate(ids[1]); c.Status != tencenttest.StatusRevoked || !strings.Contains(c.RevokeReason, "superseded") {
		t.Errorf("certificate %s: status %d reason %q, want revoked for superseded", ids[1], c.Status, c.RevokeReason)
	}
	if c, _ := e.fake.Certificate(ids[0]); c.Status != tencenttest.StatusIssued {
		t.Errorf("the other certificate for the name has status %d", c.Status)
	}
	if live := e.pub.live(); len(live) != 0 {
		t.Errorf("revocation records left published: %v", live)
	}

	// Again: already revoked is success, still without a search.
	before = callCounts(e.fake)
	if err := b.RevokeRef(context.Background(), res.Ref, res.Leaf, 4); err != nil {
		t.Errorf("second RevokeRef: %v", err)
	}
	if n := made(e.fake, before, "DescribeCertificates") + made(e.fake, before, "RevokeCertificate"); n != 0 {
		t.Errorf("second RevokeRef made %d search or revoke calls, want 0", n)
	}
}

// TestRevokeRefWithoutIDSearches: a ref that is empty (stored before the
// brand set Ref) or cannot be a CertificateId falls back to Revoke's
// search by serial.
func TestRevokeRefWithoutIDSearches(t *testing.T) {
	for _, ref := range []string{"", `{"v":1}`} {
		t.Run("ref="+ref, func(t *testing.T) {
			e := newEnv(t, tencenttest.Options{})
			b := e.brand(t, 104, nil)
			res := issue(t, e, b, "order-fb", "fallback.example.com")

			before := callCounts(e.fake)
			if err := b.RevokeRef(context.Background(), ref, res.Leaf, 1); err != nil {
				t.Fatalf("RevokeRef(%q): %v", ref, err)
			}
			if n := made(e.fake, before, "DescribeCertificates"); n == 0 {
				t.Error("no DescribeCertificates: the fallback did not search by serial")
			}
			if c, _ := e.fake.Certificate(certID(t, e.fake)); c.Status != tencenttest.StatusRevoked {
				t.Errorf("status %d after RevokeRef, want revoked", c.Status)
			}
		})
	}
}

// TestRevokeRefRefusesWrongID: an id Tencent does not know, or one that
// names another certificate, is an error and revokes nothing.
func TestRevokeRefRefusesWrongID(t *testing.T) {
	e := newEnv(t, tencenttest.Options{})
	b := e.brand(t, 104, func(c *tencent.Config) { c.MaxNames = 1 })
	first := issue(t, e, b, "order-1", "wrong.example.com")
	second := issue(t, e, b, "order-2", "wrong.example.com")

	before := callCounts(e.fake)
	err := b.RevokeRef(context.Background(), "Unknown1", second.Leaf, 1)
	if err == nil || !strings.Contains(err.Error(), "CertificateNotFound") {
		t.Errorf("RevokeRef of an unknown id = %v, want Tencent's not-found error", err)
	}
	err = b.RevokeRef(context.Background(), first.Ref, second.Leaf, 1)
	if err == nil || !strings.Contains(err.Error(), "another certificate") {
		t.Errorf("RevokeRef with another certificate's id = %v, want a refusal", err)
	}
	if n := made(e.fake, before, "RevokeCertificate") + made(e.fake, before, "DescribeCertificates"); n != 0 {
		t.Errorf("%d revoke or search calls, want 0", n)
	}
	for _, id := range e.fake.CertificateIDs() {
		if c, _ := e.fake.Certificate(id); c.Status != tencenttest.StatusIssued {
			t.Errorf("certificate %s has status %d, want still issued", id, c.Status)
		}
	}
}
