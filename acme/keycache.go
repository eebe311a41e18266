package acme

import (
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmegw/acmegw/storage"
)

// keyCacheGeneration bounds the key cache: it holds at most two generations
// of this many keys. A few thousand active accounts fit; beyond that the
// least recently used ones are parsed again.
const keyCacheGeneration = 2048

// keyCache maps an account key as stored (Account.KeyJWK) to the parsed key,
// so that a "kid" request does not decode the JWK again. Only parsing is
// cached: the account record itself is read from the store on every request,
// so a deactivation or key rollover on any instance takes effect at once (a
// new key is new bytes, hence a new entry). Its zero value is ready to use,
// and it is safe for concurrent use.
//
// Eviction is by generations: new and recently used keys go to cur; when
// cur is full it becomes old and the previous old generation is dropped,
// which approximates LRU at the cost of one map lookup more on a miss.
type keyCache struct {
	mu       sync.Mutex
	cur, old map[string]*jose.JSONWebKey
}

// get returns the parsed form of jwk. The key is shared: callers must not
// modify it.
func (c *keyCache) get(jwk []byte) (*jose.JSONWebKey, error) {
	c.mu.Lock()
	k, ok := c.cur[string(jwk)]
	if !ok {
		if k, ok = c.old[string(jwk)]; ok {
			c.putLocked(string(jwk), k) // still in use: keep it one generation more
		}
	}
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k = new(jose.JSONWebKey)
	if err := k.UnmarshalJSON(jwk); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.putLocked(string(jwk), k)
	c.mu.Unlock()
	return k, nil
}

func (c *keyCache) putLocked(jwk string, k *jose.JSONWebKey) {
	if len(c.cur) >= keyCacheGeneration {
		c.old, c.cur = c.cur, nil
	}
	if c.cur == nil {
		c.cur = make(map[string]*jose.JSONWebKey, keyCacheGeneration)
	}
	c.cur[jwk] = k
}

// len reports how many keys the cache holds, for tests.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

// accountKey returns the account's parsed public key, from the cache when
// it was parsed before. The key is shared: callers must not modify it.
func (s *Server) accountKey(acct *storage.Account) (*jose.JSONWebKey, error) {
	return s.keys.get(acct.KeyJWK)
}
