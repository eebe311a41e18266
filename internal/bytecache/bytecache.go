// Package bytecache remembers what byte strings parsed to, so that a hot
// path meeting the same bytes again and again parses them once: an account
// key on every signed request, or a stored record read by one request after
// another. It is keyed by the exact bytes, so an entry can never be stale:
// changed bytes are simply another key. It is sharded so that concurrent
// requests rarely meet on one lock (DESIGN.md: no request path takes a
// global lock), and bounded by generations, an approximation of LRU.
package bytecache

import (
	"hash/maphash"
	"sync"
)

// shards splits a Cache's lock.
const shards = 16

// DefaultGeneration is how many entries a shard's generation holds when
// Cache.Generation is zero: a cache holds at most 2*16*128 = 4096 entries.
const DefaultGeneration = 128

// Cache maps byte strings to values of type V. Its zero value is ready to
// use, and it is safe for concurrent use. Values are shared between
// callers: a caller that modifies what it gets must copy it first.
type Cache[V any] struct {
	// Generation bounds each shard: it holds at most two generations of
	// this many entries. Zero means DefaultGeneration. Set it before use.
	Generation int

	once   sync.Once
	seed   maphash.Seed
	shards [shards]shard[V]
}

// shard is one lock's share of a Cache. New and recently used entries go to
// cur; when cur is full it becomes old and the previous old generation is
// dropped, which costs one map lookup more on a miss and keeps whatever is
// in use.
type shard[V any] struct {
	mu       sync.Mutex
	cur, old map[string]V
}

func (c *Cache[V]) shard(b []byte) *shard[V] {
	c.once.Do(func() {
		c.seed = maphash.MakeSeed()
		if c.Generation <= 0 {
			c.Generation = DefaultGeneration
		}
	})
	return &c.shards[maphash.Bytes(c.seed, b)%shards]
}

// Get returns the value stored for exactly the bytes b, and whether there
// is one.
func (c *Cache[V]) Get(b []byte) (V, bool) {
	sh := c.shard(b)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, ok := sh.cur[string(b)]
	if !ok {
		if v, ok = sh.old[string(b)]; ok {
			sh.putLocked(string(b), v, c.Generation) // still in use: keep it a generation more
		}
	}
	return v, ok
}

// Put stores v for the bytes b (which it copies).
func (c *Cache[V]) Put(b []byte, v V) {
	sh := c.shard(b)
	sh.mu.Lock()
	sh.putLocked(string(b), v, c.Generation)
	sh.mu.Unlock()
}

func (sh *shard[V]) putLocked(k string, v V, generation int) {
	if len(sh.cur) >= generation {
		sh.old, sh.cur = sh.cur, nil
	}
	if sh.cur == nil {
		sh.cur = make(map[string]V, generation)
	}
	sh.cur[k] = v
}

// Len reports how many entries the cache holds.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.cur) + len(sh.old)
		sh.mu.Unlock()
	}
	return n
}

// Bound is the most entries the cache can hold.
func (c *Cache[V]) Bound() int {
	g := c.Generation
	if g <= 0 {
		g = DefaultGeneration
	}
	return 2 * g * shards
}
