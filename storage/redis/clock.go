package redis

import (
	"context"
	"fmt"
	"time"
)

// ClockSkew returns how far this process's clock is ahead of the Redis
// server's (local minus Redis; negative when it lags), read with TIME and
// compared with the local time at the midpoint of the round trip.
//
// It exists because nonces are stateless: each carries the expiry its
// issuing instance computed from its own clock, and redeeming one sets a
// used mark whose TTL runs from the redeeming instance's clock to that
// expiry plus a minute of slack. If two instances' clocks differ by more
// than the slack, the mark can expire while the other instance would still
// accept the nonce, which could then be replayed. Instances cannot see each
// other's clocks, but they share Redis's: an instance within a few seconds
// of Redis is within twice that of every other such instance.
func (s *Store) ClockSkew(ctx context.Context) (time.Duration, error) {
	before := time.Now()
	server, err := s.c.Time(ctx).Result()
	after := time.Now()
	if err != nil {
		return 0, fmt.Errorf("redis: time: %w", err)
	}
	return skewFrom(before, after, server), nil
}

// skewFrom is the local clock minus the server's, given the local times
// just before a request and just after its reply and the server's time
// in that reply: the reply was taken, on average, halfway through.
func skewFrom(before, after, server time.Time) time.Duration {
	mid := before.Add(after.Sub(before) / 2)
	return mid.Sub(server)
}
