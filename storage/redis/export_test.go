package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// HoldPooledConnection keeps one of the client's pooled connections busy
// for d: BLPOP on a list nobody pushes to. Blocking commands never travel in
// the automatic pipeline.
func (s *Store) HoldPooledConnection(ctx context.Context, d time.Duration) error {
	err := s.client.BLPop(ctx, d, keyPrefix+"{test:never-pushed}").Err()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	return err
}
