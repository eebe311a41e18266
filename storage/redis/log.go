package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own messages ("failed to dial", pool and
// failover notices), which it otherwise prints to stderr in its own
// format, to l as structured warnings. It applies to every go-redis client
// in the process.
func SetLogger(l *slog.Logger) {
	goredis.SetLogger(slogAdapter{l})
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.l.WarnContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...))
}
