package storagetest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// spendBatch calls SpendRateLimits and fails the test on an error or on a
// decision count other than the batch's.
func spendBatch(t *testing.T, s storage.Store, spends ...storage.RateSpend) []storage.RateDecision {
	t.Helper()
	ds, err := s.SpendRateLimits(t.Context(), spends)
	if err != nil {
		t.Fatalf("SpendRateLimits(%+v): %v", spends, err)
	}
	if len(ds) != len(spends) {
		t.Fatalf("SpendRateLimits of %d items returned %d decisions", len(spends), len(ds))
	}
	return ds
}

// remaining is how many events of l fit on key now (a cost-0 check).
func remaining(t *testing.T, s storage.Store, key string, l storage.RateLimit) int {
	t.Helper()
	return spend(t, s, key, l, 0).Remaining
}

// testRateLimitBatch checks SpendRateLimits: all or nothing, cost-0 items,
// a key twice in one batch, BestEffort items, which refusal to report, and
// errors.
func testRateLimitBatch(t *testing.T, s storage.Store) {
	l := storage.RateLimit{Count: 10, Period: time.Hour} // 6m interval
	one := storage.RateLimit{Count: 1, Period: time.Hour}

	t.Run("allowed", func(t *testing.T) {
		a, b, c := newID(t, "rl"), newID(t, "rl"), newID(t, "rl")
		ds := spendBatch(t, s, storage.RateSpend{Key: a, Limit: l, Cost: 1},
			storage.RateSpend{Key: b, Limit: l, Cost: 0},
			storage.RateSpend{Key: c, Limit: l, Cost: 3})
		for i, want := range []int{9, 10, 7} {
			if !ds[i].Allowed || ds[i].Remaining != want || ds[i].RetryAfter != 0 {
				t.Errorf("item %d: %+v; want allowed with %d remaining", i, ds[i], want)
			}
		}
		if i := storage.RateBatchRefused(make([]storage.RateSpend, 3), ds); i != -1 {
			t.Errorf("RateBatchRefused of an allowed batch: %d, want -1", i)
		}
		for key, want := range map[string]int{a: 9, b: 10, c: 7} {
			if got := remaining(t, s, key, l); got != want {
				t.Errorf("after the batch %d remain, want %d", got, want)
			}
		}
	})

	t.Run("refused refunds", func(t *testing.T) {
		a, b, full := newID(t, "rl"), newID(t, "rl"), newID(t, "rl")
		spend(t, s, a, l, 2)
		spend(t, s, full, one, 1)
		spends := []storage.RateSpend{
			{Key: a, Limit: l, Cost: 1},
			{Key: full, Limit: one, Cost: 1},
			{Key: b, Limit: l, Cost: 4},
		}
		ds := spendBatch(t, s, spends...)
		if !ds[0].Allowed || ds[0].Remaining != 8 {
			t.Errorf("item 0: %+v; want allowed (it fits), 8 remaining after the refund", ds[0])
		}
		if ds[1].Allowed || ds[1].RetryAfter <= 59*time.Minute || ds[1].RetryAfter > time.Hour {
			t.Errorf("item 1: %+v; want refused for just under an hour", ds[1])
		}
		if !ds[2].Allowed || ds[2].Remaining != 10 {
			t.Errorf("item 2: %+v; want allowed, 10 remaining after the refund", ds[2])
		}
		if i := storage.RateBatchRefused(spends, ds); i != 1 {
			t.Errorf("RateBatchRefused: %d, want 1", i)
		}
		if got := remaining(t, s, a, l); got != 8 {
			t.Errorf("a refused batch spent a: %d remain, want 8", got)
		}
		if got := remaining(t, s, b, l); got != 10 {
			t.Errorf("a refused batch spent b: %d remain, want 10", got)
		}
	})

	t.Run("cost 0 refusal refunds", func(t *testing.T) {
		a, full := newID(t, "rl"), newID(t, "rl")
		spend(t, s, full, one, 1)
		ds := spendBatch(t, s, storage.RateSpend{Key: full, Limit: one, Cost: 0}, storage.RateSpend{Key: a, Limit: l, Cost: 1})
		if ds[0].Allowed || !ds[1].Allowed {
			t.Fatalf("decisions %+v; want the check refused, the spend fitting", ds)
		}
		if got := remaining(t, s, a, l); got != 10 {
			t.Errorf("a batch refused by a check spent %d of a", 10-got)
		}
	})

	t.Run("same key twice", func(t *testing.T) {
		two := storage.RateLimit{Count: 2, Period: time.Hour}
		k := newID(t, "rl")
		ds := spendBatch(t, s, storage.RateSpend{Key: k, Limit: two, Cost: 1}, storage.RateSpend{Key: k, Limit: two, Cost: 1})
		if !ds[0].Allowed || !ds[1].Allowed || ds[1].Remaining != 0 {
			t.Fatalf("two spends of a limit of 2: %+v; want both allowed, 0 remaining", ds)
		}
		k = newID(t, "rl")
		ds = spendBatch(t, s, storage.RateSpend{Key: k, Limit: two, Cost: 1}, storage.RateSpend{Key: k, Limit: two, Cost: 2})
		if !ds[0].Allowed || ds[1].Allowed {
			t.Fatalf("1 then 2 of a limit of 2: %+v; want the second refused", ds)
		}
		if got := remaining(t, s, k, two); got != 2 {
			t.Errorf("after the refused batch %d remain, want 2", got)
		}
	})

	t.Run("best effort", func(t *testing.T) {
		a, b, full := newID(t, "rl"), newID(t, "rl"), newID(t, "rl")
		spend(t, s, full, one, 1)
		// A refused item does not stop a BestEffort one.
		spends := []storage.RateSpend{
			{Key: full, Limit: one, Cost: 1},
			{Key: a, Limit: l, Cost: 1, BestEffort: true},
		}
		ds := spendBatch(t, s, spends...)
		if ds[0].Allowed || !ds[1].Allowed || ds[1].Remaining != 9 {
			t.Fatalf("decisions %+v; want the first refused, the best-effort one spent", ds)
		}
		if got := remaining(t, s, a, l); got != 9 {
			t.Errorf("best-effort item: %d remain, want 9", got)
		}
		// A refused BestEffort item refunds nothing and is not the refusal.
		spends = []storage.RateSpend{
			{Key: b, Limit: l, Cost: 1},
			{Key: full, Limit: one, Cost: 1, BestEffort: true},
		}
		ds = spendBatch(t, s, spends...)
		if !ds[0].Allowed || ds[1].Allowed {
			t.Fatalf("decisions %+v; want the first allowed, the best-effort one refused", ds)
		}
		if i := storage.RateBatchRefused(spends, ds); i != -1 {
			t.Errorf("RateBatchRefused: %d, want -1 (only a best-effort item was refused)", i)
		}
		if got := remaining(t, s, b, l); got != 9 {
			t.Errorf("b: %d remain, want 9 (spent)", got)
		}
	})

	t.Run("longest wait", func(t *testing.T) {
		short, long := newID(t, "rl"), newID(t, "rl")
		fast := storage.RateLimit{Count: 60, Period: time.Hour} // 1m interval
		spend(t, s, short, fast, 60)
		spend(t, s, long, one, 1)
		spends := []storage.RateSpend{{Key: short, Limit: fast, Cost: 1}, {Key: long, Limit: one, Cost: 1}}
		ds := spendBatch(t, s, spends...)
		if ds[0].Allowed || ds[1].Allowed {
			t.Fatalf("decisions %+v; want both refused", ds)
		}
		if i := storage.RateBatchRefused(spends, ds); i != 1 {
			t.Errorf("RateBatchRefused: %d, want 1 (the hour-long wait)", i)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if ds, err := s.SpendRateLimits(t.Context(), nil); err != nil || len(ds) != 0 {
			t.Errorf("empty batch: %v, %v; want no decisions, no error", ds, err)
		}
		a := newID(t, "rl")
		_, err := s.SpendRateLimits(t.Context(), []storage.RateSpend{
			{Key: a, Limit: l, Cost: 1},
			{Key: newID(t, "rl"), Limit: storage.RateLimit{Count: 2, Period: time.Hour}, Cost: 3},
		})
		if err == nil {
			t.Errorf("a batch with a cost above the burst succeeded; want an error")
		}
		if _, err := s.SpendRateLimits(t.Context(), []storage.RateSpend{{Limit: l, Cost: 1}}); err == nil {
			t.Errorf("a batch with an empty key succeeded; want an error")
		}
		if got := remaining(t, s, a, l); got != 10 {
			t.Errorf("an invalid batch spent %d of its valid item", 10-got)
		}
	})
}

// testRateLimitBatchConcurrent has racers goroutines batch-spend shared
// limits: no limit is ever exceeded, and refused batches give back all
// they spent.
func testRateLimitBatchConcurrent(t *testing.T, s storage.Store) {
	l10 := storage.RateLimit{Count: 10, Period: time.Hour}
	l5 := storage.RateLimit{Count: 5, Period: time.Hour}

	// One shared limit next to an item of each goroutine's own: exactly
	// the shared limit's worth of batches go through.
	shared := newID(t, "rl")
	var allowed atomic.Int32
	errs := race(func(int) error {
		ds, err := s.SpendRateLimits(t.Context(), []storage.RateSpend{
			{Key: newID(t, "rl"), Limit: l10, Cost: 1},
			{Key: shared, Limit: l10, Cost: 1},
		})
		if err == nil && ds[0].Allowed && ds[1].Allowed {
			allowed.Add(1)
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := allowed.Load(); n != 10 {
		t.Errorf("%d of %d batches sharing a limit of 10 were allowed, want exactly 10", n, racers)
	}

	// Two shared limits, 10 and 5: no more than 5 batches go through (a
	// store that refunds after the fact may let fewer through), and the
	// refunds leave each limit spent by exactly the batches allowed.
	x, y := newID(t, "rl"), newID(t, "rl")
	allowed.Store(0)
	both := []storage.RateSpend{{Key: x, Limit: l10, Cost: 1}, {Key: y, Limit: l5, Cost: 1}}
	errs = race(func(int) error {
		ds, err := s.SpendRateLimits(t.Context(), both)
		if err == nil && storage.RateBatchRefused(both, ds) < 0 {
			allowed.Add(1)
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	n := int(allowed.Load())
	if n < 1 || n > 5 {
		t.Fatalf("%d of %d batches over limits of 10 and 5 were allowed, want 1 to 5", n, racers)
	}
	if got := remaining(t, s, x, l10); got != 10-n {
		t.Errorf("after %d allowed batches the limit of 10 has %d left, want %d", n, got, 10-n)
	}
	if got := remaining(t, s, y, l5); got != 5-n {
		t.Errorf("after %d allowed batches the limit of 5 has %d left, want %d", n, got, 5-n)
	}
}

// testRateLimitRenewal checks SpendRateLimitsUnlessRenewal: RenewalExempt
// items are spent unless the account holds a valid, unexpired certificate
// for exactly the names, and then neither spend nor refuse.
func testRateLimitRenewal(t *testing.T, s storage.Store) {
	ctx := t.Context()
	l := storage.RateLimit{Count: 10, Period: time.Hour}
	one := storage.RateLimit{Count: 1, Period: time.Hour}
	acct := newID(t, "acct")
	names := []string{"a.example", "b.example"}
	issue := func(notAfter time.Time, status string, names ...string) *storage.Certificate {
		c := newCertificate(t)
		c.AccountID, c.Names, c.NotAfter, c.Status = acct, names, notAfter, status
		c.NotBefore = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		wantErr(t, "CreateCertificate", s.CreateCertificate(ctx, c), nil)
		return c
	}
	// exempt, full and plain are an exempt spend, an exempt check of an
	// exhausted limit and a spend that is never exempt.
	run := func(wantRenewal, wantAllowed bool, what string) (exempt, plain string) {
		t.Helper()
		exempt, full, plain := newID(t, "rl"), newID(t, "rl"), newID(t, "rl")
		spend(t, s, full, one, 1)
		spends := []storage.RateSpend{
			{Key: exempt, Limit: l, Cost: 1, RenewalExempt: true},
			{Key: full, Limit: one, Cost: 0, RenewalExempt: true},
			{Key: plain, Limit: l, Cost: 1},
		}
		renewal, ds, err := s.SpendRateLimitsUnlessRenewal(ctx, acct, []string{"B.example", "a.example"}, spends)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if renewal != wantRenewal || len(ds) != len(spends) {
			t.Fatalf("%s: renewal %v with %d decisions; want %v with %d", what, renewal, len(ds), wantRenewal, len(spends))
		}
		if allowed := storage.RateBatchRefused(spends, ds) < 0; allowed != wantAllowed {
			t.Fatalf("%s: decisions %+v; want allowed %v", what, ds, wantAllowed)
		}
		if wantRenewal && (!ds[0].Allowed || !ds[1].Allowed) {
			t.Errorf("%s: exempt decisions %+v; want allowed", what, ds[:2])
		}
		return exempt, plain
	}

	// No certificate: not a renewal; the exhausted limit refuses, so the
	// batch spends nothing.
	exempt, plain := run(false, false, "no certificate")
	if remaining(t, s, exempt, l) != 10 || remaining(t, s, plain, l) != 10 {
		t.Errorf("no certificate: a refused batch spent something")
	}

	// A valid certificate for the names, in any order and case: a renewal.
	c := issue(time.Now().Add(24*time.Hour), storage.StatusValid, names...)
	exempt, plain = run(true, true, "renewal")
	if got := remaining(t, s, exempt, l); got != 10 {
		t.Errorf("renewal: the exempt limit has %d left, want 10 (unspent)", got)
	}
	if got := remaining(t, s, plain, l); got != 9 {
		t.Errorf("renewal: the plain limit has %d left, want 9 (spent)", got)
	}

	// A renewal still answers to its other limits.
	full := newID(t, "rl")
	spend(t, s, full, one, 1)
	exempt2 := newID(t, "rl")
	spends := []storage.RateSpend{{Key: exempt2, Limit: l, Cost: 1, RenewalExempt: true}, {Key: full, Limit: one, Cost: 1}}
	renewal, ds, err := s.SpendRateLimitsUnlessRenewal(ctx, acct, names, spends)
	if err != nil || !renewal || storage.RateBatchRefused(spends, ds) != 1 {
		t.Fatalf("renewal over an exhausted plain limit: %v %+v %v; want a renewal refused by item 1", renewal, ds, err)
	}
	if got := remaining(t, s, exempt2, l); got != 10 {
		t.Errorf("refused renewal: the exempt limit has %d left, want 10", got)
	}

	// A revoked certificate, even next to a valid one for fewer names: not
	// a renewal.
	issue(time.Now().Add(24*time.Hour), storage.StatusValid, "a.example")
	c.Status = storage.StatusRevoked
	wantErr(t, "UpdateCertificate", s.UpdateCertificate(ctx, c), nil)
	exempt, _ = run(false, false, "revoked certificate")
	if got := remaining(t, s, exempt, l); got != 10 {
		t.Errorf("revoked certificate: a refused batch spent the exempt limit")
	}
	exempt, plain = newID(t, "rl"), newID(t, "rl")
	renewal, ds, err = s.SpendRateLimitsUnlessRenewal(ctx, acct, names, []storage.RateSpend{
		{Key: exempt, Limit: l, Cost: 2, RenewalExempt: true}, {Key: plain, Limit: l, Cost: 1},
	})
	if err != nil || renewal || !ds[0].Allowed || !ds[1].Allowed {
		t.Fatalf("after revocation: %v %+v %v; want no renewal, allowed", renewal, ds, err)
	}
	if got := remaining(t, s, exempt, l); got != 8 {
		t.Errorf("no renewal: the exempt limit has %d left, want 8 (spent)", got)
	}

	// Invalid items are errors.
	if _, _, err := s.SpendRateLimitsUnlessRenewal(ctx, acct, names, []storage.RateSpend{{Key: newID(t, "rl"), Limit: one, Cost: 2, RenewalExempt: true}}); err == nil {
		t.Errorf("an exempt item costing more than its burst: no error")
	}
}
