package memory

import (
	"testing"
	"time"

	"github.com/acmegw/acmegw/storage"
)

// TestRateLimitSweep checks that keys leave the map and the heap once their
// TAT passes, that a key whose TAT moved on is rescheduled rather than
// dropped, and that the heap never holds more than one entry per key.
func TestRateLimitSweep(t *testing.T) {
	s := New()
	defer s.Close()
	ctx := t.Context()
	short := storage.RateLimit{Count: 10, Period: 100 * time.Millisecond} // 10ms a spend
	long := storage.RateLimit{Count: 10, Period: time.Hour}
	for _, k := range []string{"a", "b", "moved"} {
		for range 3 {
			if _, err := s.SpendRateLimit(ctx, k, short, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.rl.mu.Lock()
	keys, entries := len(s.rl.tats), len(s.rl.sched)
	s.rl.mu.Unlock()
	if keys != 3 || entries != 3 {
		t.Fatalf("after spending: %d keys, %d heap entries; want 3 and 3", keys, entries)
	}
	if _, err := s.SpendRateLimit(ctx, "moved", long, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	s.rl.sweep()
	s.rl.mu.Lock()
	keys, entries = len(s.rl.tats), len(s.rl.sched)
	_, kept := s.rl.tats["moved"]
	s.rl.mu.Unlock()
	if keys != 1 || entries != 1 || !kept {
		t.Errorf("after sweep: %d keys, %d heap entries, moved kept %v; want 1, 1, true", keys, entries, kept)
	}
}

// TestGCRA checks the arithmetic the Redis script mirrors.
func TestGCRA(t *testing.T) {
	l := storage.RateLimit{Count: 4, Period: 4 * time.Second, Burst: 2} // 1s interval
	const now = int64(1_000_000_000_000)
	sec := int64(time.Second)
	tat, d := gcra(l, 0, now, 1)
	if !d.Allowed || d.Remaining != 1 || tat != now+sec {
		t.Fatalf("first: tat %d %+v", tat-now, d)
	}
	tat, d = gcra(l, tat, now, 1)
	if !d.Allowed || d.Remaining != 0 || tat != now+2*sec {
		t.Fatalf("second: tat %d %+v", tat-now, d)
	}
	_, d = gcra(l, tat, now, 1)
	if d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("third: %+v; want refused for 1s", d)
	}
	_, d = gcra(l, tat, now+sec/2, 1)
	if d.Allowed || d.RetryAfter != time.Second/2 {
		t.Fatalf("third, half a second later: %+v; want refused for 0.5s", d)
	}
	_, d = gcra(l, tat, now+sec, 1)
	if !d.Allowed || d.Remaining != 0 {
		t.Fatalf("third, a second later: %+v; want allowed", d)
	}
}
