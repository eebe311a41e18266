package redis

import (
	"context"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
)

// TestRecordCache: a record read twice is decoded once (the second read
// comes from the cache, as a copy of its own), and a record another
// instance rewrote is read afresh, never from the cache.
func TestRecordCache(t *testing.T) {
	url := testredis.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func() *Store {
		s, err := New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	acct := &storage.Account{ID: "cache-acct", KeyJWK: []byte(`{"kty":"EC"}`), Thumbprint: "cache-tp", Status: storage.StatusValid, Contact: []string{"mailto:a@example.com"}}
	if err := a.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	first, err := a.GetAccount(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := a.records.Len()
	second, err := a.GetAccount(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.records.Len(); got != n || n == 0 {
		t.Errorf("cache holds %d records after the first read and %d after the second; want the same, not zero", n, got)
	}
	if first == second || &first.Contact[0] == &second.Contact[0] {
		t.Error("two reads share memory: the cache must hand out copies")
	}
	first.Contact[0] = "mailto:changed@example.com"
	if third, _ := a.GetAccount(ctx, acct.ID); third.Contact[0] != "mailto:a@example.com" {
		t.Errorf("a caller's edit reached the cache: %q", third.Contact[0])
	}

	// Instance b deactivates the account: a sees it at once.
	upd, err := b.GetAccount(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	upd.Status = storage.StatusDeactivated
	if err := b.UpdateAccount(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetAccount(ctx, acct.ID)
	if err != nil || got.Status != storage.StatusDeactivated || got.Version != upd.Version {
		t.Fatalf("after another instance's update: %+v, %v; want deactivated at version %d", got, err, upd.Version)
	}
}

// TestRecordCacheBounds: a record read for a request naming no existing
// account is not decoded (nor cached), and records over maxCachedRecord
// (certificates with their chains) are decoded without being kept.
func TestRecordCacheBounds(t *testing.T) {
	url := testredis.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	big := &storage.Certificate{Serial: "b1", AccountID: "owner", ChainPEM: make([]byte, 2*maxCachedRecord), Status: storage.StatusValid, NotAfter: time.Now().Add(time.Hour)}
	if err := s.CreateCertificate(ctx, big); err != nil {
		t.Fatal(err)
	}
	pf := &storage.Prefetch{Kind: storage.PrefetchCertificate, ID: big.Serial}
	ok, _, err := s.RedeemNonceGetAccount(ctx, "n-anon", time.Now().Add(time.Minute), "no-such-account", pf)
	if !ok || err == nil || pf.Read || pf.Certificate != nil {
		t.Fatalf("prefetch for a missing account = %v, %v, %+v; want the nonce spent, ErrNotFound and nothing read", ok, err, pf)
	}
	if n := s.records.Len(); n != 0 {
		t.Errorf("%d records cached after a request naming no account", n)
	}
	got, err := s.GetCertificate(ctx, big.Serial)
	if err != nil || len(got.ChainPEM) != len(big.ChainPEM) {
		t.Fatalf("GetCertificate = %v, %v", got, err)
	}
	if n := s.records.Len(); n != 0 {
		t.Errorf("a %d-byte record was cached; the bound is %d", len(big.ChainPEM), maxCachedRecord)
	}
}
