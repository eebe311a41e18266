package acme

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempts int
		want     time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {5, 32 * time.Second}, {9, 512 * time.Second}, {10, maxBackoff}, {64, maxBackoff}} {
		if got := backoff(c.attempts); got != c.want {
			t.Errorf("backoff(%d) = %s, want %s", c.attempts, got, c.want)
		}
	}
	for range 100 {
		if d := jitter(jobIdle); d < jobIdle*8/10 || d > jobIdle*12/10 {
			t.Fatalf("jitter(%s) = %s", jobIdle, d)
		}
	}
}
