package redis

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
	// A stored value that is no number counts as no TAT, for both.
	key := rateKey(fmt.Sprintf("peek-malformed-%d", time.Now().UnixNano()))
	if err := s.c.Set(ctx, key, "soon", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := peekDecision(s.c.Get(ctx, key), l)
	if err != nil || !got.Allowed || got.Remaining != l.Burst {
		t.Errorf("malformed TAT: %+v, %v; want allowed with %d remaining", got, err, l.Burst)
	}
	if want, err := gcraDecision(gcraScript.Run(ctx, s.c, []string{key}, gcraArgs(l, 0)...)); err != nil || want.Remaining != got.Remaining {
		t.Errorf("malformed TAT: script says %+v, %v; peek %+v", want, err, got)
	}
}

// TestAutoPipelineDefault checks that New sends commands through the
// pipeliner unless the URL says autopipeline=false, so that TestConformance
// and TestConformanceWithoutAutoPipeline test the two paths they name.
func TestAutoPipelineDefault(t *testing.T) {
	url := testredis.Start(t)
	for _, tc := range []struct {
		url  string
		want bool
	}{{url, true}, {testredis.WithOption(t, url, "autopipeline", "false"), false}} {
		s, err := New(t.Context(), tc.url)
		if err != nil {
			t.Fatal(err)
		}
		_, got := s.c.(*goredis.AutoPipeliner)
		_ = s.Close()
		if got != tc.want {
			t.Errorf("New(%s): commands through the pipeliner %v, want %v", tc.url, got, tc.want)
		}
	}
}
