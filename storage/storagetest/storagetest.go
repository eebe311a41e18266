// Package storagetest is the conformance suite every storage.Store
// implementation must pass, so that the embedded and the shared store behave
// the same for the ACME layer above them.
//
// The suite writes only records with fresh random ids, so it can run against
// a store shared with other tests (e.g. one Redis server) without flushing it.
package storagetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// NonceTTLShort is the lifetime the suite gives a nonce it expects to
// expire; the test sleeps a little longer than this.
const NonceTTLShort = 1500 * time.Millisecond

// Run runs the whole suite. newStore must return an empty or shared store for
// one subtest and arrange (with t.Cleanup) for it to be closed. Subtests run
// in parallel, each with its own store. The job cases (jobs.go) need that
// store's job queue to themselves, even when other records are shared.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Account", testAccount},
		{"AccountDuplicate", testAccountDuplicate},
		{"AccountUpdate", testAccountUpdate},
		{"KeyRollover", testKeyRollover},
		{"KeyRolloverTaken", testKeyRolloverTaken},
		{"Order", testOrder},
		{"OrderDuplicate", testOrderDuplicate},
		{"OrderUpdate", testOrderUpdate},
		{"AuthorizationUpdate", testAuthorizationUpdate},
		{"AuthorizationUpdateIndexed", testAuthorizationUpdateIndexed},
		{"ListOrders", testListOrders},
		{"Certificate", testCertificate},
		{"Nonce", testNonce},
		{"NonceExpiry", testNonceExpiry},
		{"NonceSecret", testNonceSecret},
		{"NonceAccount", testNonceAccount},
		{"NoncePrefetch", testNoncePrefetch},
		{"Copies", testCopies},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"ConcurrentNonce", testConcurrentNonce},
		{"ConcurrentCreate", testConcurrentCreate},
		{"LatestCertificate", testLatestCertificate},
		{"RateLimitBurst", testRateLimitBurst},
		{"RateLimitRefill", testRateLimitRefill},
		{"RateLimitCost", testRateLimitCost},
		{"RateLimitChange", testRateLimitChange},
		{"RateLimitKeys", testRateLimitKeys},
		{"RateLimitConcurrent", testRateLimitConcurrent},
		{"RateLimitBatch", testRateLimitBatch},
		{"RateLimitBatchConcurrent", testRateLimitBatchConcurrent},
		{"RateLimitRenewal", testRateLimitRenewal},
		{"EABKey", testEABKey},
		{"OrderKey", testOrderKey},
		{"OrderKeysBatch", testOrderKeysBatch},
		{"JobEnqueue", testJobEnqueue},
		{"JobClaimOrder", testJobClaimOrder},
		{"JobLease", testJobLease},
		{"JobConcurrentClaim", testJobConcurrentClaim},
		{"JobStats", testJobStats},
		{"JobFinish", testJobFinish},
		{"OrderReview", testOrderReview},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// newID returns a random id with a readable prefix, unique across runs.
func newID(t testing.TB, prefix string) string {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// at is a fixed instant, so that round trips compare exactly.
var at = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func newAccount(t testing.TB) *storage.Account {
	return &storage.Account{
		ID:          newID(t, "acct"),
		KeyJWK:      []byte(`{"kty":"EC","crv":"P-256","x":"a","y":"b"}`),
		Thumbprint:  newID(t, "tp"),
		Status:      storage.StatusValid,
		Contact:     []string{"mailto:admin@example.com", "mailto:ops@example.com"},
		TermsAgreed: true,
		EABKeyID:    "team-a",
		CreatedAt:   at,
	}
}

func newAuthz(t testing.TB, accountID, name string) *storage.Authorization {
	return &storage.Authorization{
		ID:         newID(t, "authz"),
		AccountID:  accountID,
		Identifier: storage.Identifier{Type: "dns", Value: name},
		Status:     storage.StatusPending,
		Expires:    at.Add(7 * 24 * time.Hour),
		Challenges: []storage.Challenge{
			{ID: newID(t, "chall"), Type: "http-01", Token: "tok-http", Status: storage.StatusPending},
			{ID: newID(t, "chall"), Type: "dns-01", Token: "tok-dns", Status: storage.StatusPending},
		},
	}
}

// newOrder returns an order with one authorization per name.
func newOrder(t testing.TB, accountID string, names ...string) (*storage.Order, []*storage.Authorization) {
	o := &storage.Order{
		ID:        newID(t, "order"),
		AccountID: accountID,
		Status:    storage.StatusPending,
		NotBefore: at,
		NotAfter:  at.Add(90 * 24 * time.Hour),
		Expires:   at.Add(7 * 24 * time.Hour),
		Profile:   "default",
		Brand:     "local",
		CreatedAt: at,
	}
	var authzs []*storage.Authorization
	for _, n := range names {
		a := newAuthz(t, accountID, n)
		o.Identifiers = append(o.Identifiers, a.Identifier)
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
		authzs = append(authzs, a)
	}
	return o, authzs
}

func newCertificate(t testing.TB) *storage.Certificate {
	return &storage.Certificate{
		Serial:          newID(t, "0a1b"),
		AccountID:       newID(t, "acct"),
		OrderID:         newID(t, "order"),
		Brand:           "local",
		ChainPEM:        []byte("-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n"),
		AlternateChains: [][]byte{[]byte("alt-one"), []byte("alt-two")},
		Names:           []string{"a.example", "b.example"},
		NotBefore:       at,
		NotAfter:        at.Add(90 * 24 * time.Hour),
		Status:          storage.StatusValid,
		OrderReuseKey:   "acct:0123abcd",
	}
}

// sameRecord fails the test unless got and want encode to the same JSON,
// which covers every field including the version.
func sameRecord(t testing.TB, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs:\n got  %s\n want %s", what, g, w)
	}
}

// wantErr fails the test unless errors.Is(err, want) (or err is nil when want is).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func testAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	a.Version = 42 // ignored: Create always stores version 1
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)
	if a.Version != 1 {
		t.Errorf("after CreateAccount, Version = %d, want 1", a.Version)
	}

	got, err := s.GetAccount(ctx, a.ID)
	wantErr(t, "GetAccount", err, nil)
	sameRecord(t, "GetAccount", got, a)

	got, err = s.GetAccountByThumbprint(ctx, a.Thumbprint)
	wantErr(t, "GetAccountByThumbprint", err, nil)
	sameRecord(t, "GetAccountByThumbprint", got, a)

	_, err = s.GetAccount(ctx, newID(t, "missing"))
	wantErr(t, "GetAccount(missing)", err, storage.ErrNotFound)
	_, err = s.GetAccountByThumbprint(ctx, newID(t, "missing"))
	wantErr(t, "GetAccountByThumbprint(missing)", err, storage.ErrNotFound)
}

func testAccountDuplicate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)

	sameKey := newAccount(t)
	sameKey.Thumbprint = a.Thumbprint
	wantErr(t, "CreateAccount(same thumbprint)", s.CreateAccount(ctx, sameKey), storage.ErrExists)
	_, err := s.GetAccount(ctx, sameKey.ID)
	wantErr(t, "GetAccount(refused account)", err, storage.ErrNotFound)

	sameID := newAccount(t)
	sameID.ID = a.ID
	wantErr(t, "CreateAccount(same id)", s.CreateAccount(ctx, sameID), storage.ErrExists)
	_, err = s.GetAccountByThumbprint(ctx, sameID.Thumbprint)
	wantErr(t, "GetAccountByThumbprint(refused account)", err, storage.ErrNotFound)
	// The refused create must not have left its thumbprint taken.
	other := newAccount(t)
	other.Thumbprint = sameID.Thumbprint
	wantErr(t, "CreateAccount(thumbprint of refused account)", s.CreateAccount(ctx, other), nil)

	// The original is untouched.
	got, err := s.GetAccountByThumbprint(ctx, a.Thumbprint)
	wantErr(t, "GetAccountByThumbprint", err, nil)
	sameRecord(t, "original account", got, a)
}

func testAccountUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)

	first, _ := s.GetAccount(ctx, a.ID)
	second, _ := s.GetAccount(ctx, a.ID)

	first.Contact = []string{"mailto:new@example.com"}
	wantErr(t, "UpdateAccount", s.UpdateAccount(ctx, first), nil)
	if first.Version != 2 {
		t.Errorf("after UpdateAccount, Version = %d, want 2", first.Version)
	}
	got, _ := s.GetAccount(ctx, a.ID)
	sameRecord(t, "updated account", got, first)

	second.Status = storage.StatusDeactivated
	wantErr(t, "UpdateAccount(stale)", s.UpdateAccount(ctx, second), storage.ErrConflict)
	got, _ = s.GetAccount(ctx, a.ID)
	sameRecord(t, "account after refused update", got, first)

	// The caller's copy carries the new version, so it can update again.
	first.Status = storage.StatusDeactivated
	wantErr(t, "UpdateAccount(again)", s.UpdateAccount(ctx, first), nil)
	if got, _ := s.GetAccount(ctx, a.ID); got.Version != 3 || got.Status != storage.StatusDeactivated {
		t.Errorf("after second update: version %d status %q", got.Version, got.Status)
	}

	missing := newAccount(t)
	missing.Version = 1
	wantErr(t, "UpdateAccount(missing)", s.UpdateAccount(ctx, missing), storage.ErrNotFound)
	_, err := s.GetAccountByThumbprint(ctx, missing.Thumbprint)
	wantErr(t, "GetAccountByThumbprint(missing account's key)", err, storage.ErrNotFound)
}

func testKeyRollover(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)
	oldTP := a.Thumbprint

	a.Thumbprint = newID(t, "tp-new")
	a.KeyJWK = []byte(`{"kty":"EC","crv":"P-256","x":"c","y":"d"}`)
	wantErr(t, "UpdateAccount(rollover)", s.UpdateAccount(ctx, a), nil)

	got, err := s.GetAccountByThumbprint(ctx, a.Thumbprint)
	wantErr(t, "GetAccountByThumbprint(new key)", err, nil)
	sameRecord(t, "account by new key", got, a)
	_, err = s.GetAccountByThumbprint(ctx, oldTP)
	wantErr(t, "GetAccountByThumbprint(old key)", err, storage.ErrNotFound)

	// The old key is free again.
	b := newAccount(t)
	b.Thumbprint = oldTP
	wantErr(t, "CreateAccount(old key)", s.CreateAccount(ctx, b), nil)
	got, err = s.GetAccountByThumbprint(ctx, oldTP)
	wantErr(t, "GetAccountByThumbprint(old key, new owner)", err, nil)
	sameRecord(t, "new owner of old key", got, b)

	// Rolling over and back again keeps the index right.
	newTP := a.Thumbprint
	a.Thumbprint = newID(t, "tp-third")
	wantErr(t, "UpdateAccount(rollover 2)", s.UpdateAccount(ctx, a), nil)
	a.Thumbprint = newTP
	wantErr(t, "UpdateAccount(rollover back)", s.UpdateAccount(ctx, a), nil)
	got, err = s.GetAccountByThumbprint(ctx, newTP)
	wantErr(t, "GetAccountByThumbprint(after rollover back)", err, nil)
	sameRecord(t, "account after rollover back", got, a)
	if a.Version != 4 {
		t.Errorf("Version = %d after three updates, want 4", a.Version)
	}
}

func testKeyRolloverTaken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a, b := newAccount(t), newAccount(t)
	wantErr(t, "CreateAccount(a)", s.CreateAccount(ctx, a), nil)
	wantErr(t, "CreateAccount(b)", s.CreateAccount(ctx, b), nil)

	moved := *a
	moved.Thumbprint = b.Thumbprint
	wantErr(t, "UpdateAccount(onto b's key)", s.UpdateAccount(ctx, &moved), storage.ErrExists)

	got, err := s.GetAccountByThumbprint(ctx, a.Thumbprint)
	wantErr(t, "GetAccountByThumbprint(a)", err, nil)
	sameRecord(t, "a after refused rollover", got, a)
	got, err = s.GetAccountByThumbprint(ctx, b.Thumbprint)
	wantErr(t, "GetAccountByThumbprint(b)", err, nil)
	sameRecord(t, "b after refused rollover", got, b)
}

func testOrder(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct := newID(t, "acct")
	o, authzs := newOrder(t, acct, "a.example", "*.b.example")
	authzs[1].Wildcard = true
	o.Version, authzs[0].Version = 9, 9 // ignored by Create
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
	if o.Version != 1 || authzs[0].Version != 1 || authzs[1].Version != 1 {
		t.Errorf("after CreateOrder, versions = %d, %d, %d; want 1", o.Version, authzs[0].Version, authzs[1].Version)
	}

	got, err := s.GetOrder(ctx, o.ID)
	wantErr(t, "GetOrder", err, nil)
	sameRecord(t, "GetOrder", got, o)
	for _, a := range authzs {
		got, err := s.GetAuthorization(ctx, a.ID)
		wantErr(t, "GetAuthorization", err, nil)
		sameRecord(t, "GetAuthorization", got, a)
	}

	// An order may reuse existing authorizations: it lists their ids but
	// passes no new records.
	reuse, _ := newOrder(t, acct)
	reuse.Identifiers = o.Identifiers
	reuse.AuthzIDs = o.AuthzIDs
	wantErr(t, "CreateOrder(reused authorizations)", s.CreateOrder(ctx, reuse, nil), nil)
	got, err = s.GetOrder(ctx, reuse.ID)
	wantErr(t, "GetOrder(reuse)", err, nil)
	sameRecord(t, "GetOrder(reuse)", got, reuse)

	_, err = s.GetOrder(ctx, newID(t, "missing"))
	wantErr(t, "GetOrder(missing)", err, storage.ErrNotFound)
	_, err = s.GetAuthorization(ctx, newID(t, "missing"))
	wantErr(t, "GetAuthorization(missing)", err, storage.ErrNotFound)
}

func testOrderDuplicate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct := newID(t, "acct")
	o, authzs := newOrder(t, acct, "a.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)

	// Same order id: refused, and its new authorization is not stored.
	dup, dupAuthzs := newOrder(t, acct, "c.example")
	dup.ID = o.ID
	wantErr(t, "CreateOrder(same id)", s.CreateOrder(ctx, dup, dupAuthzs), storage.ErrExists)
	_, err := s.GetAuthorization(ctx, dupAuthzs[0].ID)
	wantErr(t, "GetAuthorization(of refused order)", err, storage.ErrNotFound)
	got, _ := s.GetOrder(ctx, o.ID)
	sameRecord(t, "original order", got, o)

	// An authorization id that is taken: nothing of the order is stored.
	clash, clashAuthzs := newOrder(t, acct, "d.example", "e.example")
	clashAuthzs[1].ID = authzs[0].ID
	clash.AuthzIDs[1] = authzs[0].ID
	wantErr(t, "CreateOrder(taken authorization id)", s.CreateOrder(ctx, clash, clashAuthzs), storage.ErrExists)
	_, err = s.GetOrder(ctx, clash.ID)
	wantErr(t, "GetOrder(refused order)", err, storage.ErrNotFound)
	_, err = s.GetAuthorization(ctx, clashAuthzs[0].ID)
	wantErr(t, "GetAuthorization(of refused order)", err, storage.ErrNotFound)
	gotA, _ := s.GetAuthorization(ctx, authzs[0].ID)
	sameRecord(t, "original authorization", gotA, authzs[0])

	ids, next, err := s.ListOrders(ctx, acct, "", 10)
	wantErr(t, "ListOrders", err, nil)
	if len(ids) != 1 || ids[0] != o.ID || next != "" {
		t.Errorf("ListOrders after refused creates = %v, %q; want [%s], \"\"", ids, next, o.ID)
	}
}

func testOrderUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, authzs := newOrder(t, newID(t, "acct"), "a.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)

	stale, _ := s.GetOrder(ctx, o.ID)
	o.Status = storage.StatusReady
	wantErr(t, "UpdateOrder", s.UpdateOrder(ctx, o), nil)
	o.Status = storage.StatusProcessing
	wantErr(t, "UpdateOrder(again)", s.UpdateOrder(ctx, o), nil)
	if o.Version != 3 {
		t.Errorf("Version = %d after two updates, want 3", o.Version)
	}

	stale.Status = storage.StatusInvalid
	stale.Error = &storage.Problem{Type: "unauthorized", Detail: "no"}
	wantErr(t, "UpdateOrder(stale)", s.UpdateOrder(ctx, stale), storage.ErrConflict)

	o.Status = storage.StatusInvalid
	o.CertSerial = ""
	o.Error = &storage.Problem{Type: "rejectedIdentifier", Detail: "blocked", Identifier: &storage.Identifier{Type: "dns", Value: "a.example"}}
	wantErr(t, "UpdateOrder(with problem)", s.UpdateOrder(ctx, o), nil)
	got, _ := s.GetOrder(ctx, o.ID)
	sameRecord(t, "updated order", got, o)

	missing, _ := newOrder(t, newID(t, "acct"))
	missing.Version = 1
	wantErr(t, "UpdateOrder(missing)", s.UpdateOrder(ctx, missing), storage.ErrNotFound)
}

func testAuthorizationUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, authzs := newOrder(t, newID(t, "acct"), "a.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)

	a, _ := s.GetAuthorization(ctx, authzs[0].ID)
	stale, _ := s.GetAuthorization(ctx, authzs[0].ID)
	a.Status = storage.StatusValid
	a.Challenges[0].Status = storage.StatusValid
	a.Challenges[0].Validated = at.Add(time.Minute)
	a.Challenges[1].Error = &storage.Problem{Type: "dns", Detail: "NXDOMAIN"}
	wantErr(t, "UpdateAuthorization", s.UpdateAuthorization(ctx, a), nil)
	if a.Version != 2 {
		t.Errorf("Version = %d, want 2", a.Version)
	}
	got, _ := s.GetAuthorization(ctx, a.ID)
	sameRecord(t, "updated authorization", got, a)

	stale.Status = storage.StatusInvalid
	wantErr(t, "UpdateAuthorization(stale)", s.UpdateAuthorization(ctx, stale), storage.ErrConflict)
	got, _ = s.GetAuthorization(ctx, a.ID)
	sameRecord(t, "authorization after refused update", got, a)

	missing := newAuthz(t, "x", "b.example")
	missing.Version = 1
	wantErr(t, "UpdateAuthorization(missing)", s.UpdateAuthorization(ctx, missing), storage.ErrNotFound)
}

// testAuthorizationUpdateIndexed: the update is UpdateAuthorization's (a
// compare-and-swap) and, when it is made, the index names the
// authorization until ttl passes.
func testAuthorizationUpdateIndexed(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, authzs := newOrder(t, newID(t, "acct"), "a.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
	a, _ := s.GetAuthorization(ctx, authzs[0].ID)
	stale, _ := s.GetAuthorization(ctx, authzs[0].ID)
	a.Status = storage.StatusValid
	key := newID(t, "authz|reuse")
	err, indexErr := s.UpdateAuthorizationIndexed(ctx, a, key, time.Minute)
	wantErr(t, "UpdateAuthorizationIndexed", err, nil)
	wantErr(t, "UpdateAuthorizationIndexed's index", indexErr, nil)
	if a.Version != 2 {
		t.Errorf("Version = %d, want 2", a.Version)
	}
	got, _ := s.GetAuthorization(ctx, a.ID)
	sameRecord(t, "updated authorization", got, a)
	if id, err := s.GetOrderKey(ctx, key); err != nil || id != a.ID {
		t.Errorf("index after UpdateAuthorizationIndexed = %q, %v; want %q", id, err, a.ID)
	}

	stale.Status = storage.StatusInvalid
	err, _ = s.UpdateAuthorizationIndexed(ctx, stale, newID(t, "authz|reuse"), time.Minute)
	wantErr(t, "UpdateAuthorizationIndexed(stale)", err, storage.ErrConflict)
	got, _ = s.GetAuthorization(ctx, a.ID)
	sameRecord(t, "authorization after refused update", got, a)

	missing := newAuthz(t, "x", "b.example")
	missing.Version = 1
	err, _ = s.UpdateAuthorizationIndexed(ctx, missing, newID(t, "authz|reuse"), time.Minute)
	wantErr(t, "UpdateAuthorizationIndexed(missing)", err, storage.ErrNotFound)
}

func testListOrders(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct, other := newID(t, "acct"), newID(t, "acct")
	var want []string
	for i := range 7 {
		o, authzs := newOrder(t, acct, fmt.Sprintf("n%d.example", i))
		wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
		want = append(want, o.ID)
		// Interleave another account's orders; they must not show up.
		x, xa := newOrder(t, other, "x.example")
		wantErr(t, "CreateOrder(other account)", s.CreateOrder(ctx, x, xa), nil)
	}

	for _, limit := range []int{1, 2, 3, 7, 10} {
		var got []string
		cursor, pages := "", 0
		for {
			ids, next, err := s.ListOrders(ctx, acct, cursor, limit)
			wantErr(t, "ListOrders", err, nil)
			pages++
			if len(ids) > limit {
				t.Fatalf("limit %d: page of %d ids", limit, len(ids))
			}
			if next != "" && len(ids) != limit {
				t.Fatalf("limit %d: short page of %d ids with next %q", limit, len(ids), next)
			}
			got = append(got, ids...)
			if next == "" {
				break
			}
			if pages > 10 {
				t.Fatalf("limit %d: no end after %d pages", limit, pages)
			}
			cursor = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("limit %d: listed %v, want %v", limit, got, want)
		}
		if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d (no empty last page)", limit, pages, wantPages)
		}
	}

	// A cursor stays valid while the account gets more orders.
	ids, next, err := s.ListOrders(ctx, acct, "", 4)
	wantErr(t, "ListOrders", err, nil)
	o, authzs := newOrder(t, acct, "late.example")
	wantErr(t, "CreateOrder(late)", s.CreateOrder(ctx, o, authzs), nil)
	rest, next2, err := s.ListOrders(ctx, acct, next, 10)
	wantErr(t, "ListOrders(rest)", err, nil)
	all := append(append([]string{}, ids...), rest...)
	if fmt.Sprint(all) != fmt.Sprint(append(want, o.ID)) || next2 != "" {
		t.Errorf("after adding an order: listed %v (next %q), want %v", all, next2, append(want, o.ID))
	}

	ids, next, err = s.ListOrders(ctx, acct, "", 0)
	wantErr(t, "ListOrders(limit 0)", err, nil)
	if len(ids) == 0 {
		t.Errorf("ListOrders(limit 0) = %v, %q; want a non-empty default page", ids, next)
	}

	ids, next, err = s.ListOrders(ctx, newID(t, "nobody"), "", 10)
	wantErr(t, "ListOrders(no orders)", err, nil)
	if len(ids) != 0 || next != "" {
		t.Errorf("ListOrders(no orders) = %v, %q; want none", ids, next)
	}
	ids, next, err = s.ListOrders(ctx, acct, "1000", 10)
	wantErr(t, "ListOrders(past the end)", err, nil)
	if len(ids) != 0 || next != "" {
		t.Errorf("ListOrders(past the end) = %v, %q; want none", ids, next)
	}
	if _, _, err := s.ListOrders(ctx, acct, "not-a-cursor", 10); err == nil {
		t.Error("ListOrders(bad cursor) succeeded")
	}
}

func testCertificate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newCertificate(t)
	wantErr(t, "CreateCertificate", s.CreateCertificate(ctx, c), nil)
	if c.Version != 1 {
		t.Errorf("after CreateCertificate, Version = %d, want 1", c.Version)
	}
	got, err := s.GetCertificate(ctx, c.Serial)
	wantErr(t, "GetCertificate", err, nil)
	sameRecord(t, "GetCertificate", got, c)

	dup := newCertificate(t)
	dup.Serial = c.Serial
	wantErr(t, "CreateCertificate(same serial)", s.CreateCertificate(ctx, dup), storage.ErrExists)
	got, _ = s.GetCertificate(ctx, c.Serial)
	sameRecord(t, "certificate after refused create", got, c)

	stale, _ := s.GetCertificate(ctx, c.Serial)
	c.Status = storage.StatusRevoked
	c.RevokedAt = at.Add(time.Hour)
	c.RevocationReason = 4
	wantErr(t, "UpdateCertificate(revoke)", s.UpdateCertificate(ctx, c), nil)
	got, _ = s.GetCertificate(ctx, c.Serial)
	sameRecord(t, "revoked certificate", got, c)
	wantErr(t, "UpdateCertificate(stale)", s.UpdateCertificate(ctx, stale), storage.ErrConflict)

	_, err = s.GetCertificate(ctx, newID(t, "ff"))
	wantErr(t, "GetCertificate(missing)", err, storage.ErrNotFound)
	missing := newCertificate(t)
	missing.Version = 1
	wantErr(t, "UpdateCertificate(missing)", s.UpdateCertificate(ctx, missing), storage.ErrNotFound)
}

// testCopies checks that neither the record passed in nor one handed out
// aliases the stored state: callers edit their copies freely.
func testCopies(t *testing.T, s storage.Store) {
	ctx := t.Context()

	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)
	want := *a
	want.KeyJWK = bytes.Clone(a.KeyJWK)
	want.Contact = append([]string{}, a.Contact...)
	a.KeyJWK[0] = 'X'
	a.Contact[0] = "mailto:changed@example.com"
	got, _ := s.GetAccount(ctx, a.ID)
	sameRecord(t, "account after editing the created copy", got, &want)
	got.KeyJWK[0] = 'Y'
	got.Contact[1] = "mailto:changed@example.com"
	got, _ = s.GetAccountByThumbprint(ctx, a.Thumbprint)
	sameRecord(t, "account after editing a returned copy", got, &want)

	o, authzs := newOrder(t, newID(t, "acct"), "a.example", "b.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
	wantOrder, _ := s.GetOrder(ctx, o.ID)
	wantAuthz, _ := s.GetAuthorization(ctx, authzs[0].ID)
	o.Identifiers[0].Value = "evil.example"
	o.AuthzIDs[0] = "evil"
	authzs[0].Challenges[0].Status = storage.StatusValid
	gotOrder, _ := s.GetOrder(ctx, o.ID)
	gotOrder.Identifiers[1].Value = "evil.example"
	gotOrder.AuthzIDs[1] = "evil"
	gotAuthz, _ := s.GetAuthorization(ctx, authzs[0].ID)
	gotAuthz.Challenges[1].Status = storage.StatusValid
	gotOrder, _ = s.GetOrder(ctx, o.ID)
	sameRecord(t, "order after edits of copies", gotOrder, wantOrder)
	gotAuthz, _ = s.GetAuthorization(ctx, authzs[0].ID)
	sameRecord(t, "authorization after edits of copies", gotAuthz, wantAuthz)

	// Nested pointers set by an update must not alias either.
	gotAuthz.Challenges[0].Error = &storage.Problem{Type: "dns", Detail: "first", Identifier: &storage.Identifier{Type: "dns", Value: "a.example"}}
	wantErr(t, "UpdateAuthorization", s.UpdateAuthorization(ctx, gotAuthz), nil)
	gotAuthz.Challenges[0].Error.Detail = "second"
	gotAuthz.Challenges[0].Error.Identifier.Value = "evil.example"
	stored, _ := s.GetAuthorization(ctx, gotAuthz.ID)
	if p := stored.Challenges[0].Error; p.Detail != "first" || p.Identifier.Value != "a.example" {
		t.Errorf("stored problem changed through the caller's copy: %+v %+v", p, p.Identifier)
	}

	c := newCertificate(t)
	wantErr(t, "CreateCertificate", s.CreateCertificate(ctx, c), nil)
	wantCert, _ := s.GetCertificate(ctx, c.Serial)
	c.ChainPEM[0] = 'X'
	c.AlternateChains[0][0] = 'X'
	c.Names[0] = "evil.example"
	gotCert, _ := s.GetCertificate(ctx, c.Serial)
	gotCert.ChainPEM[1] = 'Y'
	gotCert.AlternateChains[1][0] = 'Y'
	gotCert.Names[1] = "evil.example"
	gotCert, _ = s.GetCertificate(ctx, c.Serial)
	sameRecord(t, "certificate after edits of copies", gotCert, wantCert)
}

// racers is how many goroutines the concurrency tests start at once.
const racers = 50

// race runs fn in racers goroutines released together and returns their errors.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, authzs := newOrder(t, newID(t, "acct"), "a.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)

	errs := race(func(i int) error {
		mine := *o // same version for everybody
		mine.Brand = "brand-" + strconv.Itoa(i)
		return s.UpdateOrder(ctx, &mine)
	})
	winner, wins := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			wins++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("racer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent updates of one version won, want exactly 1", wins, racers)
	}
	got, _ := s.GetOrder(ctx, o.ID)
	if got.Version != 2 || got.Brand != "brand-"+strconv.Itoa(winner) {
		t.Errorf("stored order: version %d brand %q; want 2 and the winner's brand-%d", got.Version, got.Brand, winner)
	}
}

func testConcurrentCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	tp := newID(t, "tp")
	accounts := make([]*storage.Account, racers)
	for i := range accounts {
		accounts[i] = newAccount(t)
		accounts[i].Thumbprint = tp
	}
	errs := race(func(i int) error { return s.CreateAccount(ctx, accounts[i]) })
	winner := checkOneWinner(t, "CreateAccount(same thumbprint)", errs, storage.ErrExists)
	got, err := s.GetAccountByThumbprint(ctx, tp)
	wantErr(t, "GetAccountByThumbprint", err, nil)
	if winner >= 0 && got.ID != accounts[winner].ID {
		t.Errorf("thumbprint indexes %s, but %s won", got.ID, accounts[winner].ID)
	}

	serial := newID(t, "0c")
	certs := make([]*storage.Certificate, racers)
	for i := range certs {
		certs[i] = newCertificate(t)
		certs[i].Serial = serial
	}
	errs = race(func(i int) error { return s.CreateCertificate(ctx, certs[i]) })
	checkOneWinner(t, "CreateCertificate(same serial)", errs, storage.ErrExists)
}

// checkOneWinner expects exactly one nil among errs and loser for the rest;
// it returns the winner's index, or -1.
func checkOneWinner(t *testing.T, what string, errs []error, loser error) int {
	t.Helper()
	winner, wins := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			wins++
		case !errors.Is(err, loser):
			t.Errorf("%s: racer %d: %v, want nil or %v", what, i, err, loser)
		}
	}
	if wins != 1 {
		t.Errorf("%s: %d of %d racers won, want exactly 1", what, wins, len(errs))
	}
	return winner
}

func testPing(t *testing.T, s storage.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
