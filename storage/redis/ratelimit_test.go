package redis_test

import (
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// TestSpendRateLimitsNoScript checks that a batch works on a Redis that
// lost its scripts (restarted or flushed): a pipeline of EVALSHA cannot fall
// back on EVAL by itself, so the store resends what met NOSCRIPT, and the
// refund of a refused batch too.
func TestSpendRateLimitsNoScript(t *testing.T) {
	s, raw := openPrivate(t, "")
	ctx := t.Context()
	l := storage.RateLimit{Count: 2, Period: time.Hour}
	batch := []storage.RateSpend{{Key: "a", Limit: l, Cost: 1}, {Key: "b", Limit: l, Cost: 2}}
	for i, want := range []bool{true, false} {
		if err := raw.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		ds, err := s.SpendRateLimits(ctx, batch)
		if err != nil {
			t.Fatalf("batch %d after SCRIPT FLUSH: %v", i+1, err)
		}
		if got := storage.RateBatchRefused(batch, ds) < 0; got != want {
			t.Fatalf("batch %d: %+v; want allowed %v", i+1, ds, want)
		}
	}
	// The refused second batch gave a's spend back.
	if d, err := s.SpendRateLimit(ctx, "a", l, 0); err != nil || d.Remaining != 1 {
		t.Fatalf("a after a refused batch: %+v, %v; want 1 remaining", d, err)
	}
}
