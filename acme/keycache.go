package acme

import (
	"hash/maphash"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage"
)

// keyCacheShards splits the cache so that concurrent requests rarely meet
// on one lock (DESIGN.md: no request path takes a global lock).
const keyCacheShards = 16

// keyCacheGeneration bounds each shard of the key cache: it holds at most
// two generations of this many keys. A few thousand active accounts fit;
// beyond that the least recently used ones are parsed again.
const keyCacheGeneration = 2048 / keyCacheShards

// keyCache maps an account key as stored (Account.KeyJWK) to the parsed key,
// so that a "kid" request does not decode the JWK again. Only parsing is
// cached: the account record itself is read from the store on every request,
// so a deactivation or key rollover on any instance takes effect at once (a
// new key is new bytes, hence a new entry). Its zero value is ready to use,
// and it is safe for concurrent use.
type keyCache struct {
	seed   maphash.Seed
	once   sync.Once
	shards [keyCacheShards]keyCacheShard
}

// keyCacheShard is one lock's share of the cache. Eviction is by
// generations: new and recently used keys go to cur; when cur is full it
// becomes old and the previous old generation is dropped, which
// approximates LRU at the cost of one map lookup more on a miss.
type keyCacheShard struct {
	mu       sync.Mutex
	cur, old map[string]*jose.JSONWebKey
}

// get returns the parsed form of jwk. The key is shared: callers must not
// modify it.
func (c *keyCache) get(jwk []byte) (*jose.JSONWebKey, error) {
	c.once.Do(func() { c.seed = maphash.MakeSeed() })
	sh := &c.shards[maphash.Bytes(c.seed, jwk)%keyCacheShards]
	sh.mu.Lock()
	k, ok := sh.cur[string(jwk)]
	if !ok {
		if k, ok = sh.old[string(jwk)]; ok {
			sh.putLocked(string(jwk), k) // still in use: keep it one generation more
		}
	}
	sh.mu.Unlock()
	if ok {
		return k, nil
	}
	k = new(jose.JSONWebKey)
	if err := k.UnmarshalJSON(jwk); err != nil {
		return nil, err
	}
	sh.mu.Lock()
	sh.putLocked(string(jwk), k)
	sh.mu.Unlock()
	return k, nil
}

func (sh *keyCacheShard) putLocked(jwk string, k *jose.JSONWebKey) {
	if len(sh.cur) >= keyCacheGeneration {
		sh.old, sh.cur = sh.cur, nil
	}
	if sh.cur == nil {
		sh.cur = make(map[string]*jose.JSONWebKey, keyCacheGeneration)
	}
	sh.cur[jwk] = k
}

// len reports how many keys the cache holds, for tests.
func (c *keyCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.cur) + len(sh.old)
		sh.mu.Unlock()
	}
	return n
}

// accountKey returns the account's parsed public key, from the cache when
// it was parsed before. The key is shared: callers must not modify it.
func (s *Server) accountKey(acct *storage.Account) (*jose.JSONWebKey, error) {
	return s.keys.get(acct.KeyJWK)
}
