package storagetest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// spend calls SpendRateLimit and fails the test on an error.
func spend(t *testing.T, s storage.Store, key string, l storage.RateLimit, cost int) storage.RateDecision {
	t.Helper()
	d, err := s.SpendRateLimit(t.Context(), key, l, cost)
	if err != nil {
		t.Fatalf("SpendRateLimit(%s, %+v, %d): %v", key, l, cost, err)
	}
	return d
}

func testRateLimitBurst(t *testing.T, s storage.Store) {
	key := newID(t, "rl")
	l := storage.RateLimit{Count: 5, Period: time.Hour} // one per 12 minutes
	for i := range 5 {
		d := spend(t, s, key, l, 1)
		if !d.Allowed || d.Remaining != 4-i || d.RetryAfter != 0 {
			t.Fatalf("spend %d: %+v; want allowed with %d remaining", i+1, d, 4-i)
		}
	}
	d := spend(t, s, key, l, 1)
	if d.Allowed || d.Remaining != 0 {
		t.Fatalf("spend 6: %+v; want refused with 0 remaining", d)
	}
	if d.RetryAfter <= 11*time.Minute || d.RetryAfter > 12*time.Minute {
		t.Errorf("spend 6: RetryAfter %v; want just under the 12m interval", d.RetryAfter)
	}
	// A refused spend spends nothing: asking again gives the same answer.
	if d2 := spend(t, s, key, l, 1); d2.Allowed || d2.RetryAfter > d.RetryAfter {
		t.Errorf("spend 7: %+v; want refused again, no later than %v", d2, d.RetryAfter)
	}

	// A burst smaller than the count: 3 at once, then one per interval.
	key = newID(t, "rl")
	l = storage.RateLimit{Count: 10, Period: time.Hour, Burst: 3}
	for i := range 3 {
		if d := spend(t, s, key, l, 1); !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("burst 3, spend %d: %+v", i+1, d)
		}
	}
	d = spend(t, s, key, l, 1)
	if d.Allowed || d.RetryAfter <= 5*time.Minute || d.RetryAfter > 6*time.Minute {
		t.Errorf("burst 3, spend 4: %+v; want refused for just under the 6m interval", d)
	}
}

func testRateLimitRefill(t *testing.T, s storage.Store) {
	key := newID(t, "rl")
	l := storage.RateLimit{Count: 2, Period: 200 * time.Millisecond} // one per 100ms
	for i := range 2 {
		if d := spend(t, s, key, l, 1); !d.Allowed {
			t.Fatalf("spend %d refused: %+v", i+1, d)
		}
	}
	d := spend(t, s, key, l, 1)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
		t.Fatalf("spend 3: %+v; want refused for at most 100ms", d)
	}
	time.Sleep(d.RetryAfter + 30*time.Millisecond)
	// A busy machine may oversleep into the next interval, so only the
	// first spend after RetryAfter is certain.
	if d := spend(t, s, key, l, 1); !d.Allowed || d.Remaining > 1 {
		t.Fatalf("after RetryAfter: %+v; want allowed, at most 1 remaining", d)
	}
	// After a whole idle period the full burst is back, and no more (the
	// store may have dropped the key).
	time.Sleep(250 * time.Millisecond)
	if d := spend(t, s, key, l, 0); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("after a quiet period: %+v; want the full burst of 2", d)
	}
}

func testRateLimitCost(t *testing.T, s storage.Store) {
	key := newID(t, "rl")
	l := storage.RateLimit{Count: 10, Period: time.Hour}
	if d := spend(t, s, key, l, 4); !d.Allowed || d.Remaining != 6 {
		t.Fatalf("cost 4: %+v; want allowed, 6 remaining", d)
	}
	d := spend(t, s, key, l, 7)
	if d.Allowed || d.Remaining != 6 {
		t.Fatalf("cost 7 with 6 left: %+v; want refused, still 6 remaining", d)
	}
	if d.RetryAfter <= 5*time.Minute || d.RetryAfter > 6*time.Minute {
		t.Errorf("cost 7 with 6 left: RetryAfter %v; want one 6m interval", d.RetryAfter)
	}
	if d := spend(t, s, key, l, 6); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("cost 6 with 6 left: %+v; want allowed, 0 remaining", d)
	}

	// Cost 0 reports without spending.
	key = newID(t, "rl")
	l = storage.RateLimit{Count: 2, Period: time.Hour}
	for range 3 {
		if d := spend(t, s, key, l, 0); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("cost 0 on a fresh key: %+v; want allowed, 2 remaining", d)
		}
	}
	spend(t, s, key, l, 2)
	if d := spend(t, s, key, l, 0); d.Allowed || d.Remaining != 0 || d.RetryAfter <= 29*time.Minute || d.RetryAfter > 30*time.Minute {
		t.Fatalf("cost 0 on an exhausted key: %+v; want refused for just under 30m", d)
	}

	// Impossible requests are errors, not refusals.
	for _, bad := range []struct {
		l    storage.RateLimit
		cost int
	}{
		{storage.RateLimit{Count: 0, Period: time.Hour}, 1},
		{storage.RateLimit{Count: 1, Period: 0}, 1},
		{storage.RateLimit{Count: 1, Period: time.Hour, Burst: -1}, 1},
		{storage.RateLimit{Count: 2, Period: time.Hour}, 3},
		{storage.RateLimit{Count: 2, Period: time.Hour}, -1},
		{storage.RateLimit{Count: 1, Period: 200 * 365 * 24 * time.Hour}, 1},
	} {
		if _, err := s.SpendRateLimit(t.Context(), newID(t, "rl"), bad.l, bad.cost); err == nil {
			t.Errorf("SpendRateLimit(%+v, cost %d) succeeded; want an error", bad.l, bad.cost)
		}
	}
}

// testRateLimitChange checks that a key spent under a large limit is judged
// by a smaller one without owing more than the smaller window.
func testRateLimitChange(t *testing.T, s storage.Store) {
	key := newID(t, "rl")
	big := storage.RateLimit{Count: 100, Period: 100 * time.Hour}
	spend(t, s, key, big, 100) // TAT 100h ahead
	small := storage.RateLimit{Count: 2, Period: time.Hour}
	d := spend(t, s, key, small, 1)
	if d.Allowed || d.RetryAfter > 30*time.Minute {
		t.Fatalf("smaller limit on an exhausted key: %+v; want refused for at most one 30m interval", d)
	}
}

func testRateLimitKeys(t *testing.T, s storage.Store) {
	a, b := newID(t, "rl"), newID(t, "rl")
	l := storage.RateLimit{Count: 1, Period: time.Hour}
	if d := spend(t, s, a, l, 1); !d.Allowed {
		t.Fatalf("first spend on a: %+v", d)
	}
	if d := spend(t, s, a, l, 1); d.Allowed {
		t.Fatalf("second spend on a: %+v; want refused", d)
	}
	if d := spend(t, s, b, l, 1); !d.Allowed {
		t.Fatalf("first spend on b after a is exhausted: %+v; want allowed", d)
	}
}

func testRateLimitConcurrent(t *testing.T, s storage.Store) {
	key := newID(t, "rl")
	l := storage.RateLimit{Count: 10, Period: time.Hour}
	var allowed atomic.Int32
	errs := race(func(int) error {
		d, err := s.SpendRateLimit(t.Context(), key, l, 1)
		if d.Allowed {
			allowed.Add(1)
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := allowed.Load(); n != 10 {
		t.Fatalf("%d of %d concurrent spends of a limit of 10 were allowed, want exactly 10", n, racers)
	}
}

// testLatestCertificate checks the name-set index used to recognise renewals.
func testLatestCertificate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	acct := newID(t, "acct")
	now := time.Now().UTC().Truncate(time.Second)
	mk := func(notAfter time.Time, names ...string) *storage.Certificate {
		c := newCertificate(t)
		c.AccountID, c.Names, c.NotBefore, c.NotAfter = acct, names, now.Add(-time.Hour), notAfter
		wantErr(t, "CreateCertificate", s.CreateCertificate(ctx, c), nil)
		return c
	}
	_, err := s.LatestCertificate(ctx, acct, []string{"a.example", "b.example"})
	wantErr(t, "LatestCertificate before any", err, storage.ErrNotFound)

	first := mk(now.Add(30*24*time.Hour), "a.example", "b.example")
	got, err := s.LatestCertificate(ctx, acct, []string{"B.example", "a.example", "a.example"})
	wantErr(t, "LatestCertificate", err, nil)
	sameRecord(t, "latest certificate", got, first)

	for _, names := range [][]string{{"a.example"}, {"a.example", "b.example", "c.example"}} {
		_, err := s.LatestCertificate(ctx, acct, names)
		wantErr(t, "LatestCertificate of another name set", err, storage.ErrNotFound)
	}
	_, err = s.LatestCertificate(ctx, newID(t, "acct"), []string{"a.example", "b.example"})
	wantErr(t, "LatestCertificate of another account", err, storage.ErrNotFound)

	later := mk(now.Add(60*24*time.Hour), "b.example", "a.example")
	mk(now.Add(10*24*time.Hour), "a.example", "b.example") // expires sooner: not the latest
	got, err = s.LatestCertificate(ctx, acct, []string{"a.example", "b.example"})
	wantErr(t, "LatestCertificate after renewals", err, nil)
	if got.Serial != later.Serial {
		t.Errorf("latest certificate is %s, want %s (the one expiring last)", got.Serial, later.Serial)
	}

	// Revocation does not hide it: the caller decides what a revoked one means.
	later.Status = storage.StatusRevoked
	wantErr(t, "UpdateCertificate", s.UpdateCertificate(ctx, later), nil)
	got, err = s.LatestCertificate(ctx, acct, []string{"a.example", "b.example"})
	wantErr(t, "LatestCertificate after revocation", err, nil)
	if got.Serial != later.Serial || got.Status != storage.StatusRevoked {
		t.Errorf("latest certificate after revocation: %s %s; want %s revoked", got.Serial, got.Status, later.Serial)
	}

	// An expired one is not found.
	mk(now.Add(-time.Minute), "old.example")
	_, err = s.LatestCertificate(ctx, acct, []string{"old.example"})
	wantErr(t, "LatestCertificate of an expired certificate", err, storage.ErrNotFound)
}
