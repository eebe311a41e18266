package redis

import (
	"fmt"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testredis"
	"github.com/acmegw/acmegw/storage"
)

// TestPeekMatchesScript checks that a check decided from a GET
// (peekDecision) answers as gcraScript does for cost 0, from an unused key
// to one spent past its burst.
func TestPeekMatchesScript(t *testing.T) {
	ctx := t.Context()
	s, err := New(ctx, testredis.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	l := storage.RateLimit{Count: 5, Period: time.Hour, Burst: 3}
	for spent := range 5 {
		key := rateKey(fmt.Sprintf("peek-%d-%d", spent, time.Now().UnixNano()))
		for range spent {
			if _, err := gcraDecision(gcraScript.Run(ctx, s.c, []string{key}, gcraArgs(l, 1)...)); err != nil {
				t.Fatal(err)
			}
		}
		want, err := gcraDecision(gcraScript.Run(ctx, s.c, []string{key}, gcraArgs(l, 0)...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := peekDecision(s.c.Get(ctx, key), l)
		if err != nil {
			t.Fatal(err)
		}
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining ||
			(got.RetryAfter-want.RetryAfter).Abs() > time.Second {
			t.Errorf("after %d spends: peek %+v, script %+v", spent, got, want)
		}
		if spent >= l.Burst && got.Allowed {
			t.Errorf("after %d spends of a burst of %d: peek allows", spent, l.Burst)
		}
	}
	key := rateKey("peek-malformed")
	if err := s.c.Set(ctx, key, "soon", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := peekDecision(s.c.Get(ctx, key), l); err == nil {
		t.Errorf("malformed TAT: %+v, want an error", d)
	}
}
