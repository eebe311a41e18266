package acme_test

import (
	"net/http"
	"testing"
)

// TestAuthzReuse shows a valid authorization reused by the same account's
// next order (so a renewal needs no new validation), kept apart for
// wildcards and never given to another account.
func TestAuthzReuse(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *env) {
		a := e.newAccount(t)
		a.issue(t, dnsIDs("reuse-authz.example.com")...)
		_, o := a.newOrder(t, dnsIDs("reuse-authz.example.com", "other.example.com")...)
		if o.Status != "pending" {
			t.Fatalf("order with one new name is %s, want pending", o.Status)
		}
		reused := a.authz(t, o.Authorizations[0])
		if reused.Status != "valid" {
			t.Errorf("authorization for the validated name is %s, want valid (reused)", reused.Status)
		}
		if fresh := a.authz(t, o.Authorizations[1]); fresh.Status != "pending" {
			t.Errorf("authorization for the new name is %s, want pending", fresh.Status)
		}

		// All names already proven: the order is ready at once.
		r := a.post(t, e.dir.NewOrder, map[string]any{"identifiers": dnsIDs("reuse-authz.example.com"), "profile": "shortlived"})
		var ready orderDoc
		r.mustJSON(t, http.StatusCreated, &ready)
		if ready.Status != "ready" {
			t.Errorf("order whose only authorization is reused is %s, want ready", ready.Status)
		}

		// A wildcard needs its own (dns-01) authorization.
		_, w := a.newOrder(t, dnsIDs("*.reuse-authz.example.com")...)
		if az := a.authz(t, w.Authorizations[0]); az.Status != "pending" || !az.Wildcard {
			t.Errorf("wildcard authorization is %s (wildcard %v), want a new pending one", az.Status, az.Wildcard)
		}

		// Another account proves control itself.
		b := e.newAccount(t)
		_, bo := b.newOrder(t, dnsIDs("reuse-authz.example.com")...)
		if bo.Status != "pending" || bo.Authorizations[0] == o.Authorizations[0] {
			t.Errorf("another account got status %s and authorization %s", bo.Status, bo.Authorizations[0])
		}
	})
}
