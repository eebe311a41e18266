package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/storage"
)

func rateKey(key string) string { return keyPrefix + "{rl:" + key + "}" }

// gcraScript is the memory store's gcra in microseconds, on Redis's own
// clock (TIME), so that instances with skewed clocks agree. KEYS[1] holds
// the theoretical arrival time (TAT) and expires with it, so an idle limit
// costs nothing. ARGV: emission interval (µs), burst, cost (0 only reports).
// It returns {allowed, remaining, retry after (µs)}.
//
// Numbers are Lua doubles: exact for integers below 2^53 µs (285 years),
// which a TAT (now plus at most 100 years, see RateLimit.Validate) stays under.
var gcraScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * interval
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if tat > now + window then tat = now + window end
local need = cost
if need < 1 then need = 1 end
local allowAt = tat + need * interval - window
if now < allowAt then
  return {0, math.floor((now - tat + window) / interval), allowAt - now}
end
if cost > 0 then
  tat = tat + cost * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
return {1, math.floor((now - tat + window) / interval), 0}
`)

// SpendRateLimit checks the GCRA limit of key and, if cost events fit,
// spends them, in one script run (one round trip); a cost of 0 only
// reports. The key is hash-tagged on its own, so Cluster is fine.
func (s *Store) SpendRateLimit(ctx context.Context, key string, limit storage.RateLimit, cost int) (storage.RateDecision, error) {
	if err := storage.CheckSpend(key, limit, cost); err != nil {
		return storage.RateDecision{}, fmt.Errorf("redis: spend rate limit %q: %w", key, err)
	}
	interval := max(limit.Interval().Microseconds(), 1)
	res, err := gcraScript.Run(ctx, s.c, []string{rateKey(key)}, interval, limit.MaxBurst(), cost).Int64Slice()
	if err != nil {
		return storage.RateDecision{}, fmt.Errorf("redis: spend rate limit %q: %w", key, err)
	}
	if len(res) != 3 {
		return storage.RateDecision{}, fmt.Errorf("redis: spend rate limit %q: unexpected script result %v", key, res)
	}
	return storage.RateDecision{
		Allowed:    res[0] == 1,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
	}, nil
}
