package digicert_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/issuer"
	"github.com/acmegw/acmegw/issuer/digicert"
	"github.com/acmegw/acmegw/issuer/digicert/digicerttest"
	"github.com/acmegw/acmegw/validation/validationtest"
)

// searches counts the fake's GET order/certificate?... calls since the
// first skip exchanges: Revoke's search of the account by serial.
func searches(fake *digicerttest.Server, skip int) int {
	n := 0
	for _, ex := range fake.Exchanges()[skip:] {
		if ex.Method == "GET" && strings.HasPrefix(ex.Path, "order/certificate?") {
			n++
		}
	}
	return n
}

// wantRef checks that res carries the certificate id of fake order id as
// its Ref (the fake numbers certificates apart from orders, so an order id
// in Ref fails).
func wantRef(t *testing.T, fake *digicerttest.Server, id int, res issuer.Result) {
	t.Helper()
	o, _ := fake.Order(id)
	if want := strconv.Itoa(o.CertificateID); res.Ref != want {
		t.Errorf("Ref %q, want certificate id %s (order %d)", res.Ref, want, id)
	}
}

// fakeWithDNS is a fake that looks DCV records up in a loopback DNS
// server, and a publisher writing into that server.
func fakeWithDNS(t *testing.T) (*digicerttest.Server, *dnsPublisher) {
	t.Helper()
	dnsSrv := validationtest.NewDNSServer(t)
	return digicerttest.New(t, digicerttest.Options{Resolver: dnsSrv.Addr()}), newDNSPublisher(dnsSrv)
}

// issuedAtOnce is a brand whose fake account has name pre-validated, with
// revocations approved automatically, and a certificate it issued for
// name in the order answer.
func issuedAtOnce(t *testing.T, name string) (*digicerttest.Server, *digicert.Brand, issuer.Result) {
	t.Helper()
	fake := digicerttest.New(t, digicerttest.Options{PrevalidatedDomains: []string{name}})
	b := newBrand(t, fake, digicert.Config{Product: "ssl_basic", OrganizationID: 3, SkipApproval: true})
	res, err := b.Submit(context.Background(), request(t, name))
	if err != nil || len(res.Chain) == 0 {
		t.Fatalf("Submit = %+v, %v; want the chain", res, err)
	}
	return fake, b, res
}

// TestIssuedResultsCarryTheCertificateID: each way a chain comes back (the
// order answer, check-dcv finding the order issued, the order info saying
// issued) sets Ref to the certificate id RevokeRef revokes by.
func TestIssuedResultsCarryTheCertificateID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("order answer", func(t *testing.T) {
		t.Parallel()
		fake, _, res := issuedAtOnce(t, "now.example.com")
		wantRef(t, fake, lastOrder(t, fake), res)
	})

	t.Run("check-dcv", func(t *testing.T) {
		t.Parallel()
		fake, pub := fakeWithDNS(t)
		b := newBrand(t, fake, digicert.Config{Product: "ssl_dv_geotrust", Publisher: pub})
		res, err := b.Submit(ctx, request(t, "dcv.example"))
		if err != nil || res.Ref != "" {
			t.Fatalf("Submit = %+v, %v; want a ticket without Ref", res, err)
		}
		if res, err = b.Poll(ctx, res.Ticket); err != nil || len(res.Chain) == 0 {
			t.Fatalf("Poll = %+v, %v; want the chain", res, err)
		}
		wantRef(t, fake, lastOrder(t, fake), res)
	})

	t.Run("order info", func(t *testing.T) {
		t.Parallel()
		fake, pub := fakeWithDNS(t)
		b := newBrand(t, fake, digicert.Config{Product: "ssl_securesite_pro", OrganizationID: 5,
			Publisher: pub, ReviewPollInterval: time.Hour})
		res, err := b.Submit(ctx, request(t, "review.example"))
		if err != nil {
			t.Fatal(err)
		}
		// The first Poll completes DCV; the review still holds the order.
		if res, err = b.Poll(ctx, res.Ticket); err != nil || res.Ticket == "" {
			t.Fatalf("Poll = %+v, %v; want pending", res, err)
		}
		id := lastOrder(t, fake)
		if err := fake.Approve(id); err != nil {
			t.Fatal(err)
		}
		if res, err = b.Poll(ctx, res.Ticket); err != nil || len(res.Chain) == 0 {
			t.Fatalf("Poll after Approve = %+v, %v; want the chain", res, err)
		}
		wantRef(t, fake, id, res)
	})
}

// TestRevokeRefRevokesByID: RevokeRef revokes the certificate its ref
// names with the one revoke call, without searching by serial, and leaves
// another certificate for the same name alone.
func TestRevokeRefRevokesByID(t *testing.T) {
	t.Parallel()
	fake, b, _ := issuedAtOnce(t, "ref.example")
	ctx := context.Background()
	otherID := lastOrder(t, fake)
	res, err := b.Submit(ctx, request(t, "ref.example"))
	if err != nil {
		t.Fatal(err)
	}
	id := lastOrder(t, fake)

	before := len(fake.Exchanges())
	var rr issuer.RefRevoker = b
	if err := rr.RevokeRef(ctx, res.Ref, res.Leaf, 4); err != nil {
		t.Fatalf("RevokeRef: %v", err)
	}
	o, _ := fake.Order(id)
	var calls []string
	for _, ex := range fake.Exchanges()[before:] {
		calls = append(calls, ex.Method+" "+ex.Path)
	}
	if want := "PUT certificate/" + res.Ref + "/revoke"; len(calls) != 1 || calls[0] != want {
		t.Errorf("RevokeRef made %q; want only %q", calls, want)
	}
	revs := fake.Revocations()
	if len(revs) != 1 || revs[0].CertificateID != o.CertificateID || revs[0].Serial != o.Serial || revs[0].Reason != "superseded" {
		t.Errorf("revocations %+v; want order %d's certificate %d for superseded", revs, id, o.CertificateID)
	}
	if o.Status != "revoked" {
		t.Errorf("order %d is %q after RevokeRef", id, o.Status)
	}
	if other, _ := fake.Order(otherID); other.Status != "issued" {
		t.Errorf("the other order for the name is %q", other.Status)
	}
}

// TestRevokeRefWithoutIDSearches: a ref that is empty (stored before the
// brand set Ref) or no certificate id falls back to Revoke's search.
func TestRevokeRefWithoutIDSearches(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"", "order-12", "0", "0042"} {
		t.Run("ref="+ref, func(t *testing.T) {
			t.Parallel()
			fake, b, res := issuedAtOnce(t, "fb.example")
			before := len(fake.Exchanges())
			if err := b.RevokeRef(context.Background(), ref, res.Leaf, 1); err != nil {
				t.Fatalf("RevokeRef(%q): %v", ref, err)
			}
			if n := searches(fake, before); n != 1 {
				t.Errorf("%d searches by serial, want 1", n)
			}
			o, _ := fake.Order(lastOrder(t, fake))
			if revs := fake.Revocations(); len(revs) != 1 || revs[0].CertificateID != o.CertificateID {
				t.Errorf("revocations %+v, want certificate %d", revs, o.CertificateID)
			}
		})
	}
}

// TestRevokeRefUnknownID: a certificate id DigiCert does not know is
// DigiCert's permanent not-found error, and nothing is revoked.
func TestRevokeRefUnknownID(t *testing.T) {
	t.Parallel()
	fake, b, res := issuedAtOnce(t, "unknown.example")
	before := len(fake.Exchanges())
	err := b.RevokeRef(context.Background(), "999999999", res.Leaf, 1)
	if err == nil || !issuer.IsPermanent(err) || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("RevokeRef of an unknown id = %v, want DigiCert's permanent not_found", err)
	}
	if revs := fake.Revocations(); len(revs) != 0 {
		t.Errorf("revocations %+v, want none", revs)
	}
	if n := searches(fake, before); n != 0 {
		t.Errorf("%d searches by serial, want none", n)
	}
	if o, _ := fake.Order(lastOrder(t, fake)); o.Status != "issued" {
		t.Errorf("order is %q, want still issued", o.Status)
	}
}
