package storagetest

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// testNonce: a nonce redeems once, others stay unaffected, and a nonce
// already expired is refused without being marked.
func testNonce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	n := newID(t, "nonce")
	exp := time.Now().Add(time.Minute)
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || !ok {
		t.Fatalf("first RedeemNonce = %v, %v; want true", ok, err)
	}
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || ok {
		t.Fatalf("second RedeemNonce = %v, %v; want false", ok, err)
	}
	if ok, err := s.RedeemNonce(ctx, n, exp.Add(time.Hour)); err != nil || ok {
		t.Fatalf("RedeemNonce of a used nonce with a later expiry = %v, %v; want false", ok, err)
	}
	if ok, err := s.RedeemNonce(ctx, newID(t, "nonce"), exp); err != nil || !ok {
		t.Fatalf("RedeemNonce(another nonce) = %v, %v; want true", ok, err)
	}

	stale := newID(t, "nonce")
	if ok, err := s.RedeemNonce(ctx, stale, time.Now().Add(-time.Second)); err != nil || ok {
		t.Fatalf("RedeemNonce(expired) = %v, %v; want false", ok, err)
	}
	// Refusing it marked nothing: the caller never accepts an expired
	// nonce, but a store that marked it would leak the mark forever.
	if ok, err := s.RedeemNonce(ctx, stale, exp); err != nil || !ok {
		t.Fatalf("RedeemNonce after an expired attempt = %v, %v; want true", ok, err)
	}
}

// testNonceExpiry: a used nonce's mark lasts until its expiry and no longer,
// so used nonces take no space once they could not be accepted anyway.
func testNonceExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	n := newID(t, "nonce")
	exp := time.Now().Add(NonceTTLShort)
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || !ok {
		t.Fatalf("RedeemNonce = %v, %v; want true", ok, err)
	}
	time.Sleep(NonceTTLShort / 2)
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || ok {
		t.Fatalf("RedeemNonce before expiry = %v, %v; want false (used)", ok, err)
	}
	time.Sleep(NonceTTLShort/2 + 500*time.Millisecond)
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || ok {
		t.Fatalf("RedeemNonce after expiry = %v, %v; want false", ok, err)
	}
	// Only a mark that expired lets the same name through with a new expiry.
	if ok, err := s.RedeemNonce(ctx, n, time.Now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("RedeemNonce with a new expiry after the mark expired = %v, %v; want true", ok, err)
	}
}

// testConcurrentNonce: of many concurrent redemptions of one nonce, through
// both methods, exactly one wins.
func testConcurrentNonce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)
	n := newID(t, "nonce")
	exp := time.Now().Add(time.Minute)
	var wins atomic.Int32
	errs := race(func(i int) error {
		var ok bool
		var err error
		if i%2 == 0 {
			ok, err = s.RedeemNonce(ctx, n, exp)
		} else {
			var got *storage.Account
			ok, got, err = s.RedeemNonceGetAccount(ctx, n, exp, a.ID, nil)
			if ok && (got == nil || got.ID != a.ID) {
				t.Errorf("racer %d won with account %+v", i, got)
			}
		}
		if ok {
			wins.Add(1)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
	}
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d of %d concurrent redemptions of one nonce won, want exactly 1", w, racers)
	}
}

// testNonceSecret: the secret is created once and every later or concurrent
// call, like another instance on the same store, gets the same one.
func testNonceSecret(t *testing.T, s storage.Store) {
	ctx := t.Context()
	var (
		mu      sync.Mutex
		secrets [][]byte
	)
	errs := race(func(int) error {
		b, err := s.NonceSecret(ctx)
		mu.Lock()
		secrets = append(secrets, b)
		mu.Unlock()
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: NonceSecret: %v", i, err)
		}
	}
	first := secrets[0]
	if len(first) < 32 {
		t.Fatalf("NonceSecret is %d bytes, want at least 32", len(first))
	}
	for i, b := range secrets {
		if !bytes.Equal(b, first) {
			t.Fatalf("NonceSecret call %d returned another secret", i)
		}
	}
	again, err := s.NonceSecret(ctx)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("NonceSecret later = %x, %v; want the first secret", again, err)
	}
	again[0] ^= 0xff // the caller's copy is its own
	if b, _ := s.NonceSecret(ctx); !bytes.Equal(b, first) {
		t.Fatal("editing a returned secret changed the stored one")
	}
}

// testNonceAccount: RedeemNonceGetAccount redeems like RedeemNonce and
// returns the account, or ErrNotFound, only to the redeemer.
func testNonceAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)
	exp := time.Now().Add(time.Minute)

	n := newID(t, "nonce")
	ok, got, err := s.RedeemNonceGetAccount(ctx, n, exp, a.ID, nil)
	if err != nil || !ok {
		t.Fatalf("RedeemNonceGetAccount = %v, %v; want true", ok, err)
	}
	sameRecord(t, "account", got, a)
	ok, got, err = s.RedeemNonceGetAccount(ctx, n, exp, a.ID, nil)
	if err != nil || ok || got != nil {
		t.Fatalf("RedeemNonceGetAccount(used) = %v, %+v, %v; want false, nil, nil", ok, got, err)
	}
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || ok {
		t.Fatalf("RedeemNonce after RedeemNonceGetAccount = %v, %v; want false", ok, err)
	}

	// The account read sees the latest version.
	a.Status = storage.StatusDeactivated
	wantErr(t, "UpdateAccount", s.UpdateAccount(ctx, a), nil)
	ok, got, err = s.RedeemNonceGetAccount(ctx, newID(t, "nonce"), exp, a.ID, nil)
	if err != nil || !ok || got == nil || got.Status != storage.StatusDeactivated || got.Version != a.Version {
		t.Fatalf("RedeemNonceGetAccount after an update = %v, %+v, %v; want the deactivated account", ok, got, err)
	}

	// A missing account still spends the nonce.
	m := newID(t, "nonce")
	ok, got, err = s.RedeemNonceGetAccount(ctx, m, exp, newID(t, "acct"), nil)
	wantErr(t, "RedeemNonceGetAccount(missing account)", err, storage.ErrNotFound)
	if !ok || got != nil {
		t.Fatalf("RedeemNonceGetAccount(missing account) = %v, %+v; want true, nil", ok, got)
	}
	if ok, err := s.RedeemNonce(ctx, m, exp); err != nil || ok {
		t.Fatalf("RedeemNonce after a missing account = %v, %v; want false", ok, err)
	}

	// An expired nonce is refused before the account matters.
	ok, got, err = s.RedeemNonceGetAccount(ctx, newID(t, "nonce"), time.Now().Add(-time.Second), a.ID, nil)
	if err != nil || ok || got != nil {
		t.Fatalf("RedeemNonceGetAccount(expired) = %v, %+v, %v; want false, nil, nil", ok, got, err)
	}
}

// testNoncePrefetch: RedeemNonceGetAccount reads the record a Prefetch
// names, as the matching Get would (the latest version, or ErrNotFound),
// and reads nothing for a nonce it refuses.
func testNoncePrefetch(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAccount(t)
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, a), nil)
	o, authzs := newOrder(t, a.ID, "prefetch.example")
	wantErr(t, "CreateOrder", s.CreateOrder(ctx, o, authzs), nil)
	authzs[0].Status = storage.StatusValid
	wantErr(t, "UpdateAuthorization", s.UpdateAuthorization(ctx, authzs[0]), nil)
	c := newCertificate(t)
	c.AccountID = a.ID
	wantErr(t, "CreateCertificate", s.CreateCertificate(ctx, c), nil)
	exp := time.Now().Add(time.Minute)

	redeem := func(kind storage.PrefetchKind, id string) *storage.Prefetch {
		t.Helper()
		pf := &storage.Prefetch{Kind: kind, ID: id}
		ok, got, err := s.RedeemNonceGetAccount(ctx, newID(t, "nonce"), exp, a.ID, pf)
		if err != nil || !ok {
			t.Fatalf("RedeemNonceGetAccount(prefetch %d %s) = %v, %v; want true", kind, id, ok, err)
		}
		sameRecord(t, "account", got, a)
		if !pf.Read {
			t.Fatalf("prefetch %d %s: Read is false after a redeemed nonce", kind, id)
		}
		return pf
	}
	pf := redeem(storage.PrefetchOrder, o.ID)
	wantErr(t, "prefetched order", pf.Err, nil)
	sameRecord(t, "prefetched order", pf.Order, o)
	if pf.Authorization != nil || pf.Certificate != nil {
		t.Fatalf("order prefetch filled other kinds: %+v", pf)
	}
	pf = redeem(storage.PrefetchAuthorization, authzs[0].ID)
	wantErr(t, "prefetched authorization", pf.Err, nil)
	sameRecord(t, "prefetched authorization", pf.Authorization, authzs[0])
	pf = redeem(storage.PrefetchCertificate, c.Serial)
	wantErr(t, "prefetched certificate", pf.Err, nil)
	sameRecord(t, "prefetched certificate", pf.Certificate, c)

	for _, kind := range []storage.PrefetchKind{storage.PrefetchOrder, storage.PrefetchAuthorization, storage.PrefetchCertificate} {
		pf = redeem(kind, newID(t, "missing"))
		wantErr(t, "prefetch of a missing record", pf.Err, storage.ErrNotFound)
		if pf.Order != nil || pf.Authorization != nil || pf.Certificate != nil {
			t.Fatalf("prefetch of a missing record returned one: %+v", pf)
		}
	}

	// A used nonce reads nothing, so a replayed request learns nothing.
	n := newID(t, "nonce")
	if ok, err := s.RedeemNonce(ctx, n, exp); err != nil || !ok {
		t.Fatalf("RedeemNonce = %v, %v", ok, err)
	}
	pf = &storage.Prefetch{Kind: storage.PrefetchOrder, ID: o.ID}
	ok, got, err := s.RedeemNonceGetAccount(ctx, n, exp, a.ID, pf)
	if ok || got != nil || err != nil || pf.Read || pf.Order != nil {
		t.Fatalf("RedeemNonceGetAccount(used nonce, prefetch) = %v, %+v, %v, %+v; want nothing read", ok, got, err, pf)
	}
}

// BenchNonce measures the store work of one ACME POST's nonce: a
// RedeemNonce, and a RedeemNonceGetAccount (a "kid" request), both from one
// goroutine and from GOMAXPROCS.
func BenchNonce(b *testing.B, s storage.Store) {
	ctx := context.Background()
	a := newAccount(b)
	if err := s.CreateAccount(ctx, a); err != nil {
		b.Fatal(err)
	}
	redeem := func(b *testing.B, n string, withAccount bool) {
		exp := time.Now().Add(time.Minute)
		var ok bool
		var err error
		if withAccount {
			ok, _, err = s.RedeemNonceGetAccount(ctx, n, exp, a.ID, nil)
		} else {
			ok, err = s.RedeemNonce(ctx, n, exp)
		}
		if err != nil || !ok {
			b.Fatalf("redeem = %v, %v; want true", ok, err)
		}
	}
	for _, withAccount := range []bool{false, true} {
		name := "RedeemNonce"
		if withAccount {
			name = "RedeemNonceGetAccount"
		}
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			w := newID(b, name) + "-"
			i := 0
			for b.Loop() {
				redeem(b, w+strconv.Itoa(i), withAccount)
				i++
			}
		})
		// parallel has one caller per CPU; parallel64 at least 64 (a
		// multiple of the CPUs), as many as the requests in flight under
		// "acmegw bench --clients 64".
		for _, par := range []struct {
			name string
			per  int // callers per CPU
		}{{"parallel", 1}, {"parallel64", (64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)}} {
			b.Run(name+"/"+par.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(par.per)
				b.RunParallel(func(pb *testing.PB) {
					// A fresh prefix per goroutine and per run: RunParallel
					// is called again for each b.N the benchmark tries.
					w := newID(b, name) + "-"
					for i := 0; pb.Next(); i++ {
						redeem(b, w+strconv.Itoa(i), withAccount)
					}
				})
			})
		}
	}
}
