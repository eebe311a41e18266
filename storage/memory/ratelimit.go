package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// rateLimits holds the theoretical arrival time (TAT) of every rate-limit
// key. A key whose TAT has passed is as good as absent, so entries are
// dropped once their TAT passes: a heap orders the keys by the TAT they had
// when scheduled, and a popped key whose TAT has since moved on is simply
// scheduled again. The heap holds exactly one entry per key.
type rateLimits struct {
	mu    sync.Mutex
	tats  map[string]int64 // key → TAT, Unix nanoseconds
	sched tatHeap
}

// SpendRateLimit checks the GCRA limit of key and, if cost events fit,
// spends them; a cost of 0 only reports. See storage.Store.
func (s *Store) SpendRateLimit(ctx context.Context, key string, limit storage.RateLimit, cost int) (storage.RateDecision, error) {
	if err := storage.CheckSpend(key, limit, cost); err != nil {
		return storage.RateDecision{}, fmt.Errorf("memory: spend rate limit %q: %w", key, err)
	}
	now := time.Now().UnixNano()
	rl := &s.rl
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.tats == nil {
		rl.tats = make(map[string]int64)
	}
	rl.expireLocked(now, 2)
	tat, d := gcra(limit, rl.tats[key], now, cost)
	if d.Allowed && cost > 0 {
		rl.storeLocked(key, tat)
	}
	return d, nil
}

// SpendRateLimits decides the whole batch under the lock, so it is truly
// all or nothing: the items other than BestEffort ones are decided in order
// against the stored TATs and each other's, and stored only if all are
// allowed; then each BestEffort item is decided and stored if it fits. See
// storage.Store.
func (s *Store) SpendRateLimits(ctx context.Context, spends []storage.RateSpend) ([]storage.RateDecision, error) {
	for _, sp := range spends {
		if err := storage.CheckSpend(sp.Key, sp.Limit, sp.Cost); err != nil {
			return nil, fmt.Errorf("memory: spend rate limit %q: %w", sp.Key, err)
		}
	}
	out := make([]storage.RateDecision, len(spends))
	now := time.Now().UnixNano()
	rl := &s.rl
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.tats == nil {
		rl.tats = make(map[string]int64)
	}
	rl.expireLocked(now, 2)

	// The batch's TATs so far, stored only once the batch is decided.
	pending := make(map[string]int64, len(spends))
	tatOf := func(key string) int64 {
		if tat, ok := pending[key]; ok {
			return tat
		}
		return rl.tats[key]
	}
	allowed := true
	for i, sp := range spends {
		if sp.BestEffort {
			continue
		}
		tat, d := gcra(sp.Limit, tatOf(sp.Key), now, sp.Cost)
		out[i] = d
		if !d.Allowed {
			allowed = false
		} else if sp.Cost > 0 {
			pending[sp.Key] = tat
		}
	}
	if allowed {
		for key, tat := range pending {
			rl.storeLocked(key, tat)
		}
	} else {
		// Nothing was spent: what remains is what the stored TATs leave.
		for i, sp := range spends {
			if !sp.BestEffort && out[i].Allowed {
				_, d := gcra(sp.Limit, rl.tats[sp.Key], now, 0)
				out[i].Remaining = d.Remaining
			}
		}
	}
	for i, sp := range spends {
		if !sp.BestEffort {
			continue
		}
		tat, d := gcra(sp.Limit, rl.tats[sp.Key], now, sp.Cost)
		out[i] = d
		if d.Allowed && sp.Cost > 0 {
			rl.storeLocked(sp.Key, tat)
		}
	}
	return out, nil
}

// SpendRateLimitsUnlessRenewal looks the certificate up first, then
// spends the batch; for a renewal the RenewalExempt items only report
// (BestEffort at cost 0) and count as allowed. See storage.Store.
func (s *Store) SpendRateLimitsUnlessRenewal(ctx context.Context, accountID string, names []string, spends []storage.RateSpend) (bool, []storage.RateDecision, error) {
	for _, sp := range spends {
		if err := storage.CheckSpend(sp.Key, sp.Limit, sp.Cost); err != nil {
			return false, nil, fmt.Errorf("memory: spend rate limit %q: %w", sp.Key, err)
		}
	}
	c, err := s.LatestCertificate(ctx, accountID, names)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, nil, err
	}
	renewal := err == nil && storage.Renews(c, time.Now())
	if renewal {
		spends = slices.Clone(spends)
		for i := range spends {
			if spends[i].RenewalExempt {
				spends[i].Cost, spends[i].BestEffort = 0, true
			}
		}
	}
	ds, err := s.SpendRateLimits(ctx, spends)
	if err != nil {
		return false, nil, err
	}
	for i, sp := range spends {
		if renewal && sp.RenewalExempt {
			ds[i].Allowed, ds[i].RetryAfter = true, 0
		}
	}
	return renewal, ds, nil
}

// storeLocked sets key's TAT, scheduling its expiry if the key is new. The
// caller holds mu.
func (rl *rateLimits) storeLocked(key string, tat int64) {
	if _, known := rl.tats[key]; !known {
		heap.Push(&rl.sched, tatEntry{key: key, tat: tat})
	}
	rl.tats[key] = tat
}

// gcra is storage.RateLimit.GCRA in nanoseconds.
func gcra(l storage.RateLimit, tat, now int64, cost int) (int64, storage.RateDecision) {
	return l.GCRA(time.Nanosecond, tat, now, cost)
}

// expireLocked drops up to limit keys whose TAT has passed and reports
// whether more may remain. The caller holds mu.
func (rl *rateLimits) expireLocked(now int64, limit int) bool {
	for range limit {
		if len(rl.sched) == 0 || rl.sched[0].tat > now {
			return false
		}
		e := heap.Pop(&rl.sched).(tatEntry)
		if tat := rl.tats[e.key]; tat > now {
			heap.Push(&rl.sched, tatEntry{key: e.key, tat: tat})
		} else {
			delete(rl.tats, e.key)
		}
	}
	return true
}

// sweep drops every key whose TAT has passed, a batch per lock hold.
func (rl *rateLimits) sweep() {
	for more := true; more; {
		rl.mu.Lock()
		more = rl.expireLocked(time.Now().UnixNano(), sweepBatch)
		rl.mu.Unlock()
	}
}

// tatEntry is one key's scheduled expiry.
type tatEntry struct {
	key string
	tat int64
}

// tatHeap is a min-heap of keys by scheduled expiry.
type tatHeap []tatEntry

func (h tatHeap) Len() int           { return len(h) }
func (h tatHeap) Less(i, j int) bool { return h[i].tat < h[j].tat }
func (h tatHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tatHeap) Push(x any)        { *h = append(*h, x.(tatEntry)) }
func (h *tatHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = tatEntry{}
	*h = old[:len(old)-1]
	return e
}
