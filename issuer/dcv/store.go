package dcv

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RecordStore holds the records a DelegatedZone serves. Several acmegw
// instances answering one delegated zone (all of them listed as its name
// servers) must see the same records whichever instance published them, so
// the zone keeps nothing itself: MemoryStore serves one instance,
// RedisStore any number.
//
// Names are lower-case and without the trailing dot. A name holds a set of
// (type, value) entries, each with its own lifetime: two orders may want
// different TXT values at the same name at the same time, and each must be
// removable on its own.
type RecordStore interface {
	// Put adds the entry (typ, value) at name, or renews its lifetime if it
	// is already there. The entry disappears by itself after ttl, so
	// records of a crashed instance or a forgotten order do not linger.
	Put(ctx context.Context, name, typ, value string, ttl time.Duration) error
	// Delete removes the entry; removing one that is not there is no error.
	Delete(ctx context.Context, name, typ, value string) error
	// Get returns the live entries at name, sorted by type then value; none
	// and no error when the name has none.
	Get(ctx context.Context, name string) ([]StoredRecord, error)
}

// StoredRecord is one entry of a RecordStore.
type StoredRecord struct {
	Type  string
	Value string
}

func sortRecords(rs []StoredRecord) {
	slices.SortFunc(rs, func(a, b StoredRecord) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
}

// MemoryStore is the RecordStore of a single acmegw instance. Its zero
// value is not usable; call NewMemoryStore.
type MemoryStore struct {
	now func() time.Time

	mu    sync.RWMutex
	names map[string]map[StoredRecord]time.Time // entry → expiry
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{now: time.Now, names: map[string]map[StoredRecord]time.Time{}}
}

// Put implements RecordStore.
func (s *MemoryStore) Put(_ context.Context, name, typ, value string, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.names[name]
	if set == nil {
		set = map[StoredRecord]time.Time{}
		s.names[name] = set
	}
	// Expired entries go when their name is next written, which bounds the
	// map without a sweeper goroutine.
	for r, exp := range set {
		if !exp.After(now) {
			delete(set, r)
		}
	}
	set[StoredRecord{Type: typ, Value: value}] = now.Add(ttl)
	return nil
}

// Delete implements RecordStore.
func (s *MemoryStore) Delete(_ context.Context, name, typ, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.names[name]
	delete(set, StoredRecord{Type: typ, Value: value})
	if len(set) == 0 {
		delete(s.names, name)
	}
	return nil
}

// Get implements RecordStore.
func (s *MemoryStore) Get(_ context.Context, name string) ([]StoredRecord, error) {
	now := s.now()
	s.mu.RLock()
	var out []StoredRecord
	for r, exp := range s.names[name] {
		if exp.After(now) {
			out = append(out, r)
		}
	}
	s.mu.RUnlock()
	sortRecords(out)
	return out, nil
}

// RedisStore is the RecordStore shared by several acmegw instances through
// one Redis (single node, Sentinel or Cluster).
//
// Each name is one sorted set, key "acmegw:{dcv}:<name>", whose members are
// "<type> <value>" scored by their expiry in Unix milliseconds; the key
// itself expires with its last member. So Get, Put and Delete each cost one
// round trip, and a DNS query one Get. The {dcv} hash tag puts every key on
// one Cluster slot: DCV records are few, and it keeps them together for an
// operator looking at them.
type RedisStore struct {
	c   goredis.UniversalClient
	now func() time.Time
}

// NewRedisStore returns a RedisStore on c. The caller owns c and closes it.
func NewRedisStore(c goredis.UniversalClient) *RedisStore {
	return &RedisStore{c: c, now: time.Now}
}

// redisKeyPrefix starts every key RedisStore writes; "acmegw:" matches the
// storage package so acmegw's keys can share a database with other data.
const redisKeyPrefix = "acmegw:{dcv}:"

func redisKey(name string) string { return redisKeyPrefix + name }

func member(typ, value string) string { return typ + " " + value }

// putScript adds or renews one member, drops the expired ones and makes the
// key live as long as its longest-lived member, atomically, in one trip.
// KEYS[1] the key; ARGV[1] member, ARGV[2] its expiry, ARGV[3] now (ms).
var putScript = goredis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)

// Put implements RecordStore.
func (s *RedisStore) Put(ctx context.Context, name, typ, value string, ttl time.Duration) error {
	now := s.now()
	err := putScript.Run(ctx, s.c, []string{redisKey(name)},
		member(typ, value), now.Add(ttl).UnixMilli(), now.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("dcv: redis: storing %s %s: %w", typ, name, err)
	}
	return nil
}

// Delete implements RecordStore. Redis removes the key with its last member.
func (s *RedisStore) Delete(ctx context.Context, name, typ, value string) error {
	if err := s.c.ZRem(ctx, redisKey(name), member(typ, value)).Err(); err != nil {
		return fmt.Errorf("dcv: redis: removing %s %s: %w", typ, name, err)
	}
	return nil
}

// Get implements RecordStore.
func (s *RedisStore) Get(ctx context.Context, name string) ([]StoredRecord, error) {
	members, err := s.c.ZRangeByScore(ctx, redisKey(name), &goredis.ZRangeBy{
		Min: "(" + strconv.FormatInt(s.now().UnixMilli(), 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("dcv: redis: reading %s: %w", name, err)
	}
	out := make([]StoredRecord, 0, len(members))
	for _, m := range members {
		typ, value, ok := strings.Cut(m, " ")
		if !ok {
			continue // not written by Put; ignore rather than serve garbage
		}
		out = append(out, StoredRecord{Type: typ, Value: value})
	}
	sortRecords(out)
	return out, nil
}
