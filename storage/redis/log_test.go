package redis_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acmegw/acmegw/internal/testlog"
	"github.com/acmegw/acmegw/storage/redis"
)

// TestSetLogger checks that go-redis's own complaints (here: a dial to a
// port nobody listens on) reach the slog logger as structured warnings.
func TestSetLogger(t *testing.T) {
	var buf testlog.Buffer
	redis.SetLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	opt, err := redis.ParseURL("redis://127.0.0.1:1/0?dial_timeout=200ms&dialer_retries=1")
	if err != nil {
		t.Fatal(err)
	}
	c := opt.NewClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(buf.String(), "level=WARN msg=\"redis client\"") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN msg=\"redis client\"") {
		t.Fatalf("no go-redis message in the slog output: %q", out)
	}
}
