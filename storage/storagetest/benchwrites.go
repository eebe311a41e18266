package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// BenchWrites benchmarks the writes every certificate makes, one caller at
// a time: the compare-and-swap updates of an order and of an authorization
// (four per certificate between them) and a rate-limit spend (three).
// costs maps a unit to a reading of some cumulative cost; each is read
// before and after every benchmark, and its growth per operation is
// reported under that unit. A Redis store passes the server's CPU time and
// its time in scripts, which a Go benchmark cannot see otherwise (the
// scripts run inside redis-server).
func BenchWrites(b *testing.B, s storage.Store, costs map[string]func(b *testing.B) float64) {
	ctx := context.Background()
	a := newAccount(b)
	if err := s.CreateAccount(ctx, a); err != nil {
		b.Fatal(err)
	}
	measure := func(b *testing.B, op func(b *testing.B)) {
		b.ReportAllocs()
		before := map[string]float64{}
		for unit, cost := range costs {
			before[unit] = cost(b)
		}
		n := 0
		for b.Loop() {
			op(b)
			n++
		}
		for unit, cost := range costs {
			if n > 0 {
				b.ReportMetric((cost(b)-before[unit])/float64(n), unit)
			}
		}
	}
	b.Run("UpdateOrder", func(b *testing.B) {
		o, authzs := newOrder(b, a.ID, "bench-update.example")
		if err := s.CreateOrder(ctx, o, authzs); err != nil {
			b.Fatal(err)
		}
		measure(b, func(b *testing.B) {
			if err := s.UpdateOrder(ctx, o); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("UpdateAuthorization", func(b *testing.B) {
		o, authzs := newOrder(b, a.ID, "bench-authz.example")
		if err := s.CreateOrder(ctx, o, authzs); err != nil {
			b.Fatal(err)
		}
		z := authzs[0]
		measure(b, func(b *testing.B) {
			if err := s.UpdateAuthorization(ctx, z); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("SpendRateLimit", func(b *testing.B) {
		key := newID(b, "bench-limit")
		// Far more than any b.N, so every spend is allowed and writes.
		limit := storage.RateLimit{Count: 1_000_000_000, Period: 3 * time.Hour}
		measure(b, func(b *testing.B) {
			d, err := s.SpendRateLimit(ctx, key, limit, 1)
			if err != nil || !d.Allowed {
				b.Fatalf("SpendRateLimit = %+v, %v; want allowed", d, err)
			}
		})
	})
}
