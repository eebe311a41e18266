package redis

import (
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testredis"
)

// TestSkewFrom checks the sign (local minus server) and that the local
// time is taken at the round trip's midpoint, not at either end.
func TestSkewFrom(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name                  string
		before, after, server time.Time
		want                  time.Duration
	}{
		// A server reading halfway through a 2 s round trip is in step;
		// the start would give -1s and the end +1s.
		{"in step", t0, t0.Add(2 * time.Second), t0.Add(time.Second), 0},
		// Local ahead is positive, behind negative.
		{"local ahead", t0, t0, t0.Add(-5 * time.Second), 5 * time.Second},
		{"local behind", t0, t0, t0.Add(5 * time.Second), -5 * time.Second},
		// Midpoint t0+2s against the server's t0-10s: 12s (10s from the
		// start, 14s from the end, -12s with the sign reversed).
		{"ahead, slow round trip", t0, t0.Add(4 * time.Second), t0.Add(-10 * time.Second), 12 * time.Second},
		{"behind, slow round trip", t0, t0.Add(4 * time.Second), t0.Add(30 * time.Second), -28 * time.Second},
	} {
		if got := skewFrom(c.before, c.after, c.server); got != c.want {
			t.Errorf("%s: skewFrom = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestClockSkew asks a real Redis on this machine, whose clock is ours.
func TestClockSkew(t *testing.T) {
	s, err := New(t.Context(), testredis.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	skew, err := s.ClockSkew(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if skew.Abs() >= time.Second {
		t.Errorf("skew against a local Redis = %v, want under 1s", skew)
	}
}
