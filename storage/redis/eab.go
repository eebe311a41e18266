package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmegw/acmegw/storage"
)

func eabKey(kid string) string { return keyPrefix + "{eab:" + kid + "}" }

// eabIndexKey is the set of all kids, for the admin listing only.
const eabIndexKey = keyPrefix + "eab-kids"

func orderIndexKey(k string) string { return keyPrefix + "{orderkey:" + k + "}" }

// CreateEABKey stores k at version 1 and adds its kid to the admin index.
func (s *Store) CreateEABKey(ctx context.Context, k *storage.EABKey) error {
	c := *k
	c.Version = 1
	if err := s.create(ctx, eabKey(k.KID), "eab key", &c); err != nil {
		return err
	}
	k.Version = 1
	if err := s.c.SAdd(ctx, eabIndexKey, k.KID).Err(); err != nil {
		return fmt.Errorf("redis: index eab key: %w", err)
	}
	return nil
}

// GetEABKey returns the key with the given kid.
func (s *Store) GetEABKey(ctx context.Context, kid string) (*storage.EABKey, error) {
	return getJSON[storage.EABKey](ctx, s, eabKey(kid), "eab key")
}

// UpdateEABKey is a compare-and-swap on k.Version.
func (s *Store) UpdateEABKey(ctx context.Context, k *storage.EABKey) error {
	c := *k
	c.Version = k.Version + 1
	if err := s.update(ctx, eabKey(k.KID), "eab key", k.Version, &c); err != nil {
		return err
	}
	k.Version = c.Version
	return nil
}

// ListEABKeys reads every key named in the admin index, sorted by kid.
func (s *Store) ListEABKeys(ctx context.Context) ([]*storage.EABKey, error) {
	kids, err := s.c.SMembers(ctx, eabIndexKey).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list eab keys: %w", err)
	}
	sort.Strings(kids)
	out := make([]*storage.EABKey, 0, len(kids))
	for _, kid := range kids {
		b, err := s.c.Get(ctx, eabKey(kid)).Bytes()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis: eab key %q: %w", kid, err)
		}
		var k storage.EABKey
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("redis: decode eab key %q: %w", kid, err)
		}
		out = append(out, &k)
	}
	return out, nil
}

// SetOrderKey points key at orderID until ttl passes.
func (s *Store) SetOrderKey(ctx context.Context, key, orderID string, ttl time.Duration) error {
	if err := s.c.Set(ctx, orderIndexKey(key), orderID, ttl).Err(); err != nil {
		return fmt.Errorf("redis: set order key: %w", err)
	}
	return nil
}

// GetOrderKey returns the order id at key, or ErrNotFound.
func (s *Store) GetOrderKey(ctx context.Context, key string) (string, error) {
	id, err := s.c.Get(ctx, orderIndexKey(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", fmt.Errorf("redis: order key: %w", storage.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("redis: order key: %w", err)
	}
	return id, nil
}

// GetOrderKeys returns the order id at each key, "" where there is none,
// in one round trip (a pipeline: the keys live in different slots).
func (s *Store) GetOrderKeys(ctx context.Context, keys []string) ([]string, error) {
	cmds := make([]*goredis.StringCmd, len(keys))
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, orderIndexKey(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: order keys: %w", err)
	}
	ids := make([]string, len(keys))
	for i, c := range cmds {
		id, err := c.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("redis: order key: %w", err)
		}
		ids[i] = id
	}
	return ids, nil
}

// swapOrderKeyScript sets KEYS[1] to ARGV[2] with expiry ARGV[3] (ms) if it
// holds ARGV[1] now; returns 1 if it did.
var swapOrderKeyScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// SwapOrderKey points key at orderID until ttl passes if it points at old
// now: one script run.
func (s *Store) SwapOrderKey(ctx context.Context, key, old, orderID string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("redis: swap order key: ttl %v is not positive", ttl)
	}
	n, err := swapOrderKeyScript.Run(ctx, s.c, []string{orderIndexKey(key)}, old, orderID, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return false, fmt.Errorf("redis: swap order key: %w", err)
	}
	return n == 1, nil
}
